"""The queue, lease, worker, limit, retention and waits verbs of the Store, written once for
both backends.

A backend mixes `QueueVerbs`, `RetentionVerbs` and `WaitVerbs` in and provides
`_write(fn, *args)` (run fn(conn, dialect, *args) in a write transaction) and
`_read(fn, *args)` (the same on a plain connection).
The SQL itself is in store/leases.py, store/slots.py, store/retention.py and
store/waits_sql.py.
"""

from __future__ import annotations

from typing import Any

from stead.store import cancel, deployments, keys, leases, resume, retention, slots, waits_sql
from stead.store.base import (
    ApiKeyRecord,
    DeploymentRecord,
    Fence,
    Limit,
    MessageRecord,
    PruneResult,
    QueueInfo,
    RunRecord,
    ScheduleRecord,
    SlotGrant,
    StatusRecord,
    StepRecord,
    WaitRecord,
    WorkerRecord,
)
from stead.store.waits import after_park


class QueueVerbs:
    unreachable_at = float("-inf")  # see Store.unreachable_at; set by backends that retry

    def _write(self, fn: Any, *args: Any) -> Any:
        raise NotImplementedError

    def _read(self, fn: Any, *args: Any) -> Any:
        raise NotImplementedError

    def set_queue(self, name: str, concurrency_limit: int | None) -> None:
        self._write(leases.set_queue, name, concurrency_limit)

    def list_queues(self) -> list[QueueInfo]:
        return self._read(leases.list_queues)  # type: ignore[no-any-return]

    def claim_runs(self, queues: list[str], worker: WorkerRecord, owner: str, n: int,
                   now: float, lease_s: float, namespaces: list[str] | None = None
                   ) -> list[RunRecord]:
        return self._write(  # type: ignore[no-any-return]
            leases.claim_runs, queues, worker, owner, n, now, lease_s, namespaces)

    def lease_holder_key(self, run_id: str, epoch: int) -> str | None:
        return self._read(keys.lease_holder_key, run_id, epoch)  # type: ignore[no-any-return]

    def heartbeat(self, worker: WorkerRecord, held: list[Fence], now: float,
                  lease_s: float) -> list[Fence]:
        return self._write(leases.heartbeat, worker, held, now,  # type: ignore[no-any-return]
                           lease_s)

    def expired_runs(self, limit: int = 100) -> list[RunRecord]:
        return self._read(leases.expired_runs, limit)  # type: ignore[no-any-return]

    def recover_run(self, run_id: str, epoch: int, now: float, reason: str, *,
                    count: bool = True) -> str | None:
        return self._write(  # type: ignore[no-any-return]
            leases.recover_run, run_id, epoch, now, reason, count)

    def register_worker(self, worker: WorkerRecord) -> None:
        self._write(leases.register_worker, worker)

    def list_workers(self) -> list[WorkerRecord]:
        return self._read(leases.list_workers)  # type: ignore[no-any-return]

    def set_limit(self, limit: Limit) -> None:
        self._write(slots.set_limit, limit)

    def delete_limit(self, name: str) -> None:
        self._write(slots.delete_limit, name)

    def list_limits(self) -> list[Limit]:
        return self._read(slots.list_limits)  # type: ignore[no-any-return]

    def take_slots(self, names: list[str], holder: str, now: float,
                   lease_s: float, occupy: int = 1) -> SlotGrant:
        return self._write(slots.take_slots, names, holder, now,  # type: ignore[no-any-return]
                           lease_s, occupy)

    def renew_slots(self, ids: list[int], lease_s: float) -> None:
        self._write(slots.renew_slots, ids, lease_s)

    def release_slots(self, ids: list[int]) -> None:
        self._write(slots.release_slots, ids)

    # -- deployments and schedules (SQL in store/deployments.py) ---------------------------
    def save_deployment(self, deployment: DeploymentRecord) -> DeploymentRecord:
        return self._write(deployments.save_deployment,  # type: ignore[no-any-return]
                           deployment)

    def get_deployment(self, name: str, version: int | None = None) -> DeploymentRecord:
        return self._read(deployments.get_deployment, name,  # type: ignore[no-any-return]
                          version)

    def list_deployments(self) -> list[DeploymentRecord]:
        return self._read(deployments.list_deployments)  # type: ignore[no-any-return]

    def set_schedules(self, deployment: str, schedules: list[ScheduleRecord]) -> None:
        self._write(deployments.set_schedules, deployment, schedules)

    def list_schedules(self, deployment: str | None = None) -> list[ScheduleRecord]:
        return self._read(deployments.list_schedules,  # type: ignore[no-any-return]
                          deployment)

    def set_schedule_active(self, deployment: str, active: bool, now: float) -> int:
        return self._write(deployments.set_schedule_active,  # type: ignore[no-any-return]
                           deployment, active, now)

    def advance_schedule(self, schedule_id: int, last_fire_at: float) -> None:
        self._write(deployments.advance_schedule, schedule_id, last_fire_at)

    def promote_due_runs(self, now: float) -> int:
        return self._write(deployments.promote_due_runs, now)  # type: ignore[no-any-return]

    def skip_missed_runs(self, now: float, missed_after_s: float) -> int:
        return self._write(deployments.skip_missed_runs, now,  # type: ignore[no-any-return]
                           missed_after_s)

    def mark_late_runs(self, now: float, grace_s: float) -> int:
        return self._write(deployments.mark_late_runs, now,  # type: ignore[no-any-return]
                           grace_s)

    # -- cancellation (SQL in store/cancel.py) -----------------------------------------------
    def cancel_run(self, run_id: str, now: float, reason: str) -> str:
        return self._write(cancel.cancel_run, run_id, now, reason)  # type: ignore[no-any-return]

    def runs_to_cancel(self, worker_id: str) -> list[tuple[str, int]]:
        return self._read(cancel.runs_to_cancel, worker_id)  # type: ignore[no-any-return]

    def finish_cancel(self, run_id: str, now: float, message: str) -> bool:
        return self._write(cancel.finish_cancel, run_id, now,  # type: ignore[no-any-return]
                           message)

    # -- resuming enqueued runs by hand (SQL in store/resume.py) -----------------------------
    def requeue_run(self, run_id: str, epoch: int, now: float, reason: str, *,
                    executor_gone: bool = False) -> str:
        return self._write(resume.requeue_run, run_id, epoch, now,  # type: ignore[no-any-return]
                           reason, executor_gone)

    # -- API keys of the HTTP server (SQL in store/keys.py) ----------------------------------
    def create_api_key(self, key: ApiKeyRecord) -> None:
        self._write(keys.create_api_key, key)

    def list_api_keys(self) -> list[ApiKeyRecord]:
        return self._read(keys.list_api_keys)  # type: ignore[no-any-return]

    def find_api_key(self, key_hash: str) -> ApiKeyRecord | None:
        return self._read(keys.find_api_key, key_hash)  # type: ignore[no-any-return]

    def revoke_api_key(self, id_or_prefix: str, now: float) -> ApiKeyRecord:
        return self._write(keys.revoke_api_key, id_or_prefix,  # type: ignore[no-any-return]
                           now)

    def touch_api_key(self, key_id: str, now: float) -> None:
        self._write(keys.touch_api_key, key_id, now)


