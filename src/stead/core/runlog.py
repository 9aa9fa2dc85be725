"""The run logger: log lines made inside a run are stored with its run and step ids.

Imported on first use of get_logger(), so `import stead` does not pay for logging.
"""

from __future__ import annotations

import logging
import time

from stead.core.console import LOG_FLUSH_AFTER_S, LOG_FLUSH_LINES, run_label, say
from stead.core.context import current_run, current_step
from stead.core.masking import PATTERNS as SECRETS_KNOWN
from stead.core.masking import mask_text
from stead.store.base import LogRecord


class RunLogHandler(logging.Handler):
    """Stores records emitted inside a run with the run's and step's ids, and echoes them."""

    def emit(self, record: logging.LogRecord) -> None:
        ctx = current_run.get()
        try:
            message = record.getMessage()
            if record.exc_info:
                message += "\n" + logging.Formatter().formatException(record.exc_info)
        except Exception:  # a bad format string must not break the run
            message = str(record.msg)
        if SECRETS_KNOWN:  # a secret revealed in this process is never recorded nor echoed
            message = mask_text(message)
        if ctx is None:
            say("-", f"{record.levelname:<7} {message}")
            return
        line = LogRecord(ctx.run.id, current_step(), record.created, record.levelno, message)
        with ctx.lock:
            if not ctx.logs:
                ctx.logs_since = time.monotonic()
            ctx.logs.append(line)
            due = (len(ctx.logs) >= LOG_FLUSH_LINES
                   or time.monotonic() - ctx.logs_since > LOG_FLUSH_AFTER_S)
        say(run_label(ctx.run.flow_name, ctx.run.id), f"{record.levelname:<7} {message}")
        if due:
            ctx.flush_logs()


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
        if ctx is None:
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


