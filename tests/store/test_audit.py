"""The audit part of the store (store/audit.py) on SQLite and PostgreSQL: batch inserts,
every filter, the before-id cursor, and pruning by age (also by the server's retention)."""

from __future__ import annotations

import time

import pytest

from stead.errors import ConfigError
from stead.server.services import retention_round
from stead.settings import get_settings, reset_settings
from stead.store.audit import DAY, AuditFilter, AuditLog, AuditRecord, audit_log
from stead.store.base import Store


@pytest.fixture(autouse=True)
def _audit_is_local(request: pytest.FixtureRequest) -> None:
    if "backend" in request.fixturenames and request.getfixturevalue("backend") == "http":
        pytest.skip("the audit log is kept where the database is, not through a server")


def row(at: float, n: int, **fields: object) -> AuditRecord:
    base: dict[str, object] = dict(key_id=f"k{n % 3}", key_name=f"key-{n % 3}", role="admin",
                                   address="10.1.2.3", method="POST",
                                   action=f"POST /api/v1/runs/r{n}/cancel", target=f"r{n}",
                                   outcome=200)
    base.update(fields)
    return AuditRecord(at=at, **base)  # type: ignore[arg-type]


def test_rows_are_listed_newest_first_with_every_field(store: Store) -> None:
    log = audit_log(store)
    assert isinstance(store, AuditLog)
    log.record_audit([])  # nothing to write: no transaction
    log.record_audit([row(10.0, 1, detail="RunNotFound", outcome=404),
                      row(11.0, 2, key_id=None, key_name="local:alice", address="local",
                          method="CLI", action="keys create", target="abc")])
    second, first = log.list_audit(AuditFilter())
    assert first.id is not None and second.id is not None and second.id > first.id
    assert (first.at, first.key_id, first.key_name, first.role, first.address, first.method,
            first.action, first.target, first.outcome, first.detail) == (
        10.0, "k1", "key-1", "admin", "10.1.2.3", "POST", "POST /api/v1/runs/r1/cancel",
        "r1", 404, "RunNotFound")
    assert (second.key_id, second.key_name, second.method) == (None, "local:alice", "CLI")


def test_filters_combine_and_the_cursor_pages_without_repeats(store: Store) -> None:
    log = audit_log(store)
    log.record_audit([row(1000.0 + n, n, outcome=(401, 403, 500, 200, 201)[n % 5],
                          action=("store.set_queue" if n % 4 == 0 else
                                  f"POST /api/v1/runs/r{n}/cancel"))
                      for n in range(20)])

    def targets(**kw: object) -> list[str]:
        flt = AuditFilter(**kw)  # type: ignore[arg-type]
        return [r.target or "" for r in log.list_audit(flt)]

    assert targets(key="k1") == [f"r{n}" for n in reversed(range(20)) if n % 3 == 1]
    assert targets(key="key-2") == [f"r{n}" for n in reversed(range(20)) if n % 3 == 2]
    assert targets(action="SET_QUEUE") == [f"r{n}" for n in reversed(range(20)) if n % 4 == 0]
    assert targets(action="_") == targets(action="store.set_queue")  # _ is no wildcard
    assert targets(action="%") == []
    assert targets(outcome="denied") == [f"r{n}" for n in reversed(range(20)) if n % 5 < 2]
    assert targets(outcome="failed") == [f"r{n}" for n in reversed(range(20)) if n % 5 < 3]
    assert targets(outcome="ok") == [f"r{n}" for n in reversed(range(20)) if n % 5 >= 3]
    assert targets(since=1005.0, until=1008.0) == ["r7", "r6", "r5"]
    assert targets(target="r3") == ["r3"]
    assert targets(key="k0", outcome="failed", since=1003.0) == ["r15", "r12", "r6"]
    with pytest.raises(ConfigError, match="unknown audit outcome"):
        log.list_audit(AuditFilter(outcome="bad"))

    seen: list[str] = []
    before = None
    while page := log.list_audit(AuditFilter(limit=7, before_id=before)):
        seen += [r.target or "" for r in page]
        before = page[-1].id
    assert seen == [f"r{n}" for n in reversed(range(20))]


def test_prune_deletes_only_rows_older_than_the_cutoff(store: Store) -> None:
    log = audit_log(store)
    log.record_audit([row(float(n), n) for n in range(12)])
    assert log.prune_audit(5.0, count_only=True) == 5
    assert len(log.list_audit(AuditFilter())) == 12
    assert log.prune_audit(5.0) == 5
    assert [r.at for r in log.list_audit(AuditFilter())][-1] == 5.0
    assert log.prune_audit(5.0) == 0


def test_the_servers_retention_round_applies_the_audit_retention(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    now = time.time()
    audit_log(store).record_audit([row(now - 100 * DAY, 1), row(now - 10 * DAY, 2),
                                   row(now, 3)])
    retention_round(store)  # default: 90 days
    assert [r.target for r in audit_log(store).list_audit(AuditFilter())] == ["r3", "r2"]
    monkeypatch.setenv("STEAD_AUDIT_RETENTION_DAYS", "0")  # keep forever
    reset_settings()
    retention_round(store)
    assert len(audit_log(store).list_audit(AuditFilter())) == 2
    monkeypatch.setenv("STEAD_AUDIT_RETENTION_DAYS", "7")
    reset_settings()
    retention_round(store)
    assert [r.target for r in audit_log(store).list_audit(AuditFilter())] == ["r3"]


def test_the_audit_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = get_settings()
    assert (settings.audit_retention_days, settings.audit_execution) == (90.0, False)
    for name, bad in (("STEAD_AUDIT_RETENTION_DAYS", "-1"), ("STEAD_AUDIT_RETENTION_DAYS", "x"),
                      ("STEAD_AUDIT_EXECUTION", "maybe")):
        monkeypatch.setenv(name, bad)
        reset_settings()
        with pytest.raises(ConfigError, match=name):
            get_settings()
        monkeypatch.delenv(name)
    monkeypatch.setenv("STEAD_AUDIT_EXECUTION", "1")
    monkeypatch.setenv("STEAD_AUDIT_RETENTION_DAYS", "0")
    reset_settings()
    assert (get_settings().audit_retention_days, get_settings().audit_execution) == (0.0, True)
