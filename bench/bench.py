"""Stead's benchmark: every figure measured in one run on this machine, printed as one table.

Run: python bench/bench.py [--tasks 1000] [--repeat 11]

Core: per-task overhead of sequential tasks against a plain call and against one bare SQLite
INSERT+COMMIT (paired rounds, so machine noise hits both alike), `import stead`, resuming a
1000-step run. Concurrency: 1000 trivial tasks through .map (thread runner), through
8-way asyncio.gather and through one 1000-way gather, commits per task achieved by group
commit, and the peak memory of a 10,000-task flow (in a fresh process). PostgreSQL:
per-task overhead against one INSERT+COMMIT there, when a server answers. Figures are
medians of --repeat rounds.
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


def import_ms(repeat: int, statement: str = "import stead") -> float:
    def run(code: str) -> float:
        return median_time(lambda: subprocess.run([sys.executable, "-c", code], check=True),
                           repeat)

    return (run(statement) - run("pass")) * 1000


def hand_written_checkpoints(n: int):
    """The least a checkpointing loop writing Stead's rows could cost: encode the arguments
    and the result, write the step row with one commit, nothing else (no engine)."""
    import time as clock

    from stead.core.runtime import store_for
    from stead.core.serialization import encode, encode_arguments
    from stead.store.base import RunRecord, StepRecord

    store = store_for()
    store.create_run(RunRecord(id="hand-written", flow_name="f", state="Running",
                               created_at=clock.time()))
    keys = iter(range(1, 10**9))

    def loop() -> None:
        for i in range(n):
            params = encode_arguments({"i": i})
            started = clock.time()
            result = encode(i + 1)
            store.record_step(StepRecord("hand-written", str(next(keys)), "trivial", "task",
                                         "Completed", 1, started, clock.time(), params, result))

    return loop


def concurrency_figures(n: int, repeat: int) -> dict[str, float]:
    import asyncio

    import stead
    from stead.core.runtime import store_for
    from stead.core.writer import writer_for

    @stead.task
    def bump(i: int) -> int:
        return i + 1

    @stead.task
    async def abump(i: int) -> int:
        return i + 1

    @stead.flow  # the default runner: ThreadPoolTaskRunner(min(32, cores + 4))
    def mapped(count: int) -> int:
        return sum(f.result() for f in bump.map(range(count)))

    @stead.flow
    async def gathered(count: int) -> int:
        total = 0
        for start in range(0, count, 8):
            total += sum(await asyncio.gather(*(abump(i) for i in range(start, start + 8))))
        return total

    @stead.flow
    async def gathered_all(count: int) -> int:
        return sum(await asyncio.gather(*(abump(i) for i in range(count))))

    mapped(10)
    writer = writer_for(store_for())
    commits0, records0 = writer.commits, writer.records
    map_s = median_time(lambda: mapped(n), repeat)
    commits = (writer.commits - commits0) / max(1, writer.records - records0)
    gather_s = median_time(lambda: asyncio.run(gathered(n)), repeat)
    gather_all_s = median_time(lambda: asyncio.run(gathered_all(n)), repeat)
    return {"map_ms": map_s * 1000, "map_rate": n / map_s, "commits_per_task": commits,
            "gather_ms": gather_s * 1000, "gather_rate": n / gather_s,
            "gather_all_ms": gather_all_s * 1000, "gather_all_ratio": gather_all_s / map_s}


RSS_PROBE = """
import gc, os, resource, sys, tracemalloc
import stead

@stead.task
def payload(i: int) -> str:
    return "x" * 1000 + str(i)     # ~1 KB result each: 10 MB if all were kept

@stead.flow(task_runner=stead.ThreadPoolTaskRunner(max_workers=8))
def big(count: int) -> int:
    futures = payload.map(range(count))
    return sum(len(f.result()) for f in futures)

def rss_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024

from stead.core.runtime import store_for

import stead.core.dispatch                   # warm the imports .map() needs (a task called
                                            # outside a flow would record a run of its own)
store_for()                                 # create the database (migrations) beforehand
if sys.argv[2] == "trace":                  # Python objects still alive after the flow
    tracemalloc.start()
    big(int(sys.argv[1]))
    gc.collect()
    print(tracemalloc.get_traced_memory()[0] / 2**20)
