"""Stead's worker benchmark: every figure measured in one run on this machine, as one table.

Run: python bench/workers.py [--runs 1000] [--pg URL] [--concurrency 2]

Workers are real `stead worker start` processes (`python -m stead.cli.main worker start
--poll 0.05 --concurrency C`; STEAD_CONSOLE=0 as in bench.py, stderr to log files), executing
flows of bench/bench_flows.py (bench/ is put on their PYTHONPATH). Each measurement gets a
fresh database: an SQLite file in the temporary folder, and a database created on the
PostgreSQL server at --pg (default postgresql://postgres@127.0.0.1:5432/postgres; its rows are
skipped with a note if no server answers) and dropped afterwards.

What is timed:
- Throughput, for 1, 2 and 4 workers on each backend. The workers start on a queue whose
  concurrency limit is 0 (`Store.set_queue`, as `stead queues set`), so they poll it and
  claim nothing; once every worker is registered they are warmed up (the limit is lifted,
  2 runs per child are executed, the limit is set back to 0). Then --runs runs of a 3-task
  flow are enqueued (not timed). The clock starts when the limit is lifted and stops at the
  last run's ended_at as recorded in the runs table (the bench polls the queue's counts to
  see when nothing is Pending or Running, then checks every run Completed). Worker start-up
  is therefore excluded; it is reported on its own row (process start -> registered).
  Beside each rate: how busy the machine's CPUs were meanwhile (all processes, this bench's
  and anyone else's) and the CPU time the worker processes (workers, forkservers, children)
  used per run; the database server's CPU is not in the latter.
- Enqueueing: the time of `flow.enqueue()` per run, from this one process, during the above.
- Queue latency: 2 workers, idle and polling; runs are enqueued one at a time at about
  --rate per second (random gaps); latency = the run's started_at (set by the claim) minus
  its created_at (set by enqueue), both recorded in the runs table. p50 and p99.
- Recovery: worker A (lease --lease seconds) claims one run per child (C) of a flow of
  sleeping tasks (40 x 0.2 s);
  worker B (same options) starts, idle. Once A's runs have checkpointed a few steps, A is
  SIGKILLed (its child processes exit by themselves). Timed: from the kill until every run A
  held has been claimed again by B (the claim's started_at in the runs table; the bench polls
  every 10 ms to see it). Reported in seconds and in lease periods (target <= 2). The runs
  must then complete with every step recorded once.
Targets (the issue): >= 200 runs/s with 4 workers on PostgreSQL (stretch 1,000), and
recovery within 2 lease periods. One measurement per figure: rerun to see the spread.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

HERE = Path(__file__).resolve().parent
QUEUE = "bench"
POLL_S = 0.05
START = time.monotonic()


def log(message: str) -> None:
    print(f"[{time.monotonic() - START:6.1f} s] {message}", file=sys.stderr, flush=True)


class BenchError(RuntimeError):
    pass


# -- worker processes -------------------------------------------------------------------------
@dataclass
class WorkerProc:
    proc: subprocess.Popen[bytes]
    log_path: Path
    started: float  # time.time() at Popen
    worker_id: str = ""
    registered_after: float = 0.0

    @property
    def pid(self) -> int:
        return self.proc.pid


class Fleet:
    """Every worker process this benchmark starts; each leads its own process group (the
    worker, its forkserver and its children), so cleanup can end exactly those."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.procs: list[WorkerProc] = []
        self.startups: list[float] = []
        self.env = {**os.environ, "STEAD_CONSOLE": "0",
                    "PYTHONPATH": os.pathsep.join(
                        [str(HERE), *filter(None, [os.environ.get("PYTHONPATH")])])}
        self.env.pop("STEAD_DATABASE_URL", None)

    def start(self, url: str, tag: str, *, concurrency: int, lease: float | None = None,
              name: str | None = None) -> WorkerProc:
        log_path = self.folder / "logs" / f"{tag}-{len(self.procs)}.log"
        log_path.parent.mkdir(exist_ok=True)
        command = [sys.executable, "-m", "stead.cli.main", "worker", "start", "--queue", QUEUE,
                   "--concurrency", str(concurrency), "--poll", str(POLL_S), "--db", url]
        if lease is not None:
            command += ["--lease", str(lease)]
        if name is not None:
            command += ["--name", name]
        with open(log_path, "wb") as out:
            proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=subprocess.STDOUT, env=self.env,
                                    start_new_session=True)
        worker = WorkerProc(proc, log_path, time.time())
        self.procs.append(worker)
        return worker

    def wait_registered(self, store: Any, workers: list[WorkerProc],
                        timeout: float = 60.0) -> None:
        """Until every worker's row says running (it registers before forking children)."""
        deadline = time.monotonic() + timeout
        waiting = {w.pid: w for w in workers}
        while waiting:
            for record in store.list_workers():
                w = waiting.get(record.pid)
                if w is not None and record.state == "running":
                    w.worker_id = record.id
                    w.registered_after = time.time() - w.started
                    self.startups.append(w.registered_after)
                    del waiting[record.pid]
            self.check_alive(workers)
            if waiting and time.monotonic() > deadline:
                raise BenchError(f"workers {sorted(waiting)} did not register within "
                                 f"{timeout:g} s")
            time.sleep(0.02)

    def check_alive(self, workers: list[WorkerProc]) -> None:
        for w in workers:
            code = w.proc.poll()
            if code is not None:
                raise BenchError(f"worker {w.pid} exited with code {code}:\n{tail(w.log_path)}")

    def stop(self, workers: list[WorkerProc], timeout: float = 20.0) -> None:
        """SIGTERM (drain), then SIGKILL the group of any that do not exit in time."""
        for w in workers:
            if w.proc.poll() is None:
                w.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for w in workers:
            with contextlib.suppress(subprocess.TimeoutExpired):
                w.proc.wait(max(0.1, deadline - time.monotonic()))
            kill_group(w.pid)
            w.proc.wait()

    def kill_all(self) -> None:
        for w in self.procs:
            if w.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(w.pid, signal.SIGKILL)
            kill_group(w.pid)
            w.proc.wait()


