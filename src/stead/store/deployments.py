"""Deployments, schedules, and the state changes of scheduled runs: SQL both backends share.

Each function runs on the caller's connection, inside its write transaction for writes (see
store/leases.py for the conventions).
"""

from __future__ import annotations

from typing import Any

from stead.errors import ConfigError, DeploymentNotFound
from stead.store.base import DeploymentRecord, ScheduleRecord
from stead.store.sql import Dialect
from stead.store.waits_sql import delete_for_runs

DEPLOYMENT_COLUMNS = ("name, version, flow_name, entrypoint, script_path, params, "
                      "param_schema, queue, tags, description, created_at, namespace")
SCHEDULE_COLUMNS = "id, deployment, schedule, active, missed, last_fire_at, created_at"


def save_deployment(conn: Any, d: Dialect, dep: DeploymentRecord) -> DeploymentRecord:
    # Versions of one name are numbered under a lock of that name's rows (the write lock on
    # SQLite); the primary key (name, version) refuses a duplicate if two deploys still race.
    rows = conn.execute(f"SELECT version, namespace FROM deployments WHERE name = "
                        f"{d.p}{d.for_update}", (dep.name,)).fetchall()
    if any(r[1] != dep.namespace for r in rows):
        raise ConfigError(f"the deployment name {dep.name!r} is taken in another namespace; "
                          "choose another name")
    dep.version = max((r[0] for r in rows), default=0) + 1
    conn.execute(f"INSERT INTO deployments ({DEPLOYMENT_COLUMNS}) VALUES ({d.marks(12)})",
                 (dep.name, dep.version, dep.flow_name, dep.entrypoint, dep.script_path,
                  dep.params, dep.param_schema, dep.queue, dep.tags, dep.description,
                  dep.created_at, dep.namespace))
    return dep


def get_deployment(conn: Any, d: Dialect, name: str, version: int | None) -> DeploymentRecord:
    if version is None:
        row = conn.execute(f"SELECT {DEPLOYMENT_COLUMNS} FROM deployments WHERE name = {d.p} "
                           "ORDER BY version DESC LIMIT 1", (name,)).fetchone()
    else:
        row = conn.execute(f"SELECT {DEPLOYMENT_COLUMNS} FROM deployments WHERE name = {d.p} "
                           f"AND version = {d.p}", (name, version)).fetchone()
    if row is None:
        which = f"deployment {name!r}" + ("" if version is None else f" version {version}")
        raise DeploymentNotFound(f"no {which}; `stead deployments ls` lists the deployments")
    return DeploymentRecord(*row)


def list_deployments(conn: Any, d: Dialect) -> list[DeploymentRecord]:
    rows = conn.execute(
        f"SELECT {DEPLOYMENT_COLUMNS} FROM deployments AS dep WHERE version = "
        "(SELECT max(version) FROM deployments WHERE name = dep.name) ORDER BY name").fetchall()
    return [DeploymentRecord(*row) for row in rows]


def set_schedules(conn: Any, d: Dialect, deployment: str, schedules: list[ScheduleRecord]
                  ) -> None:
    old = {(s.schedule, s.missed): s for s in list_schedules(conn, d, deployment)}
    conn.execute(f"DELETE FROM schedules WHERE deployment = {d.p}", (deployment,))
    new = {(s.schedule, s.missed) for s in schedules}
    if schedules and set(old) - new:
        # A schedule went: the runs created ahead for it must not start. The Scheduled runs
        # not yet due are removed (runs do not name their schedule), and the schedules that
        # stay are moved back to the deploy time, so their next rounds create theirs again.
        # (Without schedules, promote_due_runs removes them.)
        now = min(s.created_at for s in schedules)
        _remove_scheduled(conn, d, f"deployment = {d.p} AND scheduled_for > {d.p}",
                          (deployment, now))
        for kept in old.values():
            if kept.last_fire_at is not None and kept.last_fire_at > now:
                kept.last_fire_at = now
    for s in schedules:
        kept = old.get((s.schedule, s.missed))
        if kept is not None:  # an unchanged schedule keeps its progress: no duplicate runs
            s.last_fire_at, s.active, s.created_at = (kept.last_fire_at, kept.active,
                                                      kept.created_at)
        conn.execute(f"INSERT INTO schedules (deployment, schedule, active, missed, "
                     f"last_fire_at, created_at) VALUES ({d.marks(6)})",
                     (deployment, s.schedule, s.active, s.missed, s.last_fire_at, s.created_at))


def list_schedules(conn: Any, d: Dialect, deployment: str | None) -> list[ScheduleRecord]:
    if deployment is None:
        rows = conn.execute(f"SELECT {SCHEDULE_COLUMNS} FROM schedules "
                            "ORDER BY deployment, id").fetchall()
    else:
        rows = conn.execute(f"SELECT {SCHEDULE_COLUMNS} FROM schedules WHERE deployment = "
                            f"{d.p} ORDER BY id", (deployment,)).fetchall()
    return [ScheduleRecord(r[0], r[1], r[2], bool(r[3]), *r[4:]) for r in rows]


