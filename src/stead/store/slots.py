"""Global tag limits and the slots that enforce them: SQL both backends share.

A limit on a tag caps tasks carrying it across every process using the database: at most
`concurrency` at once, at most `rate` starts per `period`. Each start takes a slot row. A
concurrency slot is a lease: its holder renews it while the task runs and releases it after;
if the holder dies, the slot lapses at `expires_at` and is freed, never leaked. A rate slot
expires one period after it was taken, which is what "N per period" counts.

Slot expiry is measured on the database's clock (`Dialect.clock`), as run leases are: hosts
whose clocks disagree still count the same slots. `now` only stamps `acquired_at`.

Each function runs inside the caller's write transaction (see store/leases.py).
"""

from __future__ import annotations

from typing import Any

from stead.store.base import Limit, SlotGrant
from stead.store.sql import Dialect

# How long to wait before asking again for a concurrency slot: we cannot know when a holder
# finishes, so ask again soon (the caller backs off further).
CONCURRENCY_RETRY_S = 0.05


def set_limit(conn: Any, d: Dialect, limit: Limit) -> None:
    conn.execute(f"INSERT INTO limits (name, concurrency, rate, period) VALUES ({d.marks(4)}) "
                 "ON CONFLICT (name) DO UPDATE SET concurrency = excluded.concurrency, "
                 "rate = excluded.rate, period = excluded.period",
                 (limit.name, limit.concurrency, limit.rate, limit.period))


def delete_limit(conn: Any, d: Dialect, name: str) -> None:
    conn.execute(f"DELETE FROM limits WHERE name = {d.p}", (name,))
    conn.execute(f"DELETE FROM slots WHERE name = {d.p}", (name,))


def list_limits(conn: Any, d: Dialect) -> list[Limit]:
    rows = conn.execute("SELECT name, concurrency, rate, period FROM limits ORDER BY name")
    return [Limit(*row) for row in rows.fetchall()]


def take_slots(conn: Any, d: Dialect, names: list[str], holder: str, now: float,
               lease_s: float, occupy: int = 1) -> SlotGrant:
    """See Store.take_slots. Runs inside one write transaction."""
    if not names or occupy < 1:
        return SlotGrant([])
    p, marks = d.p, d.marks(len(names))
    # Locking the limit rows makes concurrent takers of the same tags count one at a time.
    limits = [Limit(*row) for row in conn.execute(
        f"SELECT name, concurrency, rate, period FROM limits WHERE name IN ({marks}) "
        f"ORDER BY name{d.for_update}", names).fetchall()]
    if not limits:
        return SlotGrant([])
    held = [lim.name for lim in limits]
    db_now = conn.execute(f"SELECT {d.clock}").fetchone()[0]
    conn.execute(f"DELETE FROM slots WHERE name IN ({d.marks(len(held))}) AND "
                 f"expires_at <= {p}", (*held, db_now))
    counts = {(name, kind): (count, first) for name, kind, count, first in conn.execute(
        f"SELECT name, kind, count(*), min(expires_at) FROM slots WHERE name IN "
        f"({d.marks(len(held))}) GROUP BY name, kind", held).fetchall()}
    wait = 0.0
    wanted: list[tuple[str, str, float]] = []
    for lim in limits:
        if lim.concurrency is not None:
            count, _ = counts.get((lim.name, "concurrency"), (0, None))
            if count + occupy > lim.concurrency:
                wait = max(wait, CONCURRENCY_RETRY_S)
            wanted += [(lim.name, "concurrency", db_now + lease_s)] * occupy
        if lim.rate is not None and lim.period:
            count, first = counts.get((lim.name, "rate"), (0, None))
            if count + occupy > lim.rate:
                wait = max(wait, CONCURRENCY_RETRY_S if first is None else first - db_now)
            wanted += [(lim.name, "rate", db_now + lim.period)] * occupy
    if wait > 0:
        return SlotGrant([], wait)
    ids = []
    for name, kind, expires in wanted:
        ids.append(conn.execute(
            f"INSERT INTO slots (name, kind, holder, acquired_at, expires_at) VALUES "
            f"({d.marks(5)}) RETURNING id", (name, kind, holder, now, expires)).fetchone()[0])
    return SlotGrant(ids)


def renew_slots(conn: Any, d: Dialect, ids: list[int], lease_s: float) -> None:
    if not ids:
        return
    conn.execute(f"UPDATE slots SET expires_at = {d.clock} + {d.p} WHERE kind = 'concurrency' "
                 f"AND id IN ({d.marks(len(ids))})", (lease_s, *ids))


def release_slots(conn: Any, d: Dialect, ids: list[int]) -> None:
    if not ids:
        return
    conn.execute(f"DELETE FROM slots WHERE kind = 'concurrency' AND id IN "
                 f"({d.marks(len(ids))})", ids)