def proc_stats() -> Iterator[tuple[int, list[str]]]:
    """(pid, the fields of /proc/PID/stat after the command name) of every process."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                yield int(entry.name), (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes of the process group `pgid`."""
    return [pid for pid, f in proc_stats() if int(f[2]) == pgid and f[0] != "Z"]


def groups_cpu_s(pgids: set[int]) -> float:
    """CPU seconds (user + system) used so far by the live processes of these groups."""
    return sum(int(f[11]) + int(f[12]) for _, f in proc_stats()
               if int(f[2]) in pgids) / os.sysconf("SC_CLK_TCK")


def kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


# -- databases ------------------------------------------------------------------------------
class Backends:
    def __init__(self, folder: Path, pg_admin: str) -> None:
        self.folder = folder
        self.pg_admin = pg_admin
        self.count = 0
        self.pg_note = ""
        self.pg_ok = self._pg_answers()

    def _pg_answers(self) -> bool:
        try:
            import psycopg

            with psycopg.connect(self.pg_admin, autocommit=True, connect_timeout=3) as conn:
                conn.execute("SELECT 1")
            return True
        except Exception as exc:
            self.pg_note = f"no server answered at {self.pg_admin} ({type(exc).__name__})"
            return False

    def names(self) -> list[str]:
        return ["SQLite", "PostgreSQL"] if self.pg_ok else ["SQLite"]

    @contextlib.contextmanager
    def fresh(self, backend: str) -> Iterator[str]:
        """A new, empty, migrated database of `backend`; dropped (PostgreSQL) afterwards."""
        from stead.core.runtime import close_stores, store_for

        self.count += 1
        if backend == "SQLite":
            url = f"sqlite:///{self.folder / f'bench-{self.count}.db'}"
            try:
                store_for(url)  # create and migrate it here, not in a racing worker
                yield url
            finally:
                close_stores()
            return
        import psycopg

        name = f"stead_bench_workers_{os.getpid()}_{self.count}"
        parts = urlsplit(self.pg_admin)
        url = urlunsplit(parts._replace(path=f"/{name}"))
        with psycopg.connect(self.pg_admin, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            conn.execute(f"CREATE DATABASE {name}")
        try:
            store_for(url)
            yield url
        finally:
            close_stores()
            with psycopg.connect(self.pg_admin, autocommit=True) as conn:
                conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


# -- helpers ----------------------------------------------------------------------------------
def flows(url: str, module_name: str = "bench_flows") -> Any:
    """The flows of bench/`module_name`, imported as the workers import it, bound to `url`
    (attributes of the answer, by name)."""
    from types import SimpleNamespace

    from stead.core.flow import Flow

    if str(HERE) not in sys.path:
        sys.path.insert(0, str(HERE))
    module = importlib.import_module(module_name)
    return SimpleNamespace(**{name: value.with_options(database_url=url)
                              for name, value in vars(module).items()
                              if isinstance(value, Flow)})


def queue_counts(store: Any) -> tuple[int, int]:
    for info in store.list_queues():
        if info.name == QUEUE:
            return info.pending, info.running
    return 0, 0


def wait_drained(store: Any, fleet: Fleet, workers: list[WorkerProc], timeout: float,
                 what: str, every: float = 0.02) -> None:
    """Until nothing on the queue is Pending or Running (polled every `every` seconds: the
    counts scan the queue's runs, so a timed wait polls gently)."""
    deadline = time.monotonic() + timeout
    last_report = time.monotonic()
    while True:
        pending, running = queue_counts(store)
        if pending == 0 and running == 0:
            return
        fleet.check_alive(workers)
        now = time.monotonic()
        if now > deadline:
            raise BenchError(f"{what}: still {pending} Pending and {running} Running after "
                             f"{timeout:g} s")
        if now - last_report > 5:
            log(f"  {what}: {pending} Pending, {running} Running")
            last_report = now
        time.sleep(every)


def runs_of(store: Any, ids: list[str]) -> list[Any]:
    from stead.store.base import RunFilter

    wanted = set(ids)
    runs = [r for r in store.list_runs(RunFilter(queue=QUEUE, limit=len(ids) + 10_000))
            if r.id in wanted]
    if len(runs) != len(wanted):
        raise BenchError(f"found {len(runs)} of the {len(wanted)} runs enqueued")
    return runs


def check_completed(runs: list[Any], what: str) -> None:
    states = Counter(r.state for r in runs)
    if states != Counter({"Completed": len(runs)}):
        failed = next((r for r in runs if r.state != "Completed"), None)
        detail = f"; e.g. run {failed.id}: {failed.error}" if failed is not None else ""
        raise BenchError(f"{what}: runs ended {dict(states)}{detail}")


def cpu_times() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    fields = [float(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields[:8]) - idle, sum(fields[:8])


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    rank = q / 100 * (len(ordered) - 1)
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


# -- measurements -------------------------------------------------------------------------
def throughput(backends: Backends, fleet: Fleet, backend: str, n_workers: int, runs: int,
               concurrency: int) -> dict[str, float]:
    from stead.core.runtime import store_for

    with backends.fresh(backend) as url:
        store = store_for(url)
        bound = flows(url)
        store.set_queue(QUEUE, 0)
        workers = [fleet.start(url, f"{backend}-{n_workers}w", concurrency=concurrency)
                   for _ in range(n_workers)]
        try:
            fleet.wait_registered(store, workers)
            store.set_queue(QUEUE, None)  # warm up: every child imports the flow module
            for i in range(2 * n_workers * concurrency):
                bound.three.enqueue(i, queue=QUEUE)
            wait_drained(store, fleet, workers, 60, "warm-up")
            store.set_queue(QUEUE, 0)
            started = time.perf_counter()
            ids = [bound.three.enqueue(i, queue=QUEUE) for i in range(runs)]
            enqueue_s = (time.perf_counter() - started) / runs
            log(f"  {runs} runs enqueued ({enqueue_s * 1000:.2f} ms each); releasing the queue")
            cpu0, own0 = cpu_times(), groups_cpu_s({w.pid for w in workers})
            t0 = time.time()
            store.set_queue(QUEUE, None)
            wait_drained(store, fleet, workers, max(120.0, runs / 5), "throughput",
                         every=0.1)
            seen = time.time()
            cpu1, own1 = cpu_times(), groups_cpu_s({w.pid for w in workers})
            done = runs_of(store, ids)
            check_completed(done, f"{backend}, {n_workers} workers")
            end = max(r.ended_at for r in done)
            if not t0 < end <= seen:
                raise BenchError(f"implausible clock readings: released {t0}, last run ended "
                                 f"{end}, seen drained {seen}")
        finally:
            fleet.stop(workers)
    busy = (cpu1[0] - cpu0[0]) / max(1.0, cpu1[1] - cpu0[1])
    return {"rate": runs / (end - t0), "seconds": end - t0, "enqueue_ms": enqueue_s * 1000,
            "cpu": busy, "worker_cpu_ms": (own1 - own0) / runs * 1000}


def latency(backends: Backends, fleet: Fleet, backend: str, samples: int, rate: float,
            concurrency: int) -> dict[str, float]:
    from stead.core.runtime import store_for

    with backends.fresh(backend) as url:
        store = store_for(url)
        bound = flows(url)
        workers = [fleet.start(url, f"{backend}-latency", concurrency=concurrency)
                   for _ in range(2)]
        try:
            fleet.wait_registered(store, workers)
            for i in range(2 * len(workers) * concurrency):
                bound.three.enqueue(i, queue=QUEUE)
            wait_drained(store, fleet, workers, 60, "warm-up")
            rng = random.Random(7)
            ids = []
            for i in range(samples):
                ids.append(bound.three.enqueue(i, queue=QUEUE))
                time.sleep(rng.uniform(0.5, 1.5) / rate)
            wait_drained(store, fleet, workers, 60, "latency")
            done = runs_of(store, ids)
            check_completed(done, f"{backend}, latency")
        finally:
            fleet.stop(workers)
    # started_at can precede created_at slightly: the worker stamps a claim with the time its
    # loop iteration began, before that iteration's heartbeat and reap (reported, not hidden).
    waits = [(r.started_at - r.created_at) * 1000 for r in done]
    return {"p50": statistics.median(waits), "p99": percentile(waits, 99), "max": max(waits),
            "n": len(waits), "negative": sum(w < 0 for w in waits), "min": min(waits)}


def recovery(backends: Backends, fleet: Fleet, backend: str, lease: float,
             concurrency: int) -> dict[str, float]:
    from stead.core.runtime import store_for
    from stead.core.serialization import decode

    steps, nap_s = 40, 0.2
    with backends.fresh(backend) as url:
        store = store_for(url)
        bound = flows(url)
        victim = fleet.start(url, f"{backend}-victim", concurrency=concurrency, lease=lease,
                             name="victim")
        workers = [victim]
        try:
            fleet.wait_registered(store, [victim])
            ids = [bound.slow.enqueue(steps, nap_s, queue=QUEUE) for _ in range(concurrency)]
            wait_until(lambda: all(r.state == "Running" and r.worker_id == victim.worker_id
                                   for r in (store.get_run(i) for i in ids)),
                       30, "the victim claiming its runs", fleet, workers)
            survivor = fleet.start(url, f"{backend}-survivor", concurrency=concurrency,
                                   lease=lease, name="survivor")
            workers.append(survivor)
            fleet.wait_registered(store, [survivor])
            # The victim is full: these warm the survivor's children up.
            warm = [bound.three.enqueue(i, queue=QUEUE) for i in range(2 * concurrency)]
            wait_until(lambda: all(store.get_run(i).state == "Completed" for i in warm),
                       60, "the survivor's warm-up", fleet, workers)
            wait_until(lambda: [c >= 3 for c in store.count_steps(ids).values()].count(True)
                       == len(ids),
                       30, "the victim's runs checkpointing", fleet, workers)
            at_kill = store.count_steps(ids)
            os.kill(victim.pid, signal.SIGKILL)
            killed = time.time()
            victim.proc.wait()
            workers.remove(victim)
            log(f"  SIGKILLed worker {victim.pid} holding {len(ids)} runs "
                f"({sum(at_kill.values())} steps recorded)")
            children_gone = None
            deadline = time.monotonic() + max(30.0, 10 * lease)
            while True:
                runs = [store.get_run(i) for i in ids]
                if children_gone is None and not group_members(victim.pid):
                    children_gone = time.time() - killed
                if all(r.state == "Completed" or (r.state == "Running" and
                                                  r.worker_id == survivor.worker_id)
                       for r in runs):
                    seen = time.time() - killed
                    break
                fleet.check_alive(workers)
                if time.monotonic() > deadline:
                    raise BenchError(f"the killed worker's runs were not resumed: "
                                     f"{[(r.state, r.worker_id) for r in runs]}")
                time.sleep(0.01)
            claimed = max(r.started_at for r in runs) - killed
            wait_until(lambda: all(store.get_run(i).state not in ("Pending", "Running")
                                   for i in ids), 120, "the resumed runs", fleet, workers)
            while children_gone is None and time.time() - killed < 30:
                if not group_members(victim.pid):
                    children_gone = time.time() - killed
                time.sleep(0.01)
            done = [store.get_run(i) for i in ids]
            check_completed(done, f"{backend}, recovery")
            for r in done:
                if decode(r.result) != sum(range(steps)) or r.recoveries != 1:
                    raise BenchError(f"run {r.id}: result {r.result}, recoveries "
                                     f"{r.recoveries}")
            counts = store.count_steps(ids)
            if set(counts.values()) != {steps}:
                raise BenchError(f"steps recorded per run: {counts} (expected {steps})")
        finally:
            fleet.stop(workers)
            kill_group(victim.pid)
    return {"seconds": claimed, "seen": seen, "leases": claimed / lease,
            "children_gone": -1.0 if children_gone is None else children_gone,
            "reused": sum(at_kill.values()) / len(ids)}


def deep_queue_claim_ms(backends: Backends, backend: str, pending: int) -> float:
    """Median time of claiming one run from a queue holding `pending` Pending runs (in-process,
    no workers): what a claim costs when 10^5 runs wait."""
    from stead.core.process import current_owner
    from stead.core.runtime import store_for
    from stead.store.base import RunRecord, WorkerRecord

    with backends.fresh(backend) as url:
        store = store_for(url)
        now = time.time()
        for start in range(0, pending, 5000):
            batch = [RunRecord(id=f"deep-{i}", flow_name="f", state="Pending", queue="deep",
                               priority=i % 3, created_at=now + i * 1e-6)
                     for i in range(start, min(start + 5000, pending))]
            _insert_runs(store, url, batch)
        me = WorkerRecord("bench", "bench", "localhost", os.getpid(), '["deep"]', 1, "running",
                          now, now)
        samples = []
        for _ in range(51):
            t = time.perf_counter()
            store.claim_runs(["deep"], me, current_owner(), 1, time.time(), 30.0)
            samples.append(time.perf_counter() - t)
        return statistics.median(samples) * 1000


def _insert_runs(store: Any, url: str, runs: list[Any]) -> None:
    """Many runs in one transaction (enqueue() commits each; filling 10^5 that way is slow)."""
    from stead.store.sql import POSTGRES, SQLITE, run_values, statements

    if url.startswith("sqlite"):
        conn = store._conn()
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(statements(SQLITE).run_insert, [run_values(r) for r in runs])
        conn.execute("COMMIT")
        conn.execute("ANALYZE")
        return
    with store._transaction() as conn, conn.cursor() as cur:
        cur.executemany(statements(POSTGRES).run_insert, [run_values(r) for r in runs])
        cur.execute("ANALYZE runs")


def wait_until(predicate: Any, timeout: float, what: str, fleet: Fleet,
               workers: list[WorkerProc]) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        fleet.check_alive(workers)
        if time.monotonic() > deadline:
            raise BenchError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.02)


# -- main -----------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000,
                        help="runs per throughput measurement (default 1000)")
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres",
                        metavar="URL", help="a PostgreSQL server's URL; the bench creates "
                        "and drops its own databases there")
    parser.add_argument("--concurrency", type=int, default=2,
                        help="child processes per worker (default 2)")
    parser.add_argument("--samples", type=int, default=200,
                        help="runs enqueued one at a time for the latency figures")
    parser.add_argument("--rate", type=float, default=40.0,
                        help="runs enqueued per second for the latency figures")
    parser.add_argument("--lease", type=float, default=2.0,
                        help="lease seconds of the recovery measurement")
    parser.add_argument("--backend", choices=["SQLite", "PostgreSQL"], action="append",
                        help="measure only this backend (repeatable; default both)")
    parser.add_argument("--workers", type=int, action="append", metavar="N",
                        help="worker counts of the throughput figures (repeatable; default "
                        "1, 2 and 4)")
    parser.add_argument("--throughput-only", action="store_true",
                        help="only the throughput rows (no latency, recovery, deep queue)")
    args = parser.parse_args()
    if args.runs < 1 or args.samples < 1 or args.concurrency < 1:
        parser.error("--runs, --samples and --concurrency must be >= 1")

    folder = Path(tempfile.mkdtemp(prefix="stead-bench-workers-"))
    os.environ["STEAD_HOME"] = str(folder / "home")
    os.environ["STEAD_CONSOLE"] = "0"  # this process's own console; workers log to files
    fleet = Fleet(folder)
    # SIGTERM/SIGHUP end the bench like Ctrl-C: the finally below cleans up.
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, lambda s, f: sys.exit(128 + s))
    try:
        rows = run_all(args, folder, fleet)
    except BenchError as exc:
        sys.exit(f"benchmark failed: {exc}\n(worker logs were in {folder / 'logs'})")
    finally:
        fleet.kill_all()
        shutil.rmtree(folder, ignore_errors=True)
    width = max(len(r[0]) for r in rows)
    vwidth = max(len(r[1]) for r in rows)
    print(f"{'measure':<{width}}  {'value':>{vwidth}}  ratio")
    for name, value, ratio in rows:
        print(f"{name:<{width}}  {value:>{vwidth}}  {ratio}")


