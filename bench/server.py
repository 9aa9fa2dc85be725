"""Stead's API benchmark: every figure measured in one run on this machine, as one table.

Run: python bench/server.py [--runs 100000] [--pg URL]

- Runs created per second through the API (POST /api/v1/deployments/{name}/runs, one
  request at a time from one client with a keep-alive connection; each creates and checks
  the parameters of one run).
- Latency of listing runs (GET /api/v1/runs?limit=50, with a state filter, and the next page
  by cursor) with --runs runs in the database: p50 and p99 of 200 requests each.
- Remote mode: the per-task overhead of a flow of 1000 sequential tasks whose store is the
  server (STEAD_DATABASE_URL=http://...) against the same flow on the server's database
  directly (embedded mode), and the same for 1000 tasks through .map (group commit: one
  request per batch), and the sequential flow again with STEAD_DURABILITY=batched (steps sent
  in groups) on both.
The server is `stead server start --no-services` (uvicorn, one process) on loopback, over a
fresh SQLite file (and a fresh PostgreSQL database when --pg answers). Machines here are
noisy: rerun to see the spread.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(url: str, folder: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    # bench/ for its flows, and the caller's PYTHONPATH (a work tree's src/ must win over an
    # editable install, in the server too)
    path = os.pathsep.join(p for p in (str(HERE), os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "STEAD_DATABASE_URL": url, "STEAD_CONSOLE": "0", "PYTHONPATH": path}
    proc = subprocess.Popen([sys.executable, "-m", "stead.cli.main", "server", "start",
                             "--port", str(port), "--no-services"], env=env,
                            stdout=open(folder / f"server-{port}.log", "wb"),  # noqa: SIM115
                            stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                return proc, base
        except httpx.TransportError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit(f"the server did not start: see {folder}")


def fill(url: str, runs: int) -> None:
    """`runs` finished runs of a deployment, written in batches straight to the database."""
    from stead.core.runtime import store_for
    from stead.deployments.registry import deploy
    from stead.store.base import RunRecord
    from stead.store.sql import POSTGRES, SQLITE, run_values, statements

    sys.path.insert(0, str(HERE))
    import bench_api_flows

    store = store_for(url)
    deploy(store, bench_api_flows.report, name="report", now=time.time(), queue="bench")
    now = time.time() - runs
    states = ("Completed", "Completed", "Completed", "Failed", "Pending")
    for start in range(0, runs, 5000):
        batch = [RunRecord(id=f"filled-{i:07d}", flow_name="report", state=states[i % 5],
                           params='{"day":"2026-11-21"}', created_at=now + i, queue="bench",
                           deployment="report", deployment_version=1)
                 for i in range(start, min(start + 5000, runs))]
        if url.startswith("sqlite"):
            conn = store._conn()  # type: ignore[attr-defined]
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(statements(SQLITE).run_insert, [run_values(r) for r in batch])
            conn.execute("COMMIT")
        else:
            with store._transaction() as conn, conn.cursor() as cur:  # type: ignore[attr-defined]
                cur.executemany(statements(POSTGRES).run_insert, [run_values(r) for r in batch])
    if url.startswith("sqlite"):
        store._conn().execute("ANALYZE")  # type: ignore[attr-defined]


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return (statistics.median(ordered) * 1000,
            ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000)


def api_figures(base: str, n_create: int, key: str | None = None) -> dict[str, float]:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    with httpx.Client(base_url=base, timeout=30, headers=headers) as client:
        start = time.perf_counter()
        for i in range(n_create):
            r = client.post("/api/v1/deployments/report/runs",
                            json={"parameters": {"day": "2026-11-22", "limit": i}})
            assert r.status_code == 201, r.text
        created = n_create / (time.perf_counter() - start)
        first, following, filtered = [], [], []
        for _ in range(200):
            t = time.perf_counter()
            page = client.get("/api/v1/runs", params={"limit": 50}).json()
            first.append(time.perf_counter() - t)
            t = time.perf_counter()
            client.get("/api/v1/runs", params={"limit": 50, "cursor": page["next_cursor"]})
            following.append(time.perf_counter() - t)
            t = time.perf_counter()
            client.get("/api/v1/runs", params={"limit": 50, "state": "Failed"})
            filtered.append(time.perf_counter() - t)
    p50, p99 = percentiles(first)
    n50, n99 = percentiles(following)
    f50, f99 = percentiles(filtered)
    return {"created": created, "p50": p50, "p99": p99, "n50": n50, "n99": n99,
            "f50": f50, "f99": f99}


REMOTE_PROBE = """
import os, sys, time
sys.path.insert(0, sys.argv[2])
from bench_api_flows import sequential, mapped
n = int(sys.argv[1])
t = time.perf_counter(); sequential(n); seq = (time.perf_counter() - t) / n
t = time.perf_counter(); mapped(n); mp = (time.perf_counter() - t) / n
print(seq, mp)
"""


def flow_cost(url: str, folder: Path, n: int, key: str | None = None,
              durability: str | None = None) -> tuple[float, float]:
    env = {**os.environ, "STEAD_DATABASE_URL": url, "STEAD_CONSOLE": "0",
           "STEAD_HOME": str(folder / "client"), **({"STEAD_API_KEY": key} if key else {}),
           **({"STEAD_DURABILITY": durability} if durability else {})}
    out = subprocess.run([sys.executable, "-c", REMOTE_PROBE, str(n), str(HERE)], env=env,
                         capture_output=True, text=True, check=True).stdout.split()
    return float(out[0]) * 1e6, float(out[1]) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--create", type=int, default=500, help="runs created through the API")
    parser.add_argument("--tasks", type=int, default=1000)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="stead-bench-server-"))
    os.environ["STEAD_HOME"] = str(folder)
    os.environ["STEAD_CONSOLE"] = "0"
    url = f"sqlite:///{folder / 'server.db'}"
    log(f"filling {args.runs:,} runs")
    fill(url, args.runs)
    proc, base = start_server(url, folder)
    rows = []
    try:
        log("API: creating runs, listing runs")
        api = api_figures(base, args.create)
        rows += [
            ("API: runs created (POST .../runs), one client", f"{api['created']:,.0f} runs/s",
             f"{args.create} requests, each a run with its parameters checked"),
            (f"API: list runs, first page of 50 ({args.runs:,} runs)",
             f"p50 {api['p50']:.1f} ms", f"p99 {api['p99']:.1f} ms"),
            ("API: list runs, next page by cursor", f"p50 {api['n50']:.1f} ms",
             f"p99 {api['n99']:.1f} ms"),
            ("API: list runs with state=Failed", f"p50 {api['f50']:.1f} ms",
             f"p99 {api['f99']:.1f} ms"),
        ]
        # The checks of roles and namespaces: the same with an operator key of one namespace
        # (every id checked against it) instead of the local user (no checks at all).
        from stead.server.apikeys import new_api_key
        from stead.store import open_store

        key, record = new_api_key("bench", time.time(), role="operator",
                                  namespaces=("default",))
        keys_db = open_store(url)
        keys_db.create_api_key(record)
        keys_db.close()
        log("API with an operator key of one namespace")
        keyed = api_figures(base, args.create, key)
        rows += [
            ("API: runs created, operator key of one namespace",
             f"{keyed['created']:,.0f} runs/s",
             f"{keyed['created'] / api['created']:.2f}x the keyless figure"),
            ("API: list runs, first page, operator key of one namespace",
             f"p50 {keyed['p50']:.1f} ms", f"p99 {keyed['p99']:.1f} ms"),
        ]
        log("remote mode against embedded mode")
        remote_seq, remote_map = flow_cost(base, folder, args.tasks)
        keyed_seq, keyed_map = flow_cost(base, folder, args.tasks, key)
        local_seq, local_map = flow_cost(url, folder, args.tasks)
        batched_seq, _ = flow_cost(base, folder, args.tasks, durability="batched")
        local_batched_seq, _ = flow_cost(url, folder, args.tasks, durability="batched")
        rows += [
            (f"embedded: per task, {args.tasks} sequential tasks (SQLite)",
             f"{local_seq:.0f} us", "1.00x"),
            (f"remote: per task, {args.tasks} sequential tasks (HTTP to the server)",
             f"{remote_seq:.0f} us", f"{remote_seq / local_seq:.2f}x embedded"),
            (f"remote, operator key of one namespace: per task, {args.tasks} sequential tasks",
             f"{keyed_seq:.0f} us", f"{keyed_seq / remote_seq:.2f}x keyless remote"),
            (f"embedded, durability=batched: per task, {args.tasks} sequential tasks",
             f"{local_batched_seq:.0f} us", f"{local_batched_seq / local_seq:.2f}x embedded"),
            (f"remote, durability=batched: per task, {args.tasks} sequential tasks",
             f"{batched_seq:.0f} us", f"{batched_seq / local_batched_seq:.2f}x embedded batched"),
            (f"embedded: per task, {args.tasks} tasks via .map", f"{local_map:.0f} us", "1.00x"),
            (f"remote: per task, {args.tasks} tasks via .map (group commit batches)",
             f"{remote_map:.0f} us", f"{remote_map / local_map:.2f}x embedded"),
            (f"remote, operator key of one namespace: per task, {args.tasks} tasks via .map",
             f"{keyed_map:.0f} us", f"{keyed_map / remote_map:.2f}x keyless remote"),
        ]
    finally:
        proc.terminate()
        proc.wait(10)
    width = max(len(r[0]) for r in rows)
    vwidth = max(len(r[1]) for r in rows)
    print(f"{'measure':<{width}}  {'value':>{vwidth}}  ratio / note")
    for name, value, note in rows:
        print(f"{name:<{width}}  {value:>{vwidth}}  {note}")


if __name__ == "__main__":
    main()
