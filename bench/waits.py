"""Stead's benchmark of durable waits and messages: every figure measured in one run on this
machine, as one table (issue 18).

Run: python bench/waits.py [--requests 500] [--parked 10000] [--timers 200] [--pg URL]

Workers are real `stead worker start` processes started as bench/workers.py starts them
(its `Fleet`: --poll 0.05, STEAD_CONSOLE=0, bench/ on their PYTHONPATH, logs to files),
executing flows of bench/bench_wait_flows.py. Each measurement gets a fresh database: an
SQLite file in the temporary folder, and a database created on the PostgreSQL server at --pg
(default postgresql://postgres@127.0.0.1:5432/postgres; its rows are skipped with a note if no
server answers) and dropped afterwards. Every worker's children are warmed up first (each
executes 2 runs of `warm`: a task step, a 0 s sleep and a status).

What is timed:
- Round trip, live run: one worker (1 child, STEAD_PARK_AFTER_SECONDS=3600 so the run never
  parks) executes `echo`, a loop of `msg = stead.receive("ping"); msg.reply(msg.payload)`.
  This process calls `stead.request(run_id, "ping", i, timeout=10)` --warmup times untimed,
  then --requests times, one after the other; each call is timed (perf_counter) from the call
  to its return with the reply, which is checked. p50 and p99.
- Round trip, parked run: the same with STEAD_PARK_AFTER_SECONDS=0.001 (the setting must be
  > 0), so the run parks
  (Paused, no lease, no process) whenever no message is waiting; before each request the
  bench waits (untimed) until the run is Paused. Each request therefore pays for the wake
  (the send moves it to Pending), the claim, and the replay of the run's recorded steps,
  which grow by one receive per request: the medians of the first and last tenth of the
  requests are shown too.
- Parking at scale: 2 workers x 2 children (--concurrency) start on a queue whose limit is 0
  (as bench/workers.py does); --parked runs of `hour_nap` (a one-hour `stead.sleep`) are
  enqueued (their enqueue time is reported apart); the clock starts when the limit is lifted
  and stops at the last run's Paused entry in the run_history table. Then, with every run
  parked: the worker processes' live processes, threads (/proc/PID/task) and RSS
  (/proc/PID/status), compared with the same figures before the runs were enqueued; the
  runs parked with no lease and no worker (SQL count); the database's size (SQLite: pages in
  use after a WAL checkpoint; PostgreSQL: pg_database_size) before enqueueing, with the runs
  Pending, and with them parked, per run.
- Waking at scale: the parking workers are stopped; this process calls the store's
  `wake_due_runs(now + 3601)` (1,000 runs per call, the verb's default) until it has woken
  them all: timed with perf_counter. Then 2 workers x 2 children whose clock is an hour and
  two minutes ahead (libfaketime, as the worker tests do) start on the queue (limit 0, then
  lifted) and resume every run: from the lift to the last run's ended_at (the resume rate).
  Their children are not warmed up (the queue holds only the parked runs).
- Timer lateness: --timers runs of `alarm(D)` (`stead.sleep(until=D)`, then return
  time.time()), on 2 workers x 2 children with the default STEAD_PARK_AFTER_SECONDS; D is
  set far enough ahead for all of them to park first (from the parking rate measured above;
  checked). Lateness of the run = the time the flow returned - D; lateness of the wake = the
  time of the run's Pending entry in `store.run_history` (written by the worker's
  `wake_due_runs`) - D, so store/worker latency shows apart from execution throughput.
  With --timers-large N, the same with N timers.
Peers' figures are quoted from issue 18 ("Benchmark"), not measured here (DBOS, Temporal and
Prefect are not installed); the ratio beside each is Stead's figure over the quoted one.
One measurement per figure: rerun to see the spread.
"""

from __future__ import annotations

import argparse
import glob
import os
import shutil
import signal
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from workers import (
    QUEUE,
    Backends,
    BenchError,
    Fleet,
    WorkerProc,
    group_members,
    log,
    percentile,
    wait_until,
)
from workers import flows as worker_flows

FAKETIME_LIB = next(iter(glob.glob("/usr/lib/*/faketime/libfaketime.so.1")), "")
AHEAD = "+3720s"  # the resuming workers' clock: past every one-hour sleep parked before
Row = tuple[str, str, str, str]


