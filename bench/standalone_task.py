"""The cost of a task called outside any flow (a standalone task run) on SQLite.

Run: python bench/standalone_task.py [--calls 2000] [--repeat 5] [--src PATH]

Measures, in a fresh interpreter over a fresh STEAD_HOME, microseconds per call of:
- the bare function (`task.fn(x)`),
- the task called outside a flow with STEAD_TASKS_OUTSIDE_FLOWS=plain,
- the task called outside a flow as recorded by default (one run + one step each),
- the same task called inside one flow (one step each, for comparison),
- a flow whose body is one call of the task (a run and a step each, the way to record a
  lone call before standalone task runs),
- a bare INSERT + COMMIT on a SQLite file in WAL mode at the same synchronous level,
and prints them with the standalone call's ratio to the bare commit. `--src` imports Stead
from another checkout (e.g. main's src, to compare before and after). Medians of --repeat.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile

PROBE = r"""
import os, sqlite3, statistics, sys, time
n, repeat, mode = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
import stead
from stead.core.runtime import close_stores, store_for

@stead.task
def bump(i: int) -> int:
    return i + 1

@stead.flow
def inside(count: int) -> int:
    return sum(bump(i) for i in range(count))

@stead.flow
def one(i: int) -> int:
    return bump(i)

def flows(count):
    for i in range(count):
        one(i)

def per_call(fn):
    fn(n // 10)  # warm up: the store opened, code paths loaded
    times = []
    for _ in range(repeat):
        t = time.perf_counter(); fn(n); times.append(time.perf_counter() - t)
    return statistics.median(times) / n * 1e6

def outside(count):
    for i in range(count):
        bump(i)

def bare(count):
    for i in range(count):
        bump.fn(i)

if mode == "flow":
    print(per_call(inside))
elif mode == "oneflow":
    print(per_call(flows))
elif mode == "bare":
    print(per_call(bare))
elif mode == "commit":
    path = os.path.join(os.environ["STEAD_HOME"], "bare.db")
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL"); db.execute("PRAGMA synchronous=NORMAL")
    db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
    def commits(count):
        for i in range(count):
            db.execute("BEGIN IMMEDIATE"); db.execute("INSERT INTO t (v) VALUES (?)", (str(i),))
            db.execute("COMMIT")
    print(per_call(commits))
else:  # "record" or "plain": set by STEAD_TASKS_OUTSIDE_FLOWS in the environment
    print(per_call(outside))
"""


def measure(mode: str, calls: int, repeat: int, src: str | None) -> float:
    with tempfile.TemporaryDirectory() as home:
        env = dict(os.environ, STEAD_HOME=home, STEAD_CONSOLE="0")
        env.pop("STEAD_DATABASE_URL", None)
        if mode in ("record", "plain"):
            env["STEAD_TASKS_OUTSIDE_FLOWS"] = mode
        if src:
            env["PYTHONPATH"] = src
        out = subprocess.run([sys.executable, "-c", PROBE, str(calls), str(repeat), mode],
                             env=env, capture_output=True, text=True, check=True)
        return float(out.stdout.split()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--src", help="import Stead from this src folder (e.g. main's)")
    opts = parser.parse_args()
    rows = {mode: measure(mode, opts.calls, opts.repeat, opts.src)
            for mode in ("bare", "plain", "record", "oneflow", "flow", "commit")}
    labels = {"bare": "task.fn(x), the bare function",
              "plain": "outside a flow, STEAD_TASKS_OUTSIDE_FLOWS=plain",
              "record": "outside a flow, recorded (a standalone task run)",
              "oneflow": "a flow of one task call (a run + a step)",
              "flow": "inside a flow (one step)",
              "commit": "bare SQLite INSERT + COMMIT (WAL, synchronous=NORMAL)"}
    for mode, us in rows.items():
        print(f"{labels[mode]:<56} {us:9.1f} us/call")
    print(f"standalone task run / bare commit: {rows['record'] / rows['commit']:.1f}x; "
          f"/ flow of one task: {rows['record'] / rows['oneflow']:.2f}x")


if __name__ == "__main__":
    main()
