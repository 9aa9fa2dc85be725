"""The storage interface: the verbs the engine speaks, and the records they carry.

Every backend (SQLite, PostgreSQL, and the HTTP client of remote processes) implements `Store`.
Values (parameters, results, errors) arrive already encoded as text: the store never
interprets them, so it knows nothing about the engine above it.

`Store` is made of concept-sized parts, each a protocol in a module of its own under
store/parts/ with the records its verbs carry: runs and steps (`RunStore`), queues and leases
(`QueueStore`), limits and slots (`LimitStore`), deployments and schedules
(`DeploymentStore`), retention (`RetentionStore`), API keys (`KeyStore`), and waits, messages
and published status (`WaitStore`, in store/waits.py). Secrets, variables and the audit log
are parts of their own too (store/secrets.py, store/variables.py, store/audit.py). Every
record and part of `Store` is importable from here.

    >>> from stead.store.base import RunFilter, Store
    >>> RunFilter(state="Failed", limit=10).limit
    10
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from stead.store.parts.deployments import DeploymentRecord, DeploymentStore, ScheduleRecord
from stead.store.parts.keys import ApiKeyRecord, KeyStore
from stead.store.parts.limits import Limit, LimitStore, SlotGrant
from stead.store.parts.queues import QueueInfo, QueueStore, WorkerRecord
from stead.store.parts.retention import PRUNABLE_STATES, PruneResult, RetentionStore
from stead.store.parts.runs import (
    CacheEntry,
    Fence,
    LogRecord,
    RunFilter,
    RunRecord,
    RunStore,
    StateChange,
    StepRecord,
)
from stead.store.waits import MessageRecord, StatusRecord, WaitRecord, WaitStore

__all__ = [
    "PRUNABLE_STATES", "STORE_PARTS", "ApiKeyRecord", "CacheEntry", "DeploymentRecord",
    "DeploymentStore", "Fence", "KeyStore", "Limit", "LimitStore", "LogRecord",
    "MessageRecord", "PruneResult", "QueueInfo", "QueueStore", "RetentionStore", "RunFilter",
    "RunRecord", "RunStore", "ScheduleRecord", "SlotGrant", "StateChange", "StatusRecord",
    "StepRecord", "Store", "WaitRecord", "WaitStore", "WorkerRecord",
]

# The parts `Store` is made of, in the order of its verbs (store/wire.py lists them all).
STORE_PARTS: tuple[type, ...] = (RunStore, QueueStore, LimitStore, DeploymentStore,
                                 RetentionStore, KeyStore, WaitStore)


@runtime_checkable
class Store(RunStore, QueueStore, LimitStore, DeploymentStore, RetentionStore, KeyStore,
            WaitStore, Protocol):
    """What the engine needs from persistence. Implementations must be safe across processes."""

    url: str
    # time.monotonic() of this process's last attempt that could not reach the database
    # (-inf: never; SQLite never sets it). A reaper waits a lease after it (worker/recovery.py).
    unreachable_at: float

    def close(self) -> None:
        """Release connections held by this process."""
        ...
