"""Prefect's ``prefect.cache_policies`` names, over Stead's cache policies.

`DEFAULT` is Prefect's default policy (inputs, task source and the flow run's id), for code
that names it; Stead's tasks have no cache unless given a policy. `NONE` and `NO_CACHE` turn
caching off. Keys are per task: two tasks never share a cached value.

Example:
    >>> from stead import task
    >>> from stead.cache_policies import INPUTS, TASK_SOURCE
    >>> @task(cache_policy=(INPUTS - "verbose") + TASK_SOURCE)
    ... def embed(text: str, verbose: bool = False) -> list[float]: ...
"""

from stead.core.aliases import CacheKeyFnPolicy
from stead.core.caching import (
    FLOW_PARAMETERS,
    INPUTS,
    NO_CACHE,
    RUN_ID,
    TASK_SOURCE,
    CacheKeyFn,
    CachePolicy,
    FlowParameters,
    Inputs,
    NoCache,
    RunId,
    TaskSource,
)

NONE = NO_CACHE
DEFAULT = INPUTS + TASK_SOURCE + RUN_ID

__all__ = ["DEFAULT", "FLOW_PARAMETERS", "INPUTS", "NONE", "NO_CACHE", "RUN_ID", "TASK_SOURCE",
           "CacheKeyFn", "CacheKeyFnPolicy", "CachePolicy", "FlowParameters", "Inputs",
           "NoCache", "RunId", "TaskSource"]
