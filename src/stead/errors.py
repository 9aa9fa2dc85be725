"""Every error Stead raises, in one place. Each message says what was wrong and what to do."""

from __future__ import annotations


class SteadError(Exception):
    """Base class of all Stead errors."""


class ConfigError(SteadError):
    """A setting or environment variable has a value Stead cannot use."""


class StoreError(SteadError):
    """The database cannot be opened or used (corrupt, newer schema, unreachable)."""


class SchemaMismatch(StoreError):
    """The database's schema is not the one this Stead uses: missing or older (`stead db
    upgrade` migrates it), or newer (written by a newer Stead: upgrade Stead)."""


class WireFormatError(StoreError):
    """A store call or answer on the wire (store/wire.py) is not one this version reads: not
    JSON, an unknown record, a record with unknown or missing fields, a misshapen call."""


class RunNotFound(SteadError):
    """No run with the given id (or id prefix) exists."""


class SerializationError(SteadError):
    """A value cannot be stored: not one of the supported types and no pickle serializer chosen."""


class NonDeterminismError(SteadError):
    """A resumed flow called a different task at a position than the recorded run did."""


class ParameterError(SteadError, TypeError):
    """A flow was called with arguments that do not match its signature."""


class RunConflict(SteadError):
    """A run id is already in use in a way that forbids this start (other parameters, or live)."""


class UpstreamFailed(SteadError):
    """A submitted task did not run because a future it depended on failed."""


class TaskTimeout(SteadError, TimeoutError):
    """A task or flow attempt ran longer than its timeout."""


class FlowRunFailed(SteadError):
    """A flow run ended Failed; `run_id`, `step` and `attempts` say where and how often."""

    def __init__(self, message: str, *, run_id: str, step: str | None = None,
                 attempts: int | None = None) -> None:
        super().__init__(message)
        self.run_id = run_id
        self.step = step
        self.attempts = attempts


class FlowRunStopped(SteadError):
    """A run waited for (`RunHandle.result()`) stopped without a result: it was Cancelled,
    or it Crashed and waits to be resumed; `run_id` and `state` say which."""

    def __init__(self, message: str, *, run_id: str, state: str) -> None:
        super().__init__(message)
        self.run_id = run_id
        self.state = state


class StepFailed(SteadError):
    """A step's recorded failure, raised again when a resumed run replays it and the original
    exception type cannot be rebuilt in this process (its module is not imported, or it does
    not take a message). `type_name`, `message` and `traceback` are the recorded ones."""

    def __init__(self, message: str, *, type_name: str, original_message: str,
                 traceback: str) -> None:
        super().__init__(message)
        self.type_name = type_name
        self.original_message = original_message
        self.traceback = traceback


class FlowNotLoadable(SteadError):
    """The flow function of a recorded run cannot be imported (to resume it from the CLI)."""


class LeaseLost(BaseException):
    """This process no longer holds the run it executes: its lease lapsed and the run was
    recovered (possibly by another worker). Nothing more may be written for it.

    A BaseException, like KeyboardInterrupt: `except Exception` in user code must not swallow
    it, and no retry policy applies. The executor stops; the run's new owner carries on.
    """

    def __init__(self, run_id: str, epoch: int, current: int | None) -> None:
        where = "is gone" if current is None else f"is now at lease epoch {current}"
        super().__init__(f"lost the lease on run {run_id}: this executor holds epoch {epoch}, "
                         f"the run {where}. Another executor owns it; this one stops.")
        self.run_id = run_id
        self.epoch = epoch
        self.current = current


class ExecutorLost(SteadError):
    """The process executing a run was lost (killed, crashed, its host gone) and the run was
    not requeued, having been recovered max_recoveries times already."""


class DeploymentNotFound(SteadError):
    """No deployment with the given name (or version) exists."""


class AccessDenied(SteadError):
    """The API key's role does not allow the request (the server answers 403). Something in
    another namespace is not denied but not found, so its existence does not leak."""


class RunCancelled(BaseException):
    """Raised in a worker's child process when the run it executes is cancelled: the run's
    code stops (like KeyboardInterrupt, `except Exception` does not catch it) and the worker
    records the run Cancelled."""


class SecretNotFound(SteadError):
    """No secret with the given name in the given namespace (see `stead secrets set`)."""


class SecretKeyMissing(SteadError):
    """No encryption key for secrets is configured (STEAD_SECRETS_KEY or its key file)."""


class SecretKeyMismatch(SteadError):
    """A stored secret cannot be decrypted with the configured keys: it was written with
    another key (or its stored ciphertext was altered or copied from another secret)."""


class SecretUnavailable(SteadError):
    """A recorded parameter's secret value was masked, not recorded, so a resume cannot
    supply it again: pass the value again, or pass it from `stead.secret()`."""


class FailedState(SteadError):
    """`State.result()` of a Failed, Crashed or Cancelled state that carries no exception
    (``Failed(message="no rows").result()``); `state` is that state (Prefect's FailedRun)."""

    def __init__(self, message: str, *, state: object = None) -> None:
        super().__init__(message)
        self.state = state

    def __repr__(self) -> str:
        return f"FailedState({str(self)!r})"


class UnfinishedState(SteadError):
    """`State.result()` of a state that has not finished (Pending, Running, Paused,
    Scheduled): wait for the run or the future, then ask again."""


class InvalidVariable(SteadError, ValueError):
    """A variable's name, value or tags cannot be stored: names are 1 to 255 lowercase
    letters, digits, `_` and `-`; values are JSON (str, number, bool, list, dict, None)."""


class VariableExists(SteadError, ValueError):
    """A variable of that name exists and the write did not ask to replace it: pass
    `overwrite=True` (`stead variables set NAME VALUE --overwrite`)."""


class ConcurrencyTimeout(SteadError, TimeoutError):
    """`stead.concurrency(...)` could not take its slots of a limit within `timeout_seconds`
    (a `TimeoutError`, as Prefect raises); `names` and `occupy` say which and how many."""

    def __init__(self, message: str, *, names: list[str], occupy: int) -> None:
        super().__init__(message)
        self.names = names
        self.occupy = occupy


class LimitNotFound(SteadError):
    """`stead.concurrency(..., strict=True)` names a limit that does not exist (create it
    with `stead limits set NAME --concurrency N`)."""


class WaitError(SteadError, ValueError):
    """A durable wait or a message cannot be done as asked: the run is unknown or finished,
    a payload is not JSON, a duration is negative, a message cannot be decoded into the type
    `receive` asked for. The message names the run, the topic or the field; nothing stored
    changes."""


class InvalidInput(WaitError):
    """Input sent to a run waiting in `stead.wait_for_input` does not fit the model's JSON
    Schema: `field` is the JSON path of the first value that does not fit ("" for the whole
    input) and `reason` why. The run keeps waiting."""

    def __init__(self, message: str, *, run_id: str = "", field: str = "",
                 reason: str = "") -> None:
        super().__init__(message)
        self.run_id = run_id
        self.field = field
        self.reason = reason


class WaitTimeout(SteadError, TimeoutError):
    """A wait ran out of time: `stead.receive(..., raise_on_timeout=True)`, or
    `stead.request(...)`/`stead.get_status(..., wait=...)` with no answer in time."""


class RequestRejected(SteadError):
    """The flow's `validate=` callable refused a `stead.request(...)` before accepting it;
    the message is the flow's reason."""
