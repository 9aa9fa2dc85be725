"""The run logger: log lines made inside a run are stored with its run and step ids.

Imported on first use of get_logger(), so `import stead` does not pay for logging.

Fields given with ``extra=`` are kept: they are appended to the stored line as one JSON
object after two spaces (``loaded 3 rows  {"table": "orders", "ms": 12}``), readable in
`stead logs` and parseable (`split_fields`). Standard-library loggers named in STEAD_LOGGERS,
or in a flow's ``log_loggers=[...]``, are captured too: their lines emitted inside a run (in
the run's thread, or a task's) are stored in that run's log; outside runs they are untouched.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Iterable
from typing import Any

from stead.core.console import LOG_FLUSH_AFTER_S, LOG_FLUSH_LINES, run_label, say
from stead.core.context import current_run, current_step
from stead.core.masking import PATTERNS as SECRETS_KNOWN
from stead.core.masking import mask_text
from stead.core.prints import task_prints
from stead.store.base import LogRecord

# The attributes every LogRecord has; any other attribute came from `extra=`.
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message", "asctime", "taskName", "_stead_stored"}
FIELDS_SEPARATOR = "  {"
_TRACEBACK = "\nTraceback (most recent call last):"


def line_text(record: logging.LogRecord) -> str:
    """The stored text of a record: its message, exception, and `extra=` fields as JSON."""
    try:
        message = record.getMessage()
    except Exception:  # a bad format string must not break the run
        message = str(record.msg)
    fields = {k: v for k, v in record.__dict__.items() if k not in _STANDARD}
    if fields:
        message += "  " + json.dumps(fields, default=repr, ensure_ascii=False)
    if record.exc_info:
        message += "\n" + logging.Formatter().formatException(record.exc_info)
    if SECRETS_KNOWN:  # a secret revealed in this process is never recorded nor echoed
        message = mask_text(message)
    return message


def split_fields(text: str) -> tuple[str, dict[str, Any]]:
    """A stored log line's message and its `extra=` fields.

    Example:
        >>> split_fields('loaded 3 rows  {"table": "orders"}')
        ('loaded 3 rows', {'table': 'orders'})
    """
    cut = text.find(_TRACEBACK)
    message, after = (text, "") if cut < 0 else (text[:cut], text[cut:])
    head, sep, tail = message.rpartition(FIELDS_SEPARATOR)
    if sep and "\n" not in tail:
        try:
            fields = json.loads("{" + tail)
        except ValueError:
            fields = None
        if isinstance(fields, dict):
            return head + after, fields
    return text, {}


def _store(ctx: Any, record: logging.LogRecord, message: str) -> None:
    record._stead_stored = True  # a record seen by two captured loggers is stored once
    line = LogRecord(ctx.run.id, current_step(), record.created, record.levelno, message)
    with ctx.lock:
        if not ctx.logs:
            ctx.logs_since = time.monotonic()
        ctx.logs.append(line)
        due = (len(ctx.logs) >= LOG_FLUSH_LINES
               or time.monotonic() - ctx.logs_since > LOG_FLUSH_AFTER_S)
    if due:
        ctx.flush_logs()


class RunLogHandler(logging.Handler):
    """Stores records emitted inside a run with the run's and step's ids, and echoes them."""

    def emit(self, record: logging.LogRecord) -> None:
        ctx = current_run.get()
        message = line_text(record)
        if ctx is None:
            say("-", f"{record.levelname:<7} {message}")
            return
        _store(ctx, record, message)
        say(run_label(ctx.run.flow_name, ctx.run.id), f"{record.levelname:<7} {message}")


# Captured standard-library loggers: those of STEAD_LOGGERS for every run, and those a flow
# names in log_loggers for the runs of that flow (by flow name).
_for_all_runs: set[str] = set()
_for_flows: dict[str, set[str]] = {}


class CapturedLoggerHandler(logging.Handler):
    """Attached to a captured logger: stores its records emitted inside a run that wants it.

    It does not echo them (the logger keeps its own handlers) and ignores records outside runs.
    """

    def __init__(self, logger_name: str) -> None:
        super().__init__()
        self.logger_name = logger_name

    def emit(self, record: logging.LogRecord) -> None:
        ctx = current_run.get()
        if ctx is None or getattr(record, "_stead_stored", False):
            return
        name = self.logger_name
        if name not in _for_all_runs and name not in _for_flows.get(ctx.run.flow_name, ()):
            return
        _store(ctx, record, line_text(record))


def capture_loggers(names: Iterable[str], flow_name: str | None = None) -> None:
    """Record lines of the standard-library loggers `names` emitted inside runs (of the flow
    `flow_name` only, when given). A logger without a level gets STEAD_LOG_LEVEL.

    Example:
        >>> capture_loggers(["mylib", "urllib3"])          # what STEAD_LOGGERS=mylib,urllib3 does
        >>> logging.getLogger("mylib").info("inside a task: stored in the run's log")
    """
    from stead.settings import get_settings

    level = get_settings().log_level
    for name in names:
        (_for_all_runs if flow_name is None else _for_flows.setdefault(flow_name, set())).add(
            name)
        logger = logging.getLogger(name)
        if not any(isinstance(h, CapturedLoggerHandler) for h in logger.handlers):
            logger.addHandler(CapturedLoggerHandler(name))
        if logger.level == logging.NOTSET:
            logger.setLevel(level)


_logger: logging.Logger | None = None


def run_logger() -> logging.Logger:
    """The run logger: lines logged inside a flow or task are stored with the run and step.

    Example:
        >>> from stead import flow, get_logger
        >>> @flow
        ... def etl():
        ...     get_logger().info("loaded %d rows", 42)
    """
    global _logger
    if _logger is None:
        logger = logging.getLogger("stead.run")
        logger.propagate = False
        logger.addHandler(RunLogHandler())
        from stead.settings import get_settings

        logger.setLevel(get_settings().log_level)
        _logger = logger
    return _logger


class PrintCapture:
    """A stdout stand-in that passes writes through and logs whole lines made inside a run."""

    def __init__(self, stream: object) -> None:
        self.stream = stream
        self._partial: dict[int, str] = {}

    def write(self, text: str) -> int:
        ctx = current_run.get()
        if ctx is None or task_prints.get() is False:  # a task's log_prints=False: core/prints.py
            return self.stream.write(text)  # type: ignore[attr-defined]
        key = id(ctx)
        buffered = self._partial.pop(key, "") + text
        *lines, rest = buffered.split("\n")
        if rest:
            self._partial[key] = rest
        for line in lines:
            run_logger().info(line)
        return len(text)

    def flush(self) -> None:
        self.stream.flush()  # type: ignore[attr-defined]

    def __getattr__(self, name: str) -> object:
        return getattr(self.stream, name)


def start_print_capture() -> Any:
    """Record this process's print() output as log lines of the run in context (a flow's or
    a task's `log_prints`); return what to give `stop_print_capture` (None: already on)."""
    if isinstance(sys.stdout, PrintCapture):
        return None
    original = sys.stdout
    sys.stdout = PrintCapture(original)
    return original


def stop_print_capture(original: Any) -> None:
    """Undo `start_print_capture` (given its return value)."""
    if original is not None:
        sys.stdout = original
