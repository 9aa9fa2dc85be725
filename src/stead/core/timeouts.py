"""Deadlines for task and flow attempts in synchronous code.

In the main thread a deadline uses SIGALRM, which also interrupts time.sleep and blocking
I/O. In other threads Python offers no interrupt, so an expired deadline raises TaskTimeout
in that thread at its next Python bytecode (a call blocked inside C returns first).
Async code uses asyncio.timeout instead (see task.py).
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from stead.errors import TaskTimeout


class _Deadline:
    __slots__ = ("at", "fired", "what")

    def __init__(self, at: float, what: str) -> None:
        self.at, self.what, self.fired = at, what, False


_stack: list[_Deadline] = []  # main-thread deadlines, outermost first


def _arm() -> None:
    pending = [d for d in _stack if not d.fired]
    if not pending:
        signal.setitimer(signal.ITIMER_REAL, 0)
        return
    remaining = min(d.at for d in pending) - time.monotonic()
    signal.setitimer(signal.ITIMER_REAL, max(remaining, 1e-4))


def _on_alarm(signum: int, frame: object) -> None:
    now = time.monotonic()
    expired = [d for d in _stack if not d.fired and d.at <= now]
    if not expired:
        _arm()
        return
    for d in expired:
        d.fired = True
    raise TaskTimeout(f"{expired[0].what} timed out")


@contextmanager
def deadline(seconds: float | None, what: str) -> Iterator[None]:
    """Raise TaskTimeout inside the block if it runs longer than `seconds` (None: no limit)."""
    if seconds is None:
        yield
        return
    if threading.current_thread() is threading.main_thread():
        with _main_thread_deadline(seconds, what):
            yield
    else:
        with _thread_deadline(seconds, what):
            yield


@contextmanager
def _main_thread_deadline(seconds: float, what: str) -> Iterator[None]:
    entry = _Deadline(time.monotonic() + seconds, f"{what} (limit {seconds:g} s)")
    previous = signal.getsignal(signal.SIGALRM) if not _stack else None
    if not _stack:
        signal.signal(signal.SIGALRM, _on_alarm)
    _stack.append(entry)
    _arm()
    try:
        yield
    except TaskTimeout as exc:
        if entry.fired:
            raise TaskTimeout(f"{entry.what} timed out") from exc.__cause__
        raise
    finally:
        _stack.remove(entry)
        if _stack:
            _arm()
        else:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous or signal.SIG_DFL)


@contextmanager
def _thread_deadline(seconds: float, what: str) -> Iterator[None]:
    thread_id = threading.get_ident()
    state = {"done": False, "fired": False}
    lock = threading.Lock()

    import ctypes

    def expire() -> None:
        with lock:
            if state["done"]:
                return
            state["fired"] = True
            ctypes.pythonapi.PyThreadState_SetAsyncExc(
                ctypes.c_ulong(thread_id), ctypes.py_object(TaskTimeout))

    timer = threading.Timer(seconds, expire)
    timer.daemon = True
    timer.start()
    try:
        yield
    except TaskTimeout:
        if state["fired"]:
            raise TaskTimeout(f"{what} (limit {seconds:g} s) timed out") from None
        raise
    finally:
        with lock:
            state["done"] = True
        timer.cancel()
