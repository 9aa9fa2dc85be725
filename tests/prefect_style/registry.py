"""Which Prefect-style flows ran unchanged: filled by the flow tests themselves.

`@unchanged` marks a flow test whose flow is Prefect's code with only the imports changed;
the flow's name is recorded after the test's Prefect-documented assertions passed. `@differs`
marks a flow whose test asserts Stead's documented behaviour instead; it must be named in its
module's `DIFFERENCES`. tests/prefect_style/test_zz_count.py counts them.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

DECLARED: dict[str, str] = {}      # flow name -> "unchanged" or "differs" (at import)
MODULE_OF: dict[str, str] = {}     # flow name -> module that declares it
PASSED: set[str] = set()           # unchanged flows whose test passed in this session


@dataclass(frozen=True)
class Difference:
    """A Prefect-style flow that does not run unchanged: what differs and why."""

    flow: str
    what: str
    why: str


def _declare(kind: str, fn: Callable[..., Any]) -> str:
    name = fn.__name__.removeprefix("test_")
    if name in DECLARED:
        raise AssertionError(f"flow {name!r} is declared twice")
    DECLARED[name] = kind
    MODULE_OF[name] = fn.__module__
    return name


def unchanged(fn: Callable[..., Any]) -> Callable[..., Any]:
    """A flow test whose flow runs unchanged; it counts once its assertions passed."""
    name = _declare("unchanged", fn)

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        result = fn(*args, **kwargs)
        PASSED.add(name)  # reached only when every assertion above held
        return result

    return wrapper


def differs(fn: Callable[..., Any]) -> Callable[..., Any]:
    """A flow test that asserts Stead's behaviour where it differs from Prefect's."""
    name = _declare("differs", fn)
    listed = {d.flow for d in sys.modules[fn.__module__].__dict__.get("DIFFERENCES", [])}
    if name not in listed:
        raise AssertionError(f"flow {name!r} differs but is not in {fn.__module__}.DIFFERENCES")
    return fn
