"""Prefect's ``prefect.flows`` names: the flow decorator and its class.

Example:
    >>> from stead.flows import flow
    >>> @flow(log_prints=True)
    ... def hello(name: str) -> None:
    ...     print(f"hello {name}")
"""

from stead.core.flow import Flow, flow

__all__ = ["Flow", "flow"]
