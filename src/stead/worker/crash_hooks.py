"""on_crashed hooks of runs recovered after their executor was lost.

The process that records such a crash (a worker that saw its child die, a reaper, a
worker's start-up recovery, the server's background reaper, `stead runs resume` handing a
run back) is the only one to record it: recording is a compare-and-set on the run's lease
epoch. That process then starts ``python -m stead.worker.crash_hooks RUN_ID...``, a short
process of its own, which imports each run's flow as a worker would (the same entrypoint
check, core/loader.py) and calls its on_crashed hooks. So user code never runs inside the
worker's loop or the server, a slow or failing hook delays no heartbeat, and a flow that
cannot be loaded is said in the run's log without failing the recovery. The run's log
records that the hooks ran ("on_crashed hooks ran: ...").
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

from stead.store.base import RunRecord, Store

_WARNING = 30  # the logging module's level


def start_crash_hooks(store: Store, run_ids: list[str]) -> None:
    """Start the process that runs the on_crashed hooks of `run_ids` (just recorded Crashed
    by this process); return at once. It gets the store's URL, and the rest of this
    process's environment (an API key in remote mode).

    Example:
        >>> if store.recover_run(run.id, run.lease_epoch, now, reason) is not None:
        ...     start_crash_hooks(store, [run.id])
    """
    if not run_ids:
        return
    env = {**os.environ, "STEAD_DATABASE_URL": store.url}
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "stead.worker.crash_hooks", *run_ids], env=env,
            stdin=subprocess.DEVNULL, start_new_session=True)  # outlives a killed worker group
    except OSError as exc:  # never fails the recovery
        from stead.core import console

        console.say("stead", f"could not start the on_crashed hooks of {', '.join(run_ids)}: "
                             f"{exc}")
        return
    threading.Thread(target=proc.wait, name="stead-crash-hooks", daemon=True).start()


def run_crash_hooks(store: Store, run: RunRecord) -> bool:
    """Import `run`'s flow and call its on_crashed hooks; False (said in the run's log) if
    its code cannot be loaded."""
    from stead.core.hooks import flow_hooks
    from stead.core.loader import load_flow
    from stead.errors import FlowNotLoadable
    from stead.worker.entrypoints import check_entrypoint

    try:
        check_entrypoint(store, run)
        flow = load_flow(run)
    except FlowNotLoadable as exc:
        _log(store, run, _WARNING, "on_crashed hooks not run (if the flow has any): its code "
                                   f"could not be loaded here: {exc}")
        return False
    history = [h for h in store.run_history(run.id) if h.state == "Crashed"]
    message = history[-1].message if history else None
    flow_hooks(flow, "on_crashed", run, store, message=message)
    return True


def _log(store: Store, run: RunRecord, level: int, text: str) -> None:
    from stead.core import console
    from stead.store.base import LogRecord

    console.say(console.run_label(run.flow_name, run.id), text)
    store.append_logs([LogRecord(run.id, None, time.time(), level, text)])


def main(run_ids: list[str]) -> int:
    from stead.core.runtime import configure_console, store_for

    configure_console()
    store = store_for()
    failed = 0
    for run_id in run_ids:
        try:
            run = store.get_run(run_id)
            if not run_crash_hooks(store, run):
                failed += 1
        except Exception as exc:  # one run's trouble does not keep the others' hooks
            failed += 1
            print(f"stead: on_crashed hooks of run {run_id}: {type(exc).__name__}: {exc}",
                  file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
