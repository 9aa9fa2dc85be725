"""A 1000-way asyncio.gather of trivial async tasks against the same tasks through .map.

Run: python bench/async_gather.py [--tasks 1000] [--repeat 5] [--url URL]

Without --url it measures SQLite (a fresh STEAD_HOME) and, when a server answers
(STEAD_BENCH_POSTGRES_URL, else 127.0.0.1:5432), PostgreSQL in a fresh database. Each backend
runs in its own fresh interpreter; figures are medians of --repeat rounds, gather and .map
interleaved so machine noise hits both alike; also the same tasks awaited one by one (each
step's commit is its own there). Prints one line per backend.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

PROBE = """
import asyncio, statistics, sys, time
import stead
from stead.core.runtime import store_for
from stead.core.writer import writer_for

n, repeat = int(sys.argv[1]), int(sys.argv[2])

@stead.task
def bump(i: int) -> int:
    return i + 1

@stead.task
async def abump(i: int) -> int:
    return i + 1

@stead.flow
def mapped(count: int) -> int:
    return sum(f.result() for f in bump.map(range(count)))

@stead.flow
async def gathered(count: int) -> int:
    return sum(await asyncio.gather(*(abump(i) for i in range(count))))

@stead.flow
async def awaited(count: int) -> int:
    return sum([await abump(i) for i in range(count)])

mapped(10); asyncio.run(gathered(10)); asyncio.run(awaited(10))
writer = writer_for(store_for())
maps, gathers, commits, seqs = [], [], [], []
for _ in range(repeat):
    t = time.perf_counter(); mapped(n); maps.append(time.perf_counter() - t)
    c0, r0 = writer.commits, writer.records
    t = time.perf_counter(); asyncio.run(gathered(n)); gathers.append(time.perf_counter() - t)
    commits.append((writer.commits - c0) / max(1, writer.records - r0))
    t = time.perf_counter(); asyncio.run(awaited(n)); seqs.append(time.perf_counter() - t)
print(statistics.median(maps), statistics.median(gathers), statistics.median(commits),
      statistics.median(g / m for g, m in zip(gathers, maps)), statistics.median(seqs))
"""


def measure(url: str | None, n: int, repeat: int) -> list[float]:
    env = {**os.environ, "STEAD_CONSOLE": "0",
           "STEAD_HOME": tempfile.mkdtemp(prefix="stead-gather-")}
    if url:
        env["STEAD_DATABASE_URL"] = url
    out = subprocess.run([sys.executable, "-c", PROBE, str(n), str(repeat)],
                         capture_output=True, text=True, check=True, env=env)
    return [float(x) for x in out.stdout.split()]


def postgres_url() -> tuple[str, str] | None:
    admin = os.environ.get("STEAD_BENCH_POSTGRES_URL",
                           "postgresql://postgres@127.0.0.1:5432/postgres")
    try:
        import psycopg

        with psycopg.connect(admin, autocommit=True, connect_timeout=3) as conn:
            conn.execute("DROP DATABASE IF EXISTS stead_bench_gather WITH (FORCE)")
            conn.execute("CREATE DATABASE stead_bench_gather")
    except Exception:
        return None
    return admin, admin.rsplit("/", 1)[0] + "/stead_bench_gather"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--url", default=None, help="only this database URL")
    args = parser.parse_args()
    backends: list[tuple[str, str | None]] = [("sqlite", None)]
    pg = None
    if args.url:
        backends = [(args.url.split(":", 1)[0], args.url)]
    else:
        pg = postgres_url()
        if pg is not None:
            backends.append(("postgresql", pg[1]))
    try:
        for name, url in backends:
            start = time.perf_counter()
            m, g, c, r, s = measure(url, args.tasks, args.repeat)
            print(f"{name:<11} {args.tasks} tasks: .map {m * 1000:7.1f} ms  "
                  f"gather {g * 1000:7.1f} ms  gather/.map {r:5.2f}x  "
                  f"commits per gathered task {c:.3f}  sequential awaits {s * 1000:7.1f} ms  "
                  f"({time.perf_counter() - start:.0f} s)")
    finally:
        if pg is not None:
            import psycopg

            with psycopg.connect(pg[0], autocommit=True) as conn:
                conn.execute("DROP DATABASE IF EXISTS stead_bench_gather WITH (FORCE)")


if __name__ == "__main__":
    main()