class RetentionVerbs:
    """Deleting old finished runs (SQL in store/retention.py), over the same `_write`/`_read`."""

    _seqs: dict[str, int]  # the backend's cache of run id -> seq

    def _write(self, fn: Any, *args: Any) -> Any:
        raise NotImplementedError

    def _read(self, fn: Any, *args: Any) -> Any:
        raise NotImplementedError

    def prune_runs(self, before: float, states: tuple[str, ...], limit: int) -> PruneResult:
        result: PruneResult = self._write(retention.prune_runs, before, states, limit)
        if result.runs:
            self._seqs.clear()  # a deleted run's id may be used again, by a new row
        return result

    def count_prunable(self, before: float, states: tuple[str, ...]) -> PruneResult:
        return self._read(retention.count_prunable, before,  # type: ignore[no-any-return]
                          states)

    def results_in_use(self, refs: list[str]) -> list[str]:
        return self._read(retention.results_in_use, refs)  # type: ignore[no-any-return]


class WaitVerbs:
    """The waits, messages and status verbs (SQL in store/waits_sql.py), over the same
    `_write`/`_read`.

    Example:
        >>> store.send_message(run_id, "payment", '{"ref": "tx-81"}', "tx-81", now)[1]
        True
    """

    def _write(self, fn: Any, *args: Any) -> Any:
        raise NotImplementedError

    def _read(self, fn: Any, *args: Any) -> Any:
        raise NotImplementedError

    def send_message(self, run_id: str, topic: str, payload: str,
                     idempotency_key: str | None, now: float, sender: str | None = None,
                     expects_reply: bool = False) -> tuple[MessageRecord, bool]:
        return self._write(waits_sql.send_message, run_id, topic,  # type: ignore[no-any-return]
                           payload, idempotency_key, now, sender, expects_reply)

    def next_message(self, run_id: str, topic: str) -> MessageRecord | None:
        return self._read(waits_sql.next_message, run_id, topic)  # type: ignore[no-any-return]

    def consume_message(self, message_id: int, step: StepRecord,
                        fence: Fence | None = None) -> MessageRecord:
        return self._write(waits_sql.consume_message, message_id,  # type: ignore[no-any-return]
                           step, fence)

    def reject_message(self, message_id: int, reason: str, now: float,
                       fence: Fence | None = None) -> None:
        self._write(waits_sql.reject_message, message_id, reason, now, fence)

    def reply_message(self, message_id: int, reply: str | None, error: str | None,
                      now: float, fence: Fence | None = None) -> None:
        self._write(waits_sql.reply_message, message_id, reply, error, now, fence)

    def get_message(self, message_id: int) -> MessageRecord:
        return self._read(waits_sql.get_message, message_id)  # type: ignore[no-any-return]

    def list_messages(self, run_id: str, topic: str | None = None,
                      limit: int = 100) -> list[MessageRecord]:
        return self._read(waits_sql.list_messages, run_id, topic,  # type: ignore[no-any-return]
                          limit)

    def record_wait(self, wait: WaitRecord, fence: Fence | None = None) -> None:
        self._write(waits_sql.record_wait, wait, fence)

    def clear_wait(self, run_id: str, fence: Fence | None = None) -> None:
        self._write(waits_sql.clear_wait, run_id, fence)

    def get_wait(self, run_id: str) -> WaitRecord | None:
        return self._read(waits_sql.get_wait, run_id)  # type: ignore[no-any-return]

    def list_waits(self, run_ids: list[str]) -> dict[str, WaitRecord]:
        return self._read(waits_sql.list_waits, run_ids)  # type: ignore[no-any-return]

    def park_run(self, run: RunRecord, wait: WaitRecord, now: float,
                 fence: Fence | None = None) -> str:
        state: str = self._write(waits_sql.park_run, run, wait, now, fence)
        after_park(run, state)  # the caller's copy, once the transaction committed
        return state

    def wake_due_runs(self, now: float, limit: int = 1000) -> tuple[int, float | None]:
        return self._write(waits_sql.wake_due_runs, now, limit)  # type: ignore[no-any-return]

    def notify_finished(self, run_id: str, now: float) -> int:
        return self._write(waits_sql.notify_finished, run_id, now)  # type: ignore[no-any-return]

    def set_status(self, status: StatusRecord, step: StepRecord | None = None,
                   fence: Fence | None = None) -> None:
        self._write(waits_sql.set_status, status, step, fence)

    def get_status(self, run_id: str, key: str | None = None) -> list[StatusRecord]:
        return self._read(waits_sql.get_status, run_id, key)  # type: ignore[no-any-return]
