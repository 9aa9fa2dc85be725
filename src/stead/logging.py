"""Prefect's ``prefect.logging`` names: ``get_run_logger()`` is ``stead.get_logger()``.

Lines logged inside a flow or task are stored with the run and step; outside a run they are
only printed (Prefect raises there instead).

Example:
    >>> from stead import flow
    >>> from stead.logging import get_run_logger
    >>> @flow
    ... def etl() -> None:
    ...     get_run_logger().info("loaded %d rows", 42)
"""

from stead.core.console import get_logger

get_run_logger = get_logger

__all__ = ["get_logger", "get_run_logger"]
