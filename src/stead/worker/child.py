"""What runs inside a worker's child process: execute claimed runs, one at a time, for as long
as the worker keeps the child (a reusable pool: no Python start-up per run).

The child opens its own store connections. It reports each run's final state to the worker
over its pipe. If it loses a run's lease (the run was recovered elsewhere while this child
was paused), it reports that and exits, so the worker replaces it with a clean process. If
the database could not be reached for longer than the store retries (StoreError), nothing is
recorded for the run: the child reports "store_error" and serves on; the worker hands the
run back to its queue once the database answers again.

Messages to the worker: ("ready", pid), ("done", run id, state, summary) (summary: flow name,
duration and, for a run that did not complete, the reason, for the worker's line),
("lost", run id, why),
("cancelled", run id), ("store_error", run id, why).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from multiprocessing.connection import Connection

from stead.errors import FlowNotLoadable, LeaseLost, ParameterError, RunCancelled, StoreError
from stead.store.base import Fence, RunRecord, Store
from stead.worker.entrypoints import check_entrypoint

LOST_LEASE_EXIT = 3
CANCELLED_EXIT = 4
_executing = False  # SIGUSR1 (cancel) interrupts a run, never the wait for the next one


def _cancel(signum: int, frame: object) -> None:
    if _executing:
        raise RunCancelled("the run was cancelled")


def child_main(conn: Connection, database_url: str, worker_pid: int, lease_s: float) -> None:
    """Entry point of a pool child: serve runs sent by the worker until told to stop."""
    # Ctrl-C and SIGTERM sent to the whole process group are the worker's to handle (drain);
    # the worker stops its children itself.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    # The worker's --lease is this process's lease, for tag slots too (core/limits.py).
    os.environ["STEAD_LEASE_SECONDS"] = repr(lease_s)
    from stead.settings import reset_settings

    reset_settings()
    signal.signal(signal.SIGUSR1, _cancel)  # the worker's "stop this run": see worker.py
    threading.Thread(target=_exit_with_parent, args=(worker_pid,), name="stead-orphan-check",
                     daemon=True).start()
    from stead.core.runtime import store_for

    store = store_for(database_url)
    conn.send(("ready", os.getpid()))
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            break
        if message is None:
            break
        run = RunRecord(*message)
        global _executing
        try:
            _executing = True
            final = execute(store, run)
        except LeaseLost as exc:
            conn.send(("lost", run.id, str(exc)))
            sys.stderr.flush()
            os._exit(LOST_LEASE_EXIT)
        except RunCancelled:  # threads of the run may still be busy: start afresh
            conn.send(("cancelled", run.id))
            sys.stderr.flush()
            os._exit(CANCELLED_EXIT)
        except StoreError as exc:  # nothing was recorded: the worker hands the run back
            conn.send(("store_error", run.id, str(exc)))
            continue
        finally:
            _executing = False
        conn.send(("done", run.id, final.state, outcome_summary(final)))


def outcome_summary(run: RunRecord) -> str:
    """How a finished run ended, in one line for the worker's console, e.g.
    ``etl in 1.2 s: ValueError: bad row 7 (step 3 'load', 3 attempts)``."""
    import json

    took = ""
    if run.started_at is not None and run.ended_at is not None:
        seconds = max(run.ended_at - run.started_at, 0)
        took = f" in {seconds * 1000:.0f} ms" if seconds < 1 else f" in {seconds:.1f} s"
    text = f"{run.flow_name}{took}"
    if run.state in ("Paused", "Pending"):
        return f"{text}: parked until its wait is over (no process holds it)"
    if run.state == "Completed" or not run.error:
        return text
    try:
        error = json.loads(run.error)
    except ValueError:
        return f"{text}: {run.error.splitlines()[0][:300]}"
    kind = str(error.get("type") or "").rsplit(".", 1)[-1]
    message = " ".join(str(error.get("message") or "").split())  # one line
    if len(message) > 300:
        message = message[:299] + "…"
    where = []
    if error.get("step"):
        where.append(f"step {error['step']}")
    if error.get("attempts"):
        where.append(f"{error['attempts']} attempts")
    reason = f"{kind}: {message}" if kind else message
    return f"{text}: {reason}" + (f" ({', '.join(where)})" if where else "")


def execute(store: Store, run: RunRecord) -> RunRecord:
    """Execute one claimed run to its end; return its record as it ended."""
    from stead.core.loader import load_flow
    from stead.core.steps import error_json

    fence = Fence(run.id, run.lease_epoch)
    params = None
    try:
        check_entrypoint(store, run)  # before anything of the run is imported
        flow = load_flow(run)
        if run.deployment is not None:  # JSON values from a deployment: make them typed
            from stead.core.serialization import decode
            from stead.deployments.params import typed_parameters

            params = typed_parameters(flow.fn, decode(run.params))
    except (FlowNotLoadable, ParameterError) as exc:
        run.error = error_json(exc)
        run.ended_at = time.time()
        store.transition_run(run, "Failed", run.ended_at, str(exc), fence=fence)
        run.state = "Failed"
        return run
    try:
        flow.execute_claimed(run, store, params)
    except StoreError:  # the database is unreachable: nothing could be recorded
        raise
    except Exception:  # the engine recorded the failure, with its traceback
        pass
    if run.state in ("Completed", "Failed", "Cancelled") and run.ended_at is not None:
        return run  # the engine's copy, as it recorded it (no round trip)
    return store.get_run(run.id)


def _exit_with_parent(worker_pid: int) -> None:
    """A child whose worker died stops too: its leases lapse and another worker recovers.

    The child's parent is the forkserver, which exits with the worker; check both."""
    parent = os.getppid()
    while True:
        time.sleep(1.0)
        try:
            os.kill(worker_pid, 0)
        except ProcessLookupError:
            os._exit(1)
        except PermissionError:
            pass
        if os.getppid() != parent:
            os._exit(1)
