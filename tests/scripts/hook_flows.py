"""A flow with state hooks, for the crash-hook tests (tests/worker/test_crash_hooks.py).

Every hook appends "KIND RUN_ID PID" to the file named by the run's `out` parameter plus
".hooks" (it reads the parameter from the flow_run it gets). The flow records one step,
then, the first time (no `marker` file yet), creates `marker` and sleeps for an hour: the
test kills its process there. Run as a script: ``hook_flows.py RUN_ID OUT MARKER``.
"""

import os
import sys
import time

from stead import flow, task


def _write(kind: str, flow_run: object) -> None:
    out = flow_run.parameters["out"]  # type: ignore[attr-defined]
    with open(out + ".hooks", "a") as f:
        f.write(f"{kind} {flow_run.id} {os.getpid()}\n")  # type: ignore[attr-defined]


def crashed(flow, flow_run, state):
    assert state.is_crashed(), state
    _write("crashed", flow_run)


def completed(flow, flow_run, state):
    assert state.is_completed(), state
    _write("completed", flow_run)


def cancelled(flow, flow_run, state):
    assert state.is_cancelling(), state
    _write("cancelling", flow_run)


def running(flow, flow_run, state):
    _write("running", flow_run)


@task
def effect(out: str) -> int:
    with open(out, "a") as f:
        f.write(f"{os.getpid()}\n")
    return os.getpid()


@flow(on_crashed=crashed, on_completion=[completed], on_running=running,
      on_cancellation=cancelled)
def hooked(out: str, marker: str) -> str:
    effect(out)
    if not os.path.exists(marker):
        open(marker, "w").close()
        time.sleep(3600)  # killed here
    return "survived"


if __name__ == "__main__":
    print(hooked.with_options(run_id=sys.argv[1])(sys.argv[2], sys.argv[3]))
