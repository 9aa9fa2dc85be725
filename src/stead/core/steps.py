"""One step of a run: numbering, replay of recorded outcomes, and recording new ones.

A step costs one durable write when it finishes (result, timings, attempts and any buffered
log lines in a single commit). Its Running state is not written up front: a watcher thread
makes steps visible once they have run longer than STEAD_SLOW_STEP_MS, so quick steps never
pay for a second write. History is stored only when a step had more than one attempt; for
the common case it is derived from started_at/ended_at.
"""

from __future__ import annotations

import json
import reprlib
import threading
import time
import weakref
from typing import Any

from stead.core import console
from stead.core.context import RunContext, current_frame
from stead.core.masking import PATTERNS as SECRETS_KNOWN
from stead.core.masking import mask_text
from stead.core.serialization import decode, encode, encode_arguments
from stead.core.states import State
from stead.errors import LeaseLost, NonDeterminismError, SerializationError
from stead.store.base import CacheEntry, StepRecord

COMPLETED, CACHED, RETRYING, FAILED, RUNNING = (
    State.COMPLETED.value, State.CACHED.value, State.RETRYING.value, State.FAILED.value,
    State.RUNNING.value)
_repr = reprlib.Repr()
_repr.maxstring, _repr.maxother = 200, 200


def error_json(exc: BaseException, step: str | None = None, attempts: int | None = None,
               rerun: list[str] | None = None) -> str:
    """The stored form of an exception: type, message, traceback, and where it happened.

    A run's error also lists `rerun`: the top-level steps whose failure ended the run, which
    run again when it is resumed (every other recorded failure is raised again)."""
    import traceback

    data = {
        "type": f"{type(exc).__module__}.{type(exc).__qualname__}",
        "message": str(exc),
        "traceback": "".join(traceback.format_exception(exc)),
        "step": step,
        "attempts": attempts,
    }
    if rerun is not None:
        data["rerun"] = rerun
    text = json.dumps(data)
    return mask_text(text) if SECRETS_KNOWN else text


def recorded_failure(rec: StepRecord, run_id: str) -> BaseException:
    """The exception a recorded Failed step raised, rebuilt to be raised again on replay: its
    own type when that is an Exception class of a module this process has imported and it
    takes a message, otherwise a StepFailed carrying the recorded type, message, traceback."""
    import sys

    data = json.loads(rec.error or "{}")
    type_name = data.get("type") or "builtins.Exception"
    message = data.get("message") or ""
    module, _, qualname = type_name.rpartition(".")
    exc: BaseException | None = None
    obj: Any = sys.modules.get(module)  # never import a module named by a database row
    for part in qualname.split(".") if obj is not None else ():
        obj = getattr(obj, part, None)
    if isinstance(obj, type) and issubclass(obj, Exception):
        try:
            exc = obj(message)
        except Exception:
            exc = None
        if exc is not None and str(exc) != message:
            exc = None  # it does not take its message as its argument: say what it was
    if exc is None:
        from stead.errors import StepFailed

        exc = StepFailed(f"{type_name}: {message}", type_name=type_name,
                         original_message=message, traceback=data.get("traceback") or "")
    exc.__stead_step__ = (rec.name, rec.key, rec.attempts)  # type: ignore[attr-defined]
    exc.add_note(f"stead: {rec.kind} '{rec.name}' (step {rec.key}) failed when run {run_id} "
                 "first executed it; the flow went on past that failure, so on resume the "
                 "recorded failure is raised again and the flow takes the same path")
    return exc


def params_text(names: tuple[str, ...], args: tuple, kwargs: dict, limit: int) -> str:
    """Encode a call's arguments by parameter name; unstorable or huge ones become a repr."""
    if not args and not kwargs:
        return "{}"
    if not kwargs and len(args) == 1 and names:  # the common call: one argument (~0.5 us less)
        values = {names[0]: args[0]}
    else:
        values = dict(zip(names, args, strict=False))
        if len(args) > len(names):
            values["*args"] = list(args[len(names):])
        values.update(kwargs)
    try:
        text = encode_arguments(values)
    except SerializationError:
        text = None
    if text is None or len(text) > limit:
        text = json.dumps({"$repr": _repr.repr(values)})
    return mask_text(text) if SECRETS_KNOWN else text