else:                                       # the process's peak resident memory
    before = rss_mb()
    big(int(sys.argv[1]))
    print(before, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""


def peak_rss_mb(count: int) -> dict[str, float]:
    """Peak RSS of a fresh process running a `count`-task flow, and what the flow leaves."""
    def probe(mode: str) -> list[float]:
        out = subprocess.run([sys.executable, "-c", RSS_PROBE, str(count), mode],
                             capture_output=True, text=True, check=True,
                             env={**os.environ, "STEAD_CONSOLE": "0"})
        return [float(x) for x in out.stdout.split()]

    before, peak = probe("rss")
    [retained] = probe("trace")
    return {"peak": peak, "delta": peak - before, "retained": retained}


PG_PROBE = """
import os, statistics, sys, time
import psycopg
import stead

url, n, repeat = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])

@stead.task
def trivial(i: int) -> int:
    return i + 1

@stead.flow(database_url=url)
def many(count: int) -> int:
    return sum(trivial(i) for i in range(count))

many(10)
conn = psycopg.connect(url, autocommit=True)
conn.execute("CREATE TABLE IF NOT EXISTS bench_bare (id serial PRIMARY KEY, result text)")
def bare():
    for i in range(n):
        conn.execute("INSERT INTO bench_bare (result) VALUES (%s)", (str(i),))
commits, tasks = [], []
for _ in range(repeat):
    t = time.perf_counter(); bare(); commits.append((time.perf_counter() - t) / n * 1e6)
    t = time.perf_counter(); many(n); tasks.append((time.perf_counter() - t) / n * 1e6)
print(statistics.median(commits), statistics.median(tasks),
      statistics.median(t / c for t, c in zip(tasks, commits)))
"""


def postgres_figures(n: int, repeat: int) -> tuple[float, float, float] | None:
    """Per-task overhead on PostgreSQL against one INSERT+COMMIT there, when a server answers
    (STEAD_BENCH_POSTGRES_URL, else 127.0.0.1:5432); None otherwise. Uses a fresh database."""
    admin = os.environ.get("STEAD_BENCH_POSTGRES_URL",
                           "postgresql://postgres@127.0.0.1:5432/postgres")
    try:
        import psycopg

        with psycopg.connect(admin, autocommit=True, connect_timeout=3) as conn:
            conn.execute("DROP DATABASE IF EXISTS stead_bench WITH (FORCE)")
            conn.execute("CREATE DATABASE stead_bench")
    except Exception:
        return None
    url = admin.rsplit("/", 1)[0] + "/stead_bench"
    try:
        out = subprocess.run([sys.executable, "-c", PG_PROBE, url, str(n), str(repeat)],
                             capture_output=True, text=True, check=True,
                             env={**os.environ, "STEAD_CONSOLE": "0"})
        commit, task, ratio = map(float, out.stdout.split())
        return commit, task, ratio
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute("DROP DATABASE IF EXISTS stead_bench WITH (FORCE)")


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
    # Interleave the floor, the hand-written loop and the flow so machine noise hits all
    # alike; report medians, and ratios as medians of per-round ratios.
    hand_written = hand_written_checkpoints(n)
    commits, manuals, per_tasks = [], [], []
    for _ in range(repeat):
        commits.append(median_time(insert_n, 1) / n * 1e6)
        manuals.append(median_time(hand_written, 1) / n * 1e6)
        per_tasks.append(median_time(lambda: many(n), 1) / n * 1e6 - plain)
    commit, per_task = statistics.median(commits), statistics.median(per_tasks)
    manual = statistics.median(manuals)
    ratio = statistics.median(p / c for p, c in zip(per_tasks, commits, strict=True))
    manual_ratio = statistics.median(m / c for m, c in zip(manuals, commits, strict=True))

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
    imp_engine = import_ms(max(repeat, 9), "from stead import flow, task")
    conc = concurrency_figures(n, repeat)
    rss = peak_rss_mb(10_000)
    pg = postgres_figures(n, max(3, repeat // 2))

    rows = [
        ("bare INSERT+COMMIT (WAL, synchronous=NORMAL)", f"{commit:.1f} us", "1.00x commit"),
        ("plain function call", f"{plain:.2f} us", ""),
        ("hand-written checkpoint loop, same rows", f"{manual:.1f} us",
         f"{manual_ratio:.2f}x commit: the store's share of the per-task cost"),
        (f"per-task overhead ({n} sequential tasks)", f"{per_task:.1f} us",
         f"{ratio:.2f}x commit (median of paired rounds), {per_task / plain:.0f}x plain call"),
        (f"resume a {n}-step run, {n - 1} recorded", f"{resume_ms:.1f} ms",
         f"{resume_ms * 1000 / n:.1f} us per replayed step"),
        ("import stead", f"{imp:.1f} ms", "names load on first use"),
        ("from stead import flow, task (the engine)", f"{imp_engine:.1f} ms",
         "target < 100 ms (stretch 50); bench/import_time.py splits it"),
        (f"{n} trivial tasks via .map (default runner)", f"{conc['map_ms']:.1f} ms",
         f"{conc['map_rate']:,.0f} tasks/s (target 10,000; stretch 20,000)"),
        (f"{n} trivial async tasks, 8-way gather", f"{conc['gather_ms']:.1f} ms",
         f"{conc['gather_rate']:,.0f} tasks/s"),
        (f"{n} trivial async tasks, one {n}-way gather", f"{conc['gather_all_ms']:.1f} ms",
         f"{conc['gather_all_ratio']:.2f}x the .map (bench/async_gather.py: PostgreSQL too)"),
        ("group commit during the .map runs", f"{conc['commits_per_task']:.3f}",
         "commits per task"),
        ("peak RSS, flow of 10,000 mapped 1 KB results", f"{rss['peak']:.0f} MB",
         f"+{rss['delta']:.0f} MB over the process before it; {rss['retained']:.1f} MB of "
         "Python objects left after it"),
    ]
    if pg is not None:
        rows += [("PostgreSQL: bare INSERT+COMMIT", f"{pg[0]:.1f} us", "1.00x PG commit"),
                 (f"PostgreSQL: per task ({n} sequential tasks)", f"{pg[1]:.1f} us",
                  f"{pg[2]:.2f}x PG commit")]
    else:
        rows.append(("PostgreSQL", "-", "no server answered: figures skipped"))
    width = max(len(r[0]) for r in rows)
    print(f"{'measure':<{width}}  {'value':>10}  ratio")
    for name, value, ratio in rows:
        print(f"{name:<{width}}  {value:>10}  {ratio}")


if __name__ == "__main__":
    main()
