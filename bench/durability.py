"""The durability dial, measured: each level's cost per step beside the bare commit at the
same setting, on SQLite and (when a server answers) PostgreSQL, in one run, as one table.

Run: python bench/durability.py [--steps 20000] [--repeat 5]

A step is a trivial sequential task (`Task.__call__` -> `Step` -> the write); its cost is the
flow's time divided by its steps, minus nothing. The bare commit is one INSERT+COMMIT of a
one-column row: on SQLite in WAL mode with synchronous=FULL (what fsync runs commit with) and
NORMAL (process and batched runs); on PostgreSQL with synchronous_commit on and off. Rounds of
every measure are interleaved, so machine noise hits all alike; figures are medians. fsync
rounds use a tenth of the steps (each costs a disk flush).
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

TARGET = 200_000  # sequential steps per second, SQLite, batched


def timed(fn: Callable[[], object], n: int) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) / n * 1e6


def sqlite_bare(folder: Path, synchronous: str, n: int) -> Callable[[], None]:
    conn = sqlite3.connect(folder / f"bare-{synchronous}.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute(f"PRAGMA synchronous = {synchronous}")
    conn.execute("PRAGMA wal_autocheckpoint = 10000")  # as Stead's store (background checkpoints)
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, result TEXT)")

    def insert_n() -> None:
        for i in range(n):
            conn.execute("INSERT INTO t (result) VALUES (?)", (str(i),))

    return insert_n


def postgres_bare(url: str, setting: str, n: int) -> Callable[[], None]:
    import psycopg

    conn = psycopg.connect(url, autocommit=True)
    conn.execute(f"SET synchronous_commit = {setting}")
    conn.execute("CREATE TABLE IF NOT EXISTS bench_bare (id serial PRIMARY KEY, result text)")

    def insert_n() -> None:
        for i in range(n):
            conn.execute("INSERT INTO bench_bare (result) VALUES (%s)", (str(i),))

    return insert_n


def flows(database_url: str | None) -> Callable[[str, int], Callable[[], None]]:
    import stead

    @stead.task
    def trivial(i: int) -> int:
        return i + 1

    @stead.flow(database_url=database_url)
    def many(count: int) -> int:
        total = 0
        for i in range(count):
            total += trivial(i)
        return total

    def make(level: str, n: int) -> Callable[[], None]:
        f = many.with_options(durability=level)
        f(10)  # the database exists, imports are warm
        return lambda: f(n)

    return make


def postgres_url() -> str | None:
    admin = os.environ.get("STEAD_BENCH_POSTGRES_URL",
                           "postgresql://postgres@127.0.0.1:5432/postgres")
    try:
        import psycopg

        with psycopg.connect(admin, autocommit=True, connect_timeout=3) as conn:
            conn.execute("DROP DATABASE IF EXISTS stead_bench_durability WITH (FORCE)")
            conn.execute("CREATE DATABASE stead_bench_durability")
    except Exception:
        return None
    return admin.rsplit("/", 1)[0] + "/stead_bench_durability"


def drop_postgres(url: str) -> None:
    import psycopg

    from stead.core.runtime import close_stores

    close_stores()
    admin = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS stead_bench_durability WITH (FORCE)")


def measure(cases: dict[str, tuple[Callable[[], None], int]], repeat: int
            ) -> dict[str, list[float]]:
    samples: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(repeat):
        for name, (fn, n) in cases.items():
            samples[name].append(timed(fn, n))
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    n, few = args.steps, max(100, args.steps // 10)
    folder = Path(tempfile.mkdtemp(prefix="stead-bench-durability-"))
    os.environ["STEAD_HOME"] = str(folder / "home")
    os.environ["STEAD_CONSOLE"] = "0"
    make = flows(None)
    cases = {
        "sqlite bare FULL": (sqlite_bare(folder, "FULL", few), few),
        "sqlite bare NORMAL": (sqlite_bare(folder, "NORMAL", n), n),
        "sqlite fsync": (make("fsync", few), few),
        "sqlite process": (make("process", n), n),
        "sqlite batched": (make("batched", n), n),
    }
    pg = postgres_url()
    if pg is not None:
        make_pg = flows(pg)
        cases.update({
            "pg bare on": (postgres_bare(pg, "on", few), few),
            "pg bare off": (postgres_bare(pg, "off", n), n),
            "pg fsync": (make_pg("fsync", few), few),
            "pg process": (make_pg("process", n), n),
            "pg batched": (make_pg("batched", n), n),
        })
    try:
        samples = measure(cases, args.repeat)
    finally:
        if pg is not None:
            drop_postgres(pg)
    med = {name: statistics.median(s) for name, s in samples.items()}
    spread = {name: (min(s), max(s)) for name, s in samples.items()}

    def ratio(step: str, bare: str) -> str:
        # median of per-round ratios: each round's step cost over the same round's commit
        r = statistics.median(a / b for a, b in zip(samples[step], samples[bare], strict=True))
        return f"{r:.2f}x {bare.split(' ', 1)[1]}"

    rows: list[tuple[str, str, str, str]] = []

    def row(name: str, label: str, note: str) -> None:
        lo, hi = spread[name]
        rows.append((label, f"{med[name]:.1f} us", f"{lo:.1f}-{hi:.1f}", note))

    row("sqlite bare FULL", "SQLite bare INSERT+COMMIT, synchronous=FULL", "1.00x")
    row("sqlite bare NORMAL", "SQLite bare INSERT+COMMIT, synchronous=NORMAL", "1.00x")
    row("sqlite fsync", "SQLite step, durability=fsync", ratio("sqlite fsync",
                                                               "sqlite bare FULL"))
    row("sqlite process", "SQLite step, durability=process",
        ratio("sqlite process", "sqlite bare NORMAL"))
    rate = 1e6 / med["sqlite batched"]
    row("sqlite batched", "SQLite step, durability=batched",
        f"{ratio('sqlite batched', 'sqlite bare NORMAL')}; {rate:,.0f} steps/s "
        f"(target {TARGET:,})")
    if pg is not None:
        row("pg bare on", "PostgreSQL bare INSERT+COMMIT, synchronous_commit=on", "1.00x")
        row("pg bare off", "PostgreSQL bare INSERT+COMMIT, synchronous_commit=off", "1.00x")
        row("pg fsync", "PostgreSQL step, durability=fsync", ratio("pg fsync", "pg bare on"))
        row("pg process", "PostgreSQL step, durability=process",
            ratio("pg process", "pg bare off"))
        row("pg batched", "PostgreSQL step, durability=batched",
            f"{ratio('pg batched', 'pg bare off')}; {1e6 / med['pg batched']:,.0f} steps/s")
    else:
        rows.append(("PostgreSQL", "-", "-", "no server answered: skipped"))
    width = max(len(r[0]) for r in rows)
    print(f"{n} steps per round ({few} for fsync and FULL/on commits), {args.repeat} rounds, "
          f"Python {sys.version.split()[0]}, SQLite {sqlite3.sqlite_version}")
    print(f"{'measure':<{width}}  {'median':>9}  {'range':>13}  ratio")
    for label, value, rng, note in rows:
        print(f"{label:<{width}}  {value:>9}  {rng:>13}  {note}")


if __name__ == "__main__":
    main()
