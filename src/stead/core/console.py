"""Console output: one concise line per state change on stderr, and the run logger.

Plain writes to stderr rather than Rich: the engine's import must stay light; the CLI uses Rich.
"""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING

from stead.core.masking import PATTERNS as SECRETS_KNOWN
from stead.core.masking import mask_text

if TYPE_CHECKING:
    import logging

_enabled = True
_LEVEL_NAMES = {10: "DEBUG", 20: "INFO", 30: "WARNING", 40: "ERROR", 50: "CRITICAL"}
LOG_FLUSH_AFTER_S = 1.0
LOG_FLUSH_LINES = 500


def configure(enabled: bool) -> None:
    global _enabled
    _enabled = enabled


def say(run_label: str, message: str) -> None:
    """Print one timestamped line, e.g. ``18:47:01.532 | etl/3f2a9c1e | Task 'load' [4] ...``."""
    if not _enabled:
        return
    if SECRETS_KNOWN:  # a secret revealed in this process is never shown
        message = mask_text(message)
    now = time.time()
    stamp = time.strftime("%H:%M:%S", time.localtime(now)) + f".{int(now % 1 * 1000):03d}"
    try:
        sys.stderr.write(f"{stamp} | {run_label} | {message}\n")
    except (OSError, ValueError):  # closed stderr must never fail a run
        pass


def run_label(flow_name: str, run_id: str) -> str:
    return f"{flow_name}/{run_id[:8]}"



def get_logger() -> logging.Logger:
    """The run logger: lines logged inside a flow or task are stored with the run and step.

    Outside a flow the lines are only printed. Set STEAD_LOG_LEVEL to change the level.

    Example:
        >>> from stead import flow, get_logger
        >>> @flow
        ... def etl():
        ...     get_logger().info("loaded %d rows", 42)
    """
    from stead.core.runlog import run_logger

    return run_logger()


def level_name(level: int) -> str:
    return _LEVEL_NAMES.get(level, str(level))
