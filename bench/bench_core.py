"""Core benchmark: per-task overhead, import time and resume time, as ratios from one run.

Run: python bench/bench_core.py [--tasks 1000] [--repeat 5]
Prints one table. Every figure is the median of --repeat measurements taken in this process
(import time: fresh interpreters), on the same disk, so the ratios compare like with like.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def median_time(fn, repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def bare_commit(folder: Path, n: int):
    """One INSERT + COMMIT on an SQLite file in WAL mode, synchronous=NORMAL (the floor).

    The table is the cheapest possible (an integer key and one small text column), so the
    ratio against it is the most conservative one we can give.
    """
    conn = sqlite3.connect(folder / "bare.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, result TEXT)")

    def insert_n() -> None:
        for i in range(n):
            conn.execute("INSERT INTO t (result) VALUES (?)", (str(i),))

    return insert_n


def plain_call_us(n: int, repeat: int) -> float:
    def trivial(i: int) -> int:
        return i + 1

    def loop() -> None:
        for i in range(n):
            trivial(i)

    return median_time(loop, repeat) / n * 1e6


def import_ms(repeat: int) -> float:
    def run(code: str) -> float:
        return median_time(lambda: subprocess.run([sys.executable, "-c", code], check=True),
                           repeat)

    return (run("import stead") - run("pass")) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=11)
    args = parser.parse_args()
    n, repeat = args.tasks, args.repeat
    folder = Path(tempfile.mkdtemp(prefix="stead-bench-"))
    os.environ["STEAD_HOME"] = str(folder / "home")
    os.environ["STEAD_CONSOLE"] = "0"

    import stead

    @stead.task
    def trivial(i: int) -> int:
        return i + 1

    @stead.flow
    def many(count: int) -> int:
        total = 0
        for i in range(count):
            total += trivial(i)
        return total

    many(10)  # create the database and warm up
    insert_n = bare_commit(folder, n)
    plain = plain_call_us(n, repeat)
    # Interleave the floor and the flow so machine noise hits both alike; report medians.
    commits, per_tasks = [], []
    for _ in range(repeat):
        commits.append(median_time(insert_n, 1) / n * 1e6)
        per_tasks.append(median_time(lambda: many(n), 1) / n * 1e6 - plain)
    commit, per_task = statistics.median(commits), statistics.median(per_tasks)
    ratio = statistics.median(p / c for p, c in zip(per_tasks, commits, strict=True))

    # Resume: a run of n steps whose first n-1 are recorded. The flow stops itself (like
    # Ctrl-C) before its last step the first time; the resume replays n-1 steps and runs one.
    stop = {"before_last": True}

    @stead.flow
    def stop_before_last(count: int) -> int:
        total = 0
        for i in range(count):
            if stop["before_last"] and i == count - 1:
                raise KeyboardInterrupt
            total += trivial(i)
        return total

    resume_samples = []
    for r in range(repeat):
        run_id = f"resume-{r}"
        stop["before_last"] = True
        try:
            stop_before_last.with_options(run_id=run_id)(n)
        except KeyboardInterrupt:
            pass
        stop["before_last"] = False
        start = time.perf_counter()
        stop_before_last.resume(run_id)
        resume_samples.append(time.perf_counter() - start)
    resume_ms = statistics.median(resume_samples) * 1000
    imp = import_ms(max(repeat, 9))

    rows = [
        ("bare INSERT+COMMIT (WAL, synchronous=NORMAL)", f"{commit:.1f} us", "1.00x commit"),
        ("plain function call", f"{plain:.2f} us", ""),
        (f"per-task overhead ({n} sequential tasks)", f"{per_task:.1f} us",
         f"{ratio:.2f}x commit (median of paired rounds), {per_task / plain:.0f}x plain call"),
        (f"resume a {n}-step run, {n - 1} recorded", f"{resume_ms:.1f} ms",
         f"{resume_ms * 1000 / n:.1f} us per replayed step"),
        ("import stead", f"{imp:.1f} ms", "target < 100 ms (stretch 50)"),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"{'measure':<{width}}  {'value':>10}  ratio")
    for name, value, ratio in rows:
        print(f"{name:<{width}}  {value:>10}  {ratio}")


if __name__ == "__main__":
    main()
