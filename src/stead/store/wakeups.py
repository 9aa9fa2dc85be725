"""Waking idle workers as soon as a run becomes claimable, instead of at their next poll.

On PostgreSQL a trigger (migration 0015) notifies channel `stead_runs` with the queue's name
when a queued run becomes Pending or Late, or a queue's limit changes; a worker LISTENs on a
connection of its own and waits on its socket beside its child processes' pipes. SQLite and
remote mode have no such channel: their workers poll (`stead worker start --poll`), as
every worker also keeps doing, so a lost notification costs at most one poll interval.
"""

from __future__ import annotations

import time
from typing import Any

CHANNEL = "stead_runs"
RETRY_S = 5.0  # how long a worker polls only, after its listening connection failed


class RunWakeups:
    """A LISTEN connection to a PostgreSQL database: `fileno()` turns readable when some
    queue may have claimable runs; `take()` returns those queues' names.

    Example:
        >>> wakeups = RunWakeups("postgresql://db/stead")
        >>> wait([wakeups, *pipes], timeout=0.1)          # multiprocessing.connection.wait
        >>> "etl" in wakeups.take()
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self._conn: Any = None
        self._retry_at = 0.0
        # When the listening connection was made (time.monotonic()), None while there is
        # none: a claim made before it may have missed a notification sent before it.
        self.since: float | None = None

    def active(self) -> bool:
        """Whether it listens now (connecting again RETRY_S after a failure)."""
        if self._conn is None and time.monotonic() >= self._retry_at:
            try:
                import psycopg

                self._conn = psycopg.connect(self.url, autocommit=True, connect_timeout=2)
                self._conn.execute(f"LISTEN {CHANNEL}")
                self.since = time.monotonic()
            except Exception:  # the database is down: the worker's polls carry on
                self._drop()
        return self._conn is not None

    def fileno(self) -> int:
        return int(self._conn.pgconn.socket)

    def take(self) -> set[str]:
        """The queues notified since the last call (none if the connection failed)."""
        if self._conn is None:
            return set()
        try:
            return {n.payload for n in self._conn.notifies(timeout=0)}
        except Exception:
            self._drop()
            return set()

    def _drop(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:
                pass
        self._conn = None
        self.since = None
        self._retry_at = time.monotonic() + RETRY_S

    def close(self) -> None:
        self._drop()


def wakeups_for(url: str) -> RunWakeups | None:
    """The wake-up channel of the database at `url`, or None where workers only poll."""
    return RunWakeups(url) if url.startswith(("postgresql://", "postgres://")) else None