def run_all(args: argparse.Namespace, folder: Path, fleet: Fleet) -> list[tuple[str, str, str]]:
    load = os.getloadavg()[0]
    backends = Backends(folder, args.pg)
    c = args.concurrency
    rows: list[tuple[str, str, str]] = [
        ("machine", f"{os.cpu_count()} CPUs",
         f"load average {load:.2f} at start; {args.runs} runs per throughput figure, "
         f"{c} children per worker, poll {POLL_S * 1000:.0f} ms")]
    if not backends.pg_ok:
        log(f"PostgreSQL skipped: {backends.pg_note}")
    enqueue_rows = []
    chosen = [b for b in backends.names() if not args.backend or b in args.backend]
    for backend in chosen:
        base = None
        for n in args.workers or (1, 2, 4):
            log(f"{backend}: throughput with {n} workers x {c} children")
            r = throughput(backends, fleet, backend, n, args.runs, c)
            log(f"  {r['rate']:,.0f} runs/s ({r['seconds']:.2f} s)")
            base = base or r["rate"]
            target = ("target" if backend == "PostgreSQL" and n == 4
                      else "the PostgreSQL 4-worker target")
            rows.append((f"{backend}: {n} worker{'s' if n > 1 else ''} x {c} children, "
                         f"3-task runs", f"{r['rate']:,.0f} runs/s",
                         f"{r['rate'] / 200:.2f}x {target} 200 ({r['rate'] / 1000:.2f}x "
                         f"stretch 1,000); {r['rate'] / base:.2f}x 1 worker; CPUs "
                         f"{r['cpu']:.0%} busy, workers' CPU {r['worker_cpu_ms']:.2f} ms/run"))
            if n == 1:
                enqueue_rows.append((f"{backend}: enqueue, one call per run",
                                     f"{r['enqueue_ms']:.2f} ms",
                                     f"{1000 / r['enqueue_ms']:,.0f} runs/s from one process"))
        if args.throughput_only:
            continue
        log(f"{backend}: queue latency, {args.samples} runs at ~{args.rate:g}/s")
        lat = latency(backends, fleet, backend, args.samples, args.rate, c)
        log(f"  p50 {lat['p50']:.1f} ms, p99 {lat['p99']:.1f} ms")
        rows.append((f"{backend}: queue latency p50 (2 idle workers)", f"{lat['p50']:.1f} ms",
                     f"{lat['p50'] / (POLL_S * 1000):.2f}x the poll interval; enqueue -> "
                     f"claim, {lat['n']} runs"))
        odd = (f"; {lat['negative']:.0f} started_at before created_at (min "
               f"{lat['min']:.1f} ms)" if lat["negative"] else "")
        rows.append((f"{backend}: queue latency p99", f"{lat['p99']:.1f} ms",
                     f"{lat['p99'] / (POLL_S * 1000):.2f}x the poll interval; max "
                     f"{lat['max']:.1f} ms{odd}"))
        log(f"{backend}: recovery after SIGKILL, lease {args.lease:g} s")
        rec = recovery(backends, fleet, backend, args.lease, c)
        log(f"  {rec['seconds']:.2f} s = {rec['leases']:.2f} leases")
        gone = ("still running after 30 s" if rec["children_gone"] < 0
                else f"gone {rec['children_gone']:.1f} s after it")
        rows.append((f"{backend}: SIGKILLed worker -> its runs resumed", f"{rec['seconds']:.2f} s",
                     f"{rec['leases']:.2f} leases of {args.lease:g} s "
                     f"({rec['leases'] / 2:.2f}x the 2-lease limit); the killed worker's "
                     f"children {gone}; {rec['reused']:.0f} steps per run reused"))
    rows += enqueue_rows
    for backend in [] if args.throughput_only else chosen:
        log(f"{backend}: claiming from a queue of 100,000 pending runs")
        ms = deep_queue_claim_ms(backends, backend, 100_000)
        rows.append((f"{backend}: claim 1 run, 100,000 pending", f"{ms:.2f} ms",
                     "median of 51 claims; an index in claim order, no sort of the queue"))
    if not backends.pg_ok:
        rows.append(("PostgreSQL", "-", f"{backends.pg_note}: rows skipped"))
    startups = fleet.startups or [0.0]
    rows.append(("worker start-up (process start -> registered)",
                 f"{statistics.median(startups):.2f} s",
                 f"median of {len(startups)} starts (max {max(startups):.2f} s); not in the "
                 "throughput figures"))
    return rows


if __name__ == "__main__":
    main()