def set_schedule_active(conn: Any, d: Dialect, deployment: str, active: bool, now: float
                        ) -> int:
    """Pause or resume; see Store.set_schedule_active. Pausing removes the deployment's
    Scheduled runs (none has started: they only wait for their time) and moves each schedule's
    progress back to `now`, so a resume before those fire times creates them again; resuming
    moves the progress up to `now`, so the fire times that passed while paused are not
    missed runs (no burst)."""
    changed = int(conn.execute(f"UPDATE schedules SET active = {d.p} WHERE deployment = {d.p} "
                               f"AND active <> {d.p}", (active, deployment, active)).rowcount)
    if active:
        conn.execute(f"UPDATE schedules SET last_fire_at = {d.p} WHERE deployment = {d.p} AND "
                     f"(last_fire_at IS NULL OR last_fire_at < {d.p})", (now, deployment, now))
    else:
        _remove_scheduled(conn, d, f"deployment = {d.p}", (deployment,))
        conn.execute(f"UPDATE schedules SET last_fire_at = {d.p} WHERE deployment = {d.p} AND "
                     f"last_fire_at > {d.p}", (now, deployment, now))
    return changed


def _remove_scheduled(conn: Any, d: Dialect, where: str, args: tuple[Any, ...]) -> int:
    """Delete the Scheduled runs (of a schedule, never started, no steps) matching `where`."""
    rows = conn.execute(f"DELETE FROM runs WHERE state = 'Scheduled' AND scheduled_for IS NOT "
                        f"NULL AND {where} RETURNING id", args).fetchall()
    ids = [r[0] for r in rows]
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        conn.execute(f"DELETE FROM run_history WHERE run_id IN ({d.marks(len(chunk))})", chunk)
    delete_for_runs(conn, d, ids)  # a message may have been sent to a run not yet started
    return len(ids)


def advance_schedule(conn: Any, d: Dialect, schedule_id: int, last_fire_at: float) -> None:
    conn.execute(f"UPDATE schedules SET last_fire_at = {d.p} WHERE id = {d.p} AND "
                 f"(last_fire_at IS NULL OR last_fire_at < {d.p})",
                 (last_fire_at, schedule_id, last_fire_at))


def _move_runs(conn: Any, d: Dialect, where: str, args: tuple[Any, ...], state: str,
               at: float, message: str, *, ended: bool = False) -> int:
    end = f", ended_at = {d.p}" if ended else ""
    rows = conn.execute(f"UPDATE runs SET state = {d.p}{end} WHERE {where} RETURNING id",
                        (state, *((at,) if ended else ()), *args)).fetchall()
    for (run_id,) in rows:
        conn.execute(f"INSERT INTO run_history (run_id, state, at, message) VALUES "
                     f"({d.marks(4)})", (run_id, state, at, message))
    return len(rows)


# A deployment whose runs may start: it has an active schedule.
_ACTIVE = ("EXISTS (SELECT 1 FROM schedules AS s WHERE s.deployment = runs.deployment AND "
           "s.active = {p})")


def promote_due_runs(conn: Any, d: Dialect, now: float) -> int:
    # Only runs of active schedules start: a run created by a scheduler that raced a pause
    # stays Scheduled, and is removed here, so a paused deployment never starts one.
    active = _ACTIVE.format(p=d.p)
    _remove_scheduled(conn, d, f"NOT {active}", (True,))
    return _move_runs(conn, d, f"state = 'Scheduled' AND scheduled_for <= {d.p} AND {active}",
                      (now, True), "Pending", now, "due: waiting for a worker")


def skip_missed_runs(conn: Any, d: Dialect, now: float, missed_after_s: float) -> int:
    """Cancel the missed runs the schedules' policies skip; see Store.skip_missed_runs."""
    # Runs that wait and were due before `before`. Scheduled and Pending ones are read
    # through the runs_scheduled index (a backlog of enqueued runs has no scheduled_for);
    # only scheduled runs are ever Late.
    def waiting(before: str) -> str:
        return (f"((state IN ('Scheduled', 'Pending') AND scheduled_for < {before}) OR "
                f"(state = 'Late' AND scheduled_for < {before})) AND EXISTS (SELECT 1 FROM "
                "schedules AS s WHERE s.deployment = runs.deployment AND s.missed IN "
                f"({d.marks(2)}))")
    later_due = ("EXISTS (SELECT 1 FROM runs AS later WHERE later.deployment = runs.deployment "
                 "AND later.scheduled_for > runs.scheduled_for AND later.scheduled_for <= "
                 f"{d.p})")
    superseded = _move_runs(conn, d, f"{waiting(d.p)} AND {later_due}",
                            (now, now, "latest", "skip", now), "Cancelled", now,
                            "skipped: missed, a later run of its schedule is due (missed-run "
                            "policy latest or skip)", ended=True)
    cutoff = now - missed_after_s
    return superseded + _move_runs(
        conn, d, waiting(d.p), (cutoff, cutoff, "skip", "skip"), "Cancelled", now,
        f"skipped: missed, not started within {missed_after_s:g} s of its scheduled time "
        "(missed-run policy skip)", ended=True)


def mark_late_runs(conn: Any, d: Dialect, now: float, grace_s: float) -> int:
    return _move_runs(conn, d, f"state = 'Pending' AND scheduled_for < {d.p}",
                      (now - grace_s,), "Late", now,
                      f"not started within {grace_s:g} s of its scheduled time")
