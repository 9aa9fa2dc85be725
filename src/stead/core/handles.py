"""`RunHandle`: a recorded run seen from outside it — its id, its state now, its result.

`Flow.enqueue` returns one, and `stead.get_run(run_id)` gives one for any run. A handle is
the run id itself (a `str` subclass), so code that kept the id `enqueue` used to return
(formatting it, comparing it, storing it, passing it to the CLI) keeps working unchanged.
It reads the store through its verbs only (`get_run`), so it works on SQLite, PostgreSQL
and in remote mode alike.
"""

from __future__ import annotations

import time
from typing import Any

from stead.core.states import State
from stead.errors import FlowRunFailed, FlowRunStopped, RunNotFound, StoreError
from stead.store.base import RunRecord

FIRST_POLL_S = 0.01  # result() polls quickly at first, then backs off up to its `poll`


class RunHandle(str):
    """A run of a flow, by id: ``state()`` reads its state, ``result()`` waits for its value.

    It is the run id (``str(handle) == handle.id``), so it can be printed, compared with an
    id, stored or passed wherever an id is expected.

    Example:
        >>> handle = etl.enqueue(day="2026-11-22", queue="etl")
        >>> handle.state()
        <State.PENDING: 'Pending'>
        >>> handle.result(timeout=60)   # once a worker (`stead worker start`) executed it
        {'rows': 1204}
        >>> stead.get_run(handle.id).state()
        <State.COMPLETED: 'Completed'>
    """

    database_url: str | None

    def __new__(cls, run_id: str, database_url: str | None = None) -> RunHandle:
        handle = super().__new__(cls, run_id)
        handle.database_url = database_url
        return handle

    @property
    def id(self) -> str:
        """The run id, as a plain string."""
        return str.__str__(self)

    def __str__(self) -> str:
        return str.__str__(self)

    def __repr__(self) -> str:
        return f"RunHandle({str.__repr__(self)})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (RunHandle, (self.id, self.database_url))

    def record(self) -> RunRecord:
        """The run as the store holds it now (state, times, error, ...)."""
        from stead.core.runtime import store_for

        return store_for(self.database_url).get_run(self.id)

    def state(self) -> State:
        """The run's state now, e.g. ``State.PENDING`` or ``State.COMPLETED``."""
        return State(self.record().state)

    def done(self) -> bool:
        """Whether the run has stopped: Completed, Failed, Cancelled, or Crashed (a crashed
        run waits for `stead runs resume`; an enqueued one is requeued, not left Crashed,
        unless its executor was lost too often)."""
        return _stopped(self.record())

    def result(self, timeout: float | None = None, poll: float = 0.5) -> Any:
        """Wait until the run has stopped and return its result.

        Raises FlowRunFailed (with the recorded error type, message and traceback) if it
        Failed, FlowRunStopped if it was Cancelled or Crashed, and TimeoutError if it is
        still going after `timeout` seconds (None: wait as long as it takes). The store is
        read every `poll` seconds at most (sooner at first). Inside a flow the wait is a step
        of the calling run (a resumed run replays the child's outcome) and on a worker the
        caller is parked while the child runs (core/children.py).

        Example:
            >>> etl.enqueue(day="2026-11-22", queue="etl").result(timeout=300)
            {'rows': 1204}
        """
        if poll <= 0:
            raise ValueError(f"poll must be seconds > 0, got {poll!r}")
        from stead.core.context import current_run

        ctx = current_run.get()
        if ctx is not None:  # inside a flow: a durable step; on a worker the parent parks
            from stead.core.children import child_result

            return child_result(ctx, self.id, timeout, self.database_url)
        deadline = None if timeout is None else time.monotonic() + timeout
        interval = min(FIRST_POLL_S, poll)
        while True:
            run = self.record()
            if _stopped(run):
                return outcome(run, self.database_url)
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(
                        f"run {self.id} is still {run.state} after {timeout:g} s. Wait longer "
                        f"(result(timeout=...)), or see it with `stead runs show {self.id}`"
                        + (f" and check that a worker serves queue {run.queue!r}"
                           if run.state == State.PENDING.value and run.queue else ""))
                time.sleep(min(interval, left))
            else:
                time.sleep(interval)
            interval = min(interval * 2, poll)


def get_run(run_id: str, *, database_url: str | None = None) -> RunHandle:
    """A handle of the run `run_id` (any run: enqueued, scheduled, or called directly).

    `database_url` defaults to STEAD_DATABASE_URL. An unknown id raises RunNotFound.

    Example:
        >>> import stead
        >>> run = stead.get_run("etl-2026-11-22")
        >>> run.state(), run.result(timeout=60)
        (<State.COMPLETED: 'Completed'>, {'rows': 1204})
    """
    from stead.core.runtime import store_for

    if not isinstance(run_id, str) or not run_id:
        raise RunNotFound(f"get_run() takes a run id (text), got {run_id!r}")
    store = store_for(database_url)
    try:
        store.get_run(run_id)
    except RunNotFound:
        raise RunNotFound(
            f"no run with id {run_id!r} in {store.url}. `stead runs ls` lists the runs there; "
            "check the id, or STEAD_DATABASE_URL if the run was recorded elsewhere") from None
    return RunHandle(run_id, database_url)


def _stopped(run: RunRecord) -> bool:
    return State(run.state).is_final or run.state == State.CRASHED.value


def outcome(run: RunRecord, database_url: str | None = None) -> Any:
    """The value of a stopped run, or its failure raised."""
    state = run.state
    if state in (State.COMPLETED.value, State.CACHED.value):
        from stead.core.runtime import result_files, store_for
        from stead.core.serialization import decode

        try:
            text = result_files(database_url).load(run.result, run.result_ref)
        except StoreError as exc:
            if not store_for(database_url).url.startswith(("http://", "https://")):
                raise
            raise StoreError(
                f"run {run.id}'s result is larger than STEAD_RESULT_INLINE_MAX, so it is kept in "
                "a file on the host that executed the run, which the server's store verbs do "
                f"not serve ({exc}). Raise STEAD_RESULT_INLINE_MAX on the workers, or share "
                "STEAD_RESULTS_DIR between them and this host") from exc
        return decode(text)
    data = _error(run.error)
    summary = (f"{data.get('type', 'Exception').rsplit('.', 1)[-1]}: {data.get('message', '')}"
               if data else "no error recorded")
    if state == State.FAILED.value:
        where = f" in step {data['step']}" if data.get("step") else ""
        exc: Exception = FlowRunFailed(
            f"run {run.id} of flow '{run.flow_name}' Failed: {summary}{where}. See it with "
            f"`stead runs show {run.id}`; resume it with `stead runs resume {run.id}`",
            run_id=run.id, step=data.get("step"), attempts=data.get("attempts"))
    else:
        todo = (f"resume it with `stead runs resume {run.id}`" if state == State.CRASHED.value
                else "start a new run to run it again")
        exc = FlowRunStopped(f"run {run.id} of flow '{run.flow_name}' was {state}"
                             + (f" ({summary})" if data else "") + f"; {todo}",
                             run_id=run.id, state=state)
    if data.get("traceback"):
        exc.add_note(f"the run's recorded traceback:\n{data['traceback'].rstrip()}")
    raise exc


def _error(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    import json

    try:
        data = json.loads(text)
    except ValueError:
        return {"message": text}
    return data if isinstance(data, dict) else {"message": str(data)}