class Step:
    """The bookkeeping of one task call (or child flow, or recorded value) inside a run."""

    __slots__ = (
        "__weakref__",
        "attempts",
        "base_attempts",
        "begun",
        "cache_key",
        "continuing",
        "counter",
        "ctx",
        "depends_on",
        "failure",
        "history",
        "key",
        "kind",
        "name",
        "on_durable",
        "outcome",
        "params",
        "pickle_ok",
        "replayed",
        "retry_at",
        "run_name",
        "started",
        "step",
        "value",
        "writer",
        "written",
    )

    def __init__(self, ctx: RunContext, name: str, kind: str, params: str | None,
                 pickle_ok: bool = False) -> None:
        self.ctx, self.name, self.kind, self.params = ctx, name, kind, params
        self.pickle_ok = pickle_ok  # the task opted in to pickle: its results may be unpickled
        self.key = self.step = current_frame.get().next_key()
        self.counter = 0  # calls made inside this step's body: this step is their frame
        self.replayed = False
        self.attempts = self.base_attempts = 0  # attempts made before this execution
        self.history: list[list[Any]] | None = None
        self.started = 0.0
        self.value: Any = _MISSING
        self.depends_on: str | None = None
        self.cache_key: str | None = None
        self.run_name: str | None = None  # the display name (task_run_name, child run's name)
        self.written: tuple[str | None, str | None] = (None, None)  # the stored result
        # Concurrent steps go through a group-commit writer; once the final outcome is
        # committed, on_durable(step, error) runs on the writer's thread. None: write here.
        self.writer: Any = None
        self.on_durable: Any = None
        self.outcome: tuple[str, Any] | None = None
        self.failure: BaseException | None = None  # a replayed Failed outcome: raise it
        # Whether this step's first attempt here continues one a crash interrupted (its inner
        # steps' handled failures replay) rather than starting a new one (they run again).
        self.continuing = True
        # The params of a step recorded Running by an earlier execution (a durable wait
        # records its due time before it waits: core/waits.py), else None.
        self.begun: str | None = None
        # When the next attempt of a step recorded Retrying is due (its delay survives a
        # crash: core/attempts.py waits what remains), else None.
        self.retry_at: float | None = None
        # Popped: a replayed step's record is not needed again (a flow retry reloads them).
        rec = ctx.recorded.pop(self.key, None)
        if rec is None:
            return
        if rec.name != name or rec.kind != kind:
            raise NonDeterminismError(
                f"run {ctx.run.id}: call #{self.key} is {kind} '{name}', but when this run was "
                f"recorded call #{self.key} was {rec.kind} '{rec.name}'. The flow's code or "
                "inputs changed between executions, so the recorded steps no longer line up. "
                "Restore the code the run started with, or start a new run (new run id).")
        if rec.state == COMPLETED or rec.state == CACHED:
            self.value = decode(ctx.results.load(rec.result, rec.result_ref),
                                pickle_ok=pickle_ok)
            self.replayed = True
            return
        if rec.state == FAILED and self._replays_failure(ctx):
            self.failure = recorded_failure(rec, ctx.run.id)
            self.replayed = True
            ctx.failures[id(self.failure)] = (self.failure, [self.key])
            return
        if rec.state == RUNNING:
            self.begun = rec.params
        if rec.history != "[]":
            self.history = json.loads(rec.history)
        if rec.state == RETRYING:  # the retry budget carries over; a Failed step starts afresh
            self.attempts = self.base_attempts = rec.attempts
            self.continuing = False
            last = self.history[-1] if self.history else None
            if last is not None and len(last) > 3 and last[3] is not None:
                self.retry_at = float(last[3])
        elif rec.state == FAILED:
            self.continuing = False

    def _replays_failure(self, ctx: RunContext) -> bool:
        """Whether this recorded Failed step raises its recorded exception again (the flow
        caught it and went on: it must take the same path) instead of running again (its
        failure ended the run or the attempt of the step around it, which now runs again)."""
        frame = current_frame.get()
        if isinstance(frame, Step):
            return frame.continuing
        return ctx.rerun is not None and self.key not in ctx.rerun

    def replay(self) -> Any:
        """The recorded outcome of a replayed step: its value, or its failure raised again."""
        if self.failure is not None:
            raise self.failure
        return self.value

    def next_key(self) -> str:
        """The key of the next call made inside this step's body ("7.1", "7.2", ...)."""
        self.counter += 1
        return f"{self.key}.{self.counter}"

    def start_attempt(self) -> None:
        if self.attempts > self.base_attempts:  # a second attempt in this execution:
            self.continuing = False              # its inner calls start afresh
        self.attempts += 1
        self.counter = 0  # each attempt numbers its inner calls afresh
        self.started = now = self.ctx.clock.now()
        if self.attempts > 1 or self.history is not None:
            if self.history is None:
                self.history = []
            self.history.append([RUNNING, now, f"attempt {self.attempts}"])
        INFLIGHT[id(self)] = (self, time.monotonic())

    def succeeded(self, result: Any, *, child_run_id: str | None = None) -> Any:
        ctx = self.ctx
        try:
            text = encode(result, pickle_ok=self.pickle_ok)
        except SerializationError as exc:
            error = SerializationError(f"{self.kind} '{self.name}' (step {self.key} of run "
                                       f"{ctx.run.id}) returned a value Stead cannot store: {exc}")
            self.failed(error, retry=False)
            raise error from None
        if SECRETS_KNOWN:  # a secret revealed in this process is never recorded
            text = mask_text(text)
        if len(text) <= ctx.results.inline_max:
            inline, ref = text, None
        else:
            inline, ref = ctx.results.place(ctx.run.id, self.key, text)
        ended = ctx.clock.now()
        history = "[]"
        if self.history is not None:
            self.history.append([COMPLETED, ended, None])
            history = json.dumps(self.history)
        rec = StepRecord(ctx.run.id, self.key, self.name, self.kind, COMPLETED, self.attempts,
                         self.started, ended, self.params, inline, ref, None, history,
                         child_run_id, self.depends_on, self.cache_key,
                         run_name=self.run_name)
        self.written = (inline, ref)
        if self.writer is None:  # the sequential hot path: write here, one commit
            ctx.store.record_step(rec, ctx.take_logs() if ctx.logs else None, ctx.fence)
        else:
            self.outcome = (COMPLETED, result)
            self._write(rec, final=True)
        INFLIGHT.pop(id(self), None)
        if ctx.console_tasks:
            console.say(console.run_label(ctx.run.flow_name, ctx.run.id),
                        f"{self.kind.capitalize()} '{self.name}' [{self.key}] Completed in "
                        f"{_ms(ended - self.started)}")
        return result

    def failed(self, exc: BaseException, *, retry: bool, delay: float = 0.0,
               child_run_id: str | None = None) -> None:
        """Record a failed attempt: Retrying (the caller then waits `delay`) or Failed."""
        ctx = self.ctx
        ended = ctx.clock.now()
        if self.history is None:
            self.history = [[RUNNING, self.started, None]]
        summary = f"{type(exc).__name__}: {exc}"
        if SECRETS_KNOWN:
            summary = mask_text(summary)
        if retry:
            state = RETRYING
            note = f"attempt {self.attempts} failed: {summary}; retrying in {delay:g} s"
        else:
            state = FAILED
            note = f"{summary} (after {self.attempts} attempt{'s' if self.attempts != 1 else ''})"
            if getattr(exc, "__stead_step__", None) is None:
                exc.__stead_step__ = (self.name, self.key, self.attempts)  # type: ignore[attr-defined]
                exc.add_note(f"stead: {self.kind} '{self.name}' (step {self.key}) failed after "
                             f"{self.attempts} attempt(s) in run {ctx.run.id}")
        # A retry's entry holds when the next attempt is due: a resume waits what remains.
        self.history.append([state, ended, note, ended + delay] if retry else
                            [state, ended, note])
        rec = StepRecord(ctx.run.id, self.key, self.name, self.kind, state, self.attempts,
                         self.started, ended, self.params, None, None,
                         error_json(exc, self.key, self.attempts), json.dumps(self.history),
                         child_run_id, self.depends_on, run_name=self.run_name)
        if not retry:
            self.outcome = (FAILED, exc)
            ctx.failures.setdefault(id(exc), (exc, []))[1].append(self.key)
        self._write(rec, final=not retry)
        INFLIGHT.pop(id(self), None)
        console.say(console.run_label(ctx.run.flow_name, ctx.run.id),
                    f"{self.kind.capitalize()} '{self.name}' [{self.key}] {state}: {note}")

    def cached(self, entry: CacheEntry, key: str) -> Any:
        """Record this call as Cached with the value of an earlier step; return that value."""
        ctx = self.ctx
        value = decode(ctx.results.load(entry.result, entry.result_ref),
                       pickle_ok=self.pickle_ok)
        now = ctx.clock.now()
        origin = f"{entry.run_id}/{entry.step_key}"
        rec = StepRecord(ctx.run.id, self.key, self.name, self.kind, CACHED, 0, now, now,
                         self.params, entry.result, entry.result_ref, None, "[]", None,
                         self.depends_on, key, origin, self.run_name)
        self.outcome = (CACHED, value)
        self._write(rec, final=True)
        if ctx.console_tasks:
            console.say(console.run_label(ctx.run.flow_name, ctx.run.id),
                        f"Task '{self.name}' [{self.key}] Cached (value from {origin})")
        return value

    def _write(self, rec: StepRecord, *, final: bool) -> None:
        if self.writer is None:
            self.ctx.store.record_step(rec, self.ctx.take_logs(), self.ctx.fence)
        elif final and self.on_durable is not None:
            self.writer.enqueue(rec, self.ctx.take_logs(),
                                lambda error: self.on_durable(self, error), self.ctx.fence)
        else:
            self.writer.write(rec, self.ctx.take_logs(), self.ctx.fence)

    def abandoned(self) -> None:
        """The attempt was interrupted (Ctrl-C, cancellation): nothing is recorded."""
        INFLIGHT.pop(id(self), None)


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 10 else f"{seconds:.1f} s"


