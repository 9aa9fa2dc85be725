"""Flows a test serves: `python served_flows.py MODE OUT` serves them until SIGINT/SIGTERM.

MODE "interval": `tick` every second (writes one line per run to OUT) and `slow` on demand
(no schedule; sleeps `seconds`), both in one process through `stead.serve`.
"""

import sys
import time

from stead import flow, runtime, serve, task


@task
def note(out: str, text: str) -> None:
    with open(out, "a") as f:
        f.write(text + "\n")


@flow
def tick(out: str, label: str = "tick") -> str:
    note(out, f"{label} {runtime.flow_run.id} {runtime.deployment.name} "
              f"{runtime.flow_run.scheduled_start_time.timestamp():.0f}")
    return label


@flow
def slow(out: str, seconds: float = 600.0) -> str:
    note(out, f"slow {runtime.flow_run.id} started")
    time.sleep(seconds)
    note(out, f"slow {runtime.flow_run.id} finished")
    return "slow done"


if __name__ == "__main__":
    mode, out = sys.argv[1], sys.argv[2]
    if mode == "interval":
        serve(tick.to_deployment("ticking", interval=1, parameters={"out": out}),
              slow.to_deployment("slow", parameters={"out": out}), limit=2)
    elif mode == "one":
        tick.serve(interval=1, parameters={"out": out}, limit=1)
    print("serve returned", flush=True)