class WaitFleet(Fleet):
    """bench/workers.py's fleet, with settings for the workers' environment."""

    def start_with(self, url: str, tag: str, env: dict[str, str], *,
                   concurrency: int) -> WorkerProc:
        saved = self.env
        self.env = {**saved, **env}
        try:
            return self.start(url, tag, concurrency=concurrency)
        finally:
            self.env = saved


def flows(url: str) -> Any:
    """bench_wait_flows, imported as the workers import it, bound to `url`."""
    return worker_flows(url, "bench_wait_flows")


def query(url: str, sql: str, args: tuple[Any, ...] = ()) -> Any:
    """One row of a read-only query, on a connection of its own (`?` marks parameters)."""
    if url.startswith("sqlite:///"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            return conn.execute(sql, args).fetchone()
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(sql.replace("?", "%s"), args).fetchone()


def db_bytes(url: str) -> int:
    """The database's size: SQLite pages in use after a WAL checkpoint; PostgreSQL's
    pg_database_size."""
    if url.startswith("sqlite:///"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            pages, free, size = (conn.execute(f"PRAGMA {p}").fetchone()[0]
                                 for p in ("page_count", "freelist_count", "page_size"))
            return int((pages - free) * size)
    return int(query(url, "SELECT pg_database_size(current_database())")[0])


def footprint(workers: list[WorkerProc]) -> tuple[int, int, int]:
    """(live processes, threads, RSS bytes) of these workers' process groups."""
    procs = threads = rss = 0
    for w in workers:
        for pid in group_members(w.pid):
            try:
                threads += len(os.listdir(f"/proc/{pid}/task"))
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue
            procs += 1
            rss += next((int(line.split()[1]) * 1024 for line in status.splitlines()
                         if line.startswith("VmRSS:")), 0)
    return procs, threads, rss


def start_warm(fleet: WaitFleet, store: Any, url: str, tag: str, n: int, concurrency: int,
               env: dict[str, str]) -> list[WorkerProc]:
    """`n` workers, registered and warmed up (2 runs of `warm` per child), then left on a
    queue whose limit is 0."""
    store.set_queue(QUEUE, 0)
    workers = [fleet.start_with(url, tag, env, concurrency=concurrency) for _ in range(n)]
    fleet.wait_registered(store, workers)
    store.set_queue(QUEUE, None)
    warm = [flows(url).warm.enqueue(i, queue=QUEUE) for i in range(2 * n * concurrency)]
    wait_until(lambda: all(store.get_run(i).state == "Completed" for i in warm), 60,
               f"{tag}: the warm-up", fleet, workers)
    store.set_queue(QUEUE, 0)
    return workers


def state_count(url: str, state: str) -> int:
    return int(query(url, "SELECT count(*) FROM runs WHERE state = ? AND flow_name != 'warm'",
                     (state,))[0])


def wait_count(store: Any, url: str, fleet: Fleet, workers: list[WorkerProc], state: str,
               want: int, timeout: float, what: str) -> None:
    """Until `want` runs (other than the warm-up) are in `state`; fails on a Failed one."""
    deadline = time.monotonic() + timeout
    last = time.monotonic()
    while (seen := state_count(url, state)) < want:
        fleet.check_alive(workers)
        if failed := state_count(url, "Failed"):
            raise BenchError(f"{what}: {failed} runs Failed")
        if time.monotonic() > deadline:
            raise BenchError(f"{what}: {seen} of {want} runs {state} after {timeout:g} s")
        if time.monotonic() - last > 5:
            log(f"  {what}: {seen} of {want} {state}")
            last = time.monotonic()
        time.sleep(0.05)


# -- measurements -------------------------------------------------------------------------
def round_trip(backends: Backends, fleet: WaitFleet, backend: str, requests: int,
               warmup: int, parked: bool) -> dict[str, float]:
    import stead
    from stead.core.runtime import store_for

    with backends.fresh(backend) as url:
        store = store_for(url)
        env = {"STEAD_PARK_AFTER_SECONDS": "0.001" if parked else "3600"}
        workers = start_warm(fleet, store, url, f"{backend}-rtt", 1, 1, env)
        try:
            store.set_queue(QUEUE, None)
            rid = flows(url).echo.enqueue(warmup + requests, queue=QUEUE)
            samples = []
            for i in range(warmup + requests):
                if parked:
                    wait_until(lambda: store.get_run(rid).state == "Paused", 30,
                               f"run {rid} to park", fleet, workers)
                t = time.perf_counter()
                reply = stead.request(rid, "ping", i, timeout=10, database_url=url)
                samples.append((time.perf_counter() - t) * 1000)
                if reply != i:
                    raise BenchError(f"request {i} to run {rid} got the reply {reply!r}")
            wait_until(lambda: store.get_run(rid).state == "Completed", 30,
                       f"run {rid} to complete", fleet, workers)
            resumes = sum(1 for h in store.run_history(rid) if h.state == "Running")
            msgs = store.list_messages(rid, "ping", limit=warmup + requests)[warmup:]
        finally:
            fleet.stop(workers)
    timed = samples[warmup:]
    tenth = max(1, len(timed) // 10)
    taken = [(m.consumed_at - m.sent_at) * 1000 for m in msgs]
    replied = [(m.replied_at - m.consumed_at) * 1000 for m in msgs]
    rest = [t - (m.replied_at - m.sent_at) * 1000 for t, m in zip(timed, msgs, strict=True)]
    return {"p50": statistics.median(timed), "p99": percentile(timed, 99), "n": len(timed),
            "first": statistics.median(timed[:tenth]), "last": statistics.median(timed[-tenth:]),
            "starts": resumes, "taken": statistics.median(taken),
            "slope": statistics.linear_regression(range(len(timed)), timed).slope
            if len(timed) > 1 else 0.0,
            "replied": statistics.median(replied), "rest": statistics.median(rest)}


def split(r: dict[str, float]) -> str:
    """Where a round trip's time goes (medians of the stored messages' times)."""
    return (f"send -> taken by the flow {r['taken']:.1f} ms, -> replied {r['replied']:.1f} "
            f"ms, the requester's send and poll {r['rest']:.1f} ms")


def park_and_wake(backends: Backends, fleet: WaitFleet, backend: str, k: int,
                  concurrency: int) -> dict[str, float]:
    from stead.core.runtime import store_for

    with backends.fresh(backend) as url:
        store = store_for(url)
        bound = flows(url)
        workers = start_warm(fleet, store, url, f"{backend}-park", 2, concurrency, {})
        try:
            size0 = db_bytes(url)
            fp0 = footprint(workers)
            t = time.perf_counter()
            for _ in range(k):
                bound.hour_nap.enqueue(queue=QUEUE)
            enqueue_s = time.perf_counter() - t
            size1 = db_bytes(url)
            lifted = time.time()
            store.set_queue(QUEUE, None)
            wait_count(store, url, fleet, workers, "Paused", k, 60 + k / 20, "parking")
            last_parked = query(url, "SELECT max(at) FROM run_history WHERE state = 'Paused'")[0]
            time.sleep(1.0)  # settled: a thread a worker starts now and then has ended
            fp1 = footprint(workers)
            unleased = query(url, "SELECT count(*) FROM runs WHERE state = 'Paused' AND "
                             "lease_expires_at IS NULL AND worker_id IS NULL")[0]
            waits = query(url, "SELECT count(*) FROM waits WHERE parked = TRUE")[0]
        finally:
            fleet.stop(workers)
        size2 = db_bytes(url)
        log(f"  {k} parked in {last_parked - lifted:.2f} s; waking them")
        woken, calls = 0, 0
        t = time.perf_counter()
        while woken < k:
            n, _ = store.wake_due_runs(time.time() + 3601)
            woken += n
            calls += 1
            if n == 0:
                raise BenchError(f"wake_due_runs woke {woken} of {k} runs, then none")
        wake_s = time.perf_counter() - t
        log(f"  woken in {wake_s:.2f} s ({calls} calls); resuming on workers {AHEAD} ahead")
        ahead = {"LD_PRELOAD": FAKETIME_LIB, "FAKETIME": AHEAD, "FAKETIME_DONT_RESET": "1"}
        store.set_queue(QUEUE, 0)
        resumers = [fleet.start_with(url, f"{backend}-resume", ahead, concurrency=concurrency)
                    for _ in range(2)]
        try:
            fleet.wait_registered(store, resumers)
            lifted2 = time.time()
            store.set_queue(QUEUE, None)
            wait_count(store, url, fleet, resumers, "Completed", k, 60 + k / 20, "resuming")
            # The resumers' clock is ahead: their ended_at is too, by the same offset.
            last_ended = query(url, "SELECT max(ended_at) FROM runs WHERE flow_name != 'warm'")[0]
            resume_s = last_ended - float(AHEAD.strip("+s")) - lifted2
        finally:
            fleet.stop(resumers)
    return {"park_s": last_parked - lifted, "enqueue_s": enqueue_s, "wake_s": wake_s,
            "calls": calls, "resume_s": resume_s, "unleased": unleased, "waits": waits,
            "fp0": fp0, "fp1": fp1, "size0": size0, "size1": size1, "size2": size2}


def timers(backends: Backends, fleet: WaitFleet, backend: str, t: int, concurrency: int,
           park_rate: float) -> dict[str, float]:
    from stead.core.runtime import store_for
    from stead.core.serialization import decode

    with backends.fresh(backend) as url:
        store = store_for(url)
        bound = flows(url)
        workers = start_warm(fleet, store, url, f"{backend}-timers", 2, concurrency, {})
        try:
            # Enqueueing, then parking every run, then the park threshold (5 s) with room.
            ahead = 1.5 * t / park_rate + 8.0 + t * 0.002
            due = time.time() + ahead
            ids = [bound.alarm.enqueue(due, queue=QUEUE) for _ in range(t)]
            store.set_queue(QUEUE, None)
            wait_count(store, url, fleet, workers, "Paused", t, ahead, "timers parking")
            if time.time() > due - 5:
                raise BenchError(f"{t} timers were not parked before their due time")
            log(f"  {t} timers parked; due in {due - time.time():.1f} s")
            wait_count(store, url, fleet, workers, "Completed", t, ahead + 60 + t / 20,
                       "timers")
        finally:
            fleet.stop(workers)
        ran, woke = [], []
        for rid in ids:
            run = store.get_run(rid)
            ran.append((decode(run.result) - due) * 1000)
            history = store.run_history(rid)
            paused = max(i for i, h in enumerate(history) if h.state == "Paused")
            woke.append((next(h.at for h in history[paused:] if h.state == "Pending") - due)
                        * 1000)
    return {"p50": statistics.median(ran), "p99": percentile(ran, 99), "max": max(ran),
            "wake_p50": statistics.median(woke), "wake_p99": percentile(woke, 99),
            "wake_max": max(woke), "ahead": ahead}


# -- the table ------------------------------------------------------------------------------
def x(value: float, reference: float) -> str:
    """Stead's figure over a reference figure, as people read a ratio."""
    ratio = value / reference
    return f"{ratio:.2g}x" if ratio < 10 else f"{ratio:,.0f}x"


def quoted_rtt(ms: float) -> str:
    return (f"DBOS+PostgreSQL 20 ms: {x(ms, 20)}; DBOS+SQLite ~2 s: {x(ms, 2000)}; "
            f"Temporal 50 ms: {x(ms, 50)}; Prefect 10 s: {x(ms, 10_000)}")


def mb(n: float) -> str:
    return f"{n / 1e6:,.1f} MB"


def rtt_rows(backend: str, live: dict[str, float], parked: dict[str, float]) -> list[Row]:
    n = int(live["n"])
    return [
        (f"{backend}: round trip, live run, p50", f"{live['p50']:.2f} ms",
         f"<= 5 ms: {x(live['p50'], 5)} ({n} requests)", quoted_rtt(live["p50"])),
        (f"{backend}: round trip, live run, p99", f"{live['p99']:.2f} ms",
         f"<= 20 ms: {x(live['p99'], 20)}", quoted_rtt(live["p99"])),
        (f"{backend}: round trip, live run, medians of its parts", "", split(live), ""),
        (f"{backend}: round trip, parked run, p50", f"{parked['p50']:.1f} ms",
         f"beside the live run: {x(parked['p50'], live['p50'])} its p50 ({int(parked['n'])} "
         f"requests, each woke the run: {int(parked['starts'])} starts)",
         f"Prefect, paused flow, 10 s: {x(parked['p50'], 10_000)}"),
        (f"{backend}: round trip, parked run, p99", f"{parked['p99']:.1f} ms",
         f"median of the first tenth {parked['first']:.1f} ms, of the last "
         f"{parked['last']:.1f} ms: {parked['slope']:+.2f} ms per request answered before "
         "(each wake replays every earlier receive and reply)",
         f"Prefect, paused flow, 10 s: {x(parked['p99'], 10_000)}"),
        (f"{backend}: round trip, parked run, medians of its parts", "", split(parked), ""),
    ]


def park_rows(backend: str, k: int, r: dict[str, Any]) -> list[Row]:
    park_rate, wake_rate, resume_rate = k / r["park_s"], k / r["wake_s"], k / r["resume_s"]
    (p0, t0, rss0), (p1, t1, rss1) = r["fp0"], r["fp1"]
    per_run = (r["size2"] - r["size0"]) / k
    peers_start = (f"DBOS/Prefect: 2,000 workflows start in 9-20 s (100-222/s): "
                   f"{x(park_rate, 222)}-{x(park_rate, 100)}")
    return [
        (f"{backend}: enqueue {k:,} one-hour sleepers, one call each",
         f"{k / r['enqueue_s']:,.0f} runs/s", "not in the parking rate", ""),
        (f"{backend}: park {k:,} runs (2 workers x 2 children)", f"{park_rate:,.0f} runs/s",
         f">= 1,000/s: {x(park_rate, 1000)} ({r['park_s']:.2f} s)", peers_start),
        (f"{backend}: workers before -> with {k:,} parked",
         f"+{t1 - t0} threads",
         f"none held: {p0} -> {p1} processes, {t0} -> {t1} threads, RSS {mb(rss0)} -> "
         f"{mb(rss1)}; {r['unleased']:,} runs Paused with no lease/worker, {r['waits']:,} "
         "parked waits",
         f"DBOS (sync), Prefect: 1 OS thread per parked workflow = {k:,} threads"),
        (f"{backend}: database size per parked run", f"{per_run:,.0f} bytes",
         f"{mb(r['size0'])} empty -> {mb(r['size1'])} with {k:,} Pending -> "
         f"{mb(r['size2'])} parked ({(r['size2'] - r['size1']) / k:,.0f} bytes/run for "
         "parking)", ""),
        (f"{backend}: wake {k:,} parked runs (store.wake_due_runs)",
         f"{wake_rate:,.0f} runs/s",
         f">= 1,000/s: {x(wake_rate, 1000)} ({r['wake_s']:.2f} s, {r['calls']} calls)", ""),
        (f"{backend}: resume {k:,} woken runs to Completed (2 workers x 2)",
         f"{resume_rate:,.0f} runs/s",
         f">= 1,000/s: {x(resume_rate, 1000)} ({r['resume_s']:.2f} s, cold children)", ""),
    ]


def timer_rows(backend: str, n: int, r: dict[str, float], target_ms: float) -> list[Row]:
    peers = (f"DBOS 1.5-3.4 ms: {x(r['p50'], 3.4)}-{x(r['p50'], 1.5)}; Temporal 680 ms: "
             f"{x(r['p50'], 680)}" if n == 200 else "")
    return [
        (f"{backend}: {n:,} timers due together, run lateness p50", f"{r['p50']:.1f} ms",
         f"due {r['ahead']:.0f} s after enqueueing; all parked first", peers),
        (f"{backend}: {n:,} timers, run lateness p99", f"{r['p99']:.1f} ms",
         f"<= {target_ms:g} ms: {x(r['p99'], target_ms)} (max {r['max']:.1f} ms)", ""),
        (f"{backend}: {n:,} timers, wake lateness p50 / p99",
         f"{r['wake_p50']:.1f} / {r['wake_p99']:.1f} ms",
         f"Paused -> Pending entry in run_history minus the due time (max "
         f"{r['wake_max']:.1f} ms)", ""),
    ]


def run_all(args: argparse.Namespace, folder: Path, fleet: WaitFleet) -> list[Row]:
    backends = Backends(folder, args.pg)
    rows: list[Row] = [("machine", f"{os.cpu_count()} CPUs",
                        f"load average {os.getloadavg()[0]:.2f} at start",
                        "ratio: Stead's figure / the quoted one")]
    if not backends.pg_ok:
        log(f"PostgreSQL skipped: {backends.pg_note}")
    for backend in [b for b in backends.names() if not args.backend or b in args.backend]:
        log(f"{backend}: round trip, live run ({args.requests} requests)")
        live = round_trip(backends, fleet, backend, args.requests, args.warmup, parked=False)
        log(f"  p50 {live['p50']:.2f} ms, p99 {live['p99']:.2f} ms")
        log(f"{backend}: round trip, parked run ({args.parked_requests} requests)")
        parked = round_trip(backends, fleet, backend, args.parked_requests, 5, parked=True)
        log(f"  p50 {parked['p50']:.1f} ms, p99 {parked['p99']:.1f} ms")
        rows += rtt_rows(backend, live, parked)
        k = args.parked if backend == "PostgreSQL" else args.parked_sqlite or args.parked
        log(f"{backend}: parking and waking {k:,} runs")
        park = park_and_wake(backends, fleet, backend, k, args.concurrency)
        rows += park_rows(backend, k, park)
        park_rate = k / park["park_s"]
        for n, target in [(args.timers, 50.0), (args.timers_large, 1000.0)]:
            if n:
                log(f"{backend}: {n:,} timers due together")
                r = timers(backends, fleet, backend, n, args.concurrency, park_rate)
                log(f"  run lateness p50 {r['p50']:.1f} ms, p99 {r['p99']:.1f} ms")
                rows += timer_rows(backend, n, r, target)
    if not backends.pg_ok:
        rows.append(("PostgreSQL", "-", f"{backends.pg_note}: rows skipped", ""))
    rows[0] = (*rows[0][:2], f"{rows[0][2]}, {os.getloadavg()[0]:.2f} at the end", rows[0][3])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=500,
                        help="timed requests to a live run (default 500)")
    parser.add_argument("--warmup", type=int, default=50,
                        help="untimed requests before them (default 50)")
    parser.add_argument("--parked-requests", type=int, default=100,
                        help="timed requests to a parked run (default 100)")
    parser.add_argument("--parked", type=int, default=10_000,
                        help="runs parked and woken at scale on PostgreSQL (default 10,000)")
    parser.add_argument("--parked-sqlite", type=int, default=None, metavar="N",
                        help="the same on SQLite (default: as --parked)")
    parser.add_argument("--timers", type=int, default=200,
                        help="timers due together (default 200; 0: none)")
    parser.add_argument("--timers-large", type=int, default=0, metavar="N",
                        help="also N timers due together (e.g. 10000; default none)")
    parser.add_argument("--concurrency", type=int, default=2,
                        help="child processes per worker at scale (default 2)")
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres",
                        metavar="URL", help="a PostgreSQL server's URL; the bench creates "
                        "and drops its own databases there")
    parser.add_argument("--backend", choices=["SQLite", "PostgreSQL"], action="append",
                        help="measure only this backend (repeatable; default both)")
    args = parser.parse_args()
    if min(args.requests, args.parked_requests, args.parked, args.concurrency) < 1:
        parser.error("--requests, --parked-requests, --parked and --concurrency must be >= 1")
    if not FAKETIME_LIB:
        parser.error("libfaketime is missing (apt-get install faketime): the resuming "
                     "workers need a clock an hour ahead")

    folder = Path(tempfile.mkdtemp(prefix="stead-bench-waits-"))
    os.environ["STEAD_HOME"] = str(folder / "home")
    os.environ["STEAD_CONSOLE"] = "0"
    fleet = WaitFleet(folder)
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, lambda s, f: sys.exit(128 + s))
    started = time.monotonic()
    try:
        rows = run_all(args, folder, fleet)
    except BenchError as exc:
        sys.exit(f"benchmark failed: {exc}\n(worker logs were in {folder / 'logs'})")
    finally:
        fleet.kill_all()
        shutil.rmtree(folder, ignore_errors=True)
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    head = ("measure", "value", "target", "quoted from issue 18, not measured here")
    for r in [head, *rows]:
        print(f"{r[0]:<{widths[0]}}  {r[1]:>{widths[1]}}  {r[2]:<{widths[2]}}  {r[3]}".rstrip())
    print(f"(the whole run took {time.monotonic() - started:.0f} s)")


if __name__ == "__main__":
    main()
