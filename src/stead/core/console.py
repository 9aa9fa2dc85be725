"""Console output: one concise line per state change on stderr, and the run logger.

Plain writes to stderr rather than Rich: the engine's import must stay light; the CLI uses Rich.
"""

from __future__ import annotations

import os
import re
import sys
import time
from typing import TYPE_CHECKING, TextIO

from stead.core.masking import PATTERNS as SECRETS_KNOWN
from stead.core.masking import mask_text

if TYPE_CHECKING:
    import logging

_enabled = True
_colour: bool | None = None  # decided on the first line (see colour_wanted)
_LEVEL_NAMES = {10: "DEBUG", 20: "INFO", 30: "WARNING", 40: "ERROR", 50: "CRITICAL"}
LOG_FLUSH_AFTER_S = 1.0
LOG_FLUSH_LINES = 500


# ANSI styles of the states, as the CLI's tables colour them (stead/cli/render.py).
STATE_ANSI = {
    "Completed": "32", "Cached": "32", "Running": "36", "Retrying": "33", "Pending": "34",
    "Scheduled": "34", "Late": "33", "Paused": "35", "Failed": "1;31", "Crashed": "31",
    "Cancelling": "35", "Cancelled": "2",
}
_STATE_WORD = re.compile(r"\b(" + "|".join(STATE_ANSI) + r")\b")


def configure(enabled: bool) -> None:
    global _enabled, _colour
    _enabled = enabled
    _colour = None  # settings may have changed: decide again on the next line


def colour_wanted(stream: TextIO) -> bool:
    """Whether to colour what goes to `stream`: STEAD_COLOR=always or never decides; with
    auto (the default), colour when `stream` is a terminal and NO_COLOR is not set.

    Example:
        >>> import io
        >>> colour_wanted(io.StringIO())  # not a terminal (with STEAD_COLOR unset)
        False
    """
    from stead.settings import get_settings

    try:
        mode = get_settings().color
    except Exception:  # a bad setting is reported where settings are read, not per line
        mode = "auto"
    if mode != "auto":
        return mode == "always"
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a replaced or closed stream
        return False


def paint_states(message: str) -> str:
    """`message` with its first state word in that state's colour (ANSI)."""
    return _STATE_WORD.sub(lambda m: f"\x1b[{STATE_ANSI[m[1]]}m{m[1]}\x1b[0m", message,
                           count=1)


def say(run_label: str, message: str) -> None:
    """Print one timestamped line, e.g. ``18:47:01.532 | etl/3f2a9c1e | Task 'load' [4] ...``."""
    if not _enabled:
        return
    if SECRETS_KNOWN:  # a secret revealed in this process is never shown
        message = mask_text(message)
    now = time.time()
    stamp = time.strftime("%H:%M:%S", time.localtime(now)) + f".{int(now % 1 * 1000):03d}"
    global _colour
    if _colour is None:
        _colour = colour_wanted(sys.stderr)
    if _colour:
        stamp, message = f"\x1b[2m{stamp}\x1b[0m", paint_states(message)
    try:
        sys.stderr.write(f"{stamp} | {run_label} | {message}\n")
    except (OSError, ValueError):  # closed stderr must never fail a run
        pass


def run_label(flow_name: str, run_id: str) -> str:
    """``flow/run-id``, the id whole: a shortened one may name several runs."""
    return f"{flow_name}/{run_id}"


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