_MISSING = object()
INFLIGHT: dict[int, tuple[Step, float]] = {}
ACTIVE_RUNS: weakref.WeakSet[RunContext] = weakref.WeakSet()
_watcher: threading.Thread | None = None
_watcher_lock = threading.Lock()


def start_watcher(slow_step_s: float) -> None:
    """Start (once per process) the thread that shows slow steps and flushes old log lines."""
    global _watcher
    if _watcher is not None and _watcher.is_alive():
        return
    with _watcher_lock:
        if _watcher is not None and _watcher.is_alive():
            return
        _watcher = threading.Thread(target=_watch, args=(slow_step_s,), name="stead-watcher",
                                    daemon=True)
        _watcher.start()


def _watch(slow_step_s: float) -> None:
    shown: set[int] = set()
    while True:
        time.sleep(min(0.25, max(slow_step_s / 2, 0.01)))
        try:
            _watch_once(slow_step_s, shown)
        except Exception as exc:  # the watcher only improves visibility; never crash a run
            console.say("stead", f"watcher: {type(exc).__name__}: {exc}")


def _watch_once(slow_step_s: float, shown: set[int]) -> None:
    now = time.monotonic()
    by_store: dict[tuple[int, Any], tuple[Any, list[StepRecord]]] = {}
    live = set()
    for ident, (step, since) in list(INFLIGHT.items()):
        live.add(ident)
        if ident in shown or now - since < slow_step_s:
            continue
        shown.add(ident)
        ctx = step.ctx
        rec = StepRecord(ctx.run.id, step.key, step.name, step.kind, RUNNING, step.attempts,
                         step.started, None, step.params, run_name=step.run_name)
        by_store.setdefault((id(ctx.store), ctx.fence), (ctx.store, []))[1].append(rec)
    shown &= live
    for (_, fence), (store, recs) in by_store.items():
        try:
            store.mark_steps_running(recs, fence)
        except LeaseLost:
            pass  # the run's executor learns it at its own next write
    for ctx in list(ACTIVE_RUNS):
        if ctx.logs and now - ctx.logs_since > console.LOG_FLUSH_AFTER_S:
            ctx.flush_logs()
