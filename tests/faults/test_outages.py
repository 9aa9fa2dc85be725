"""The database or the server goes away under running work (matrix rows 4 and 5): a quick
restart, then an outage twice as long as the store's retry window (STEAD_STORE_RETRY_SECONDS
set to 5 s for the processes under test). Runs may be recovered when their leases lapse
during an outage, or handed back by their worker when the store stays away (each may re-run
the step that was in flight); nothing is lost,
nothing finished runs again, nothing stays stuck, and the workers ride it out."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import fault_flows
import pytest

from stead.core.runtime import close_stores, store_for
from stead.settings import reset_settings
from stead.store.base import RunFilter, Store
from tests.faults.harness import (
    Figures,
    ServerProcess,
    executed,
    executions,
    finish,
    finished_steps,
    interruptions,
    settle,
    start_cli,
    start_direct,
    wait_for,
)
from tests.postgres import Cluster, create_database
from tests.worker.conftest import Workers

RETRY_S = 5.0  # the store's retry window in the processes under test
OUTAGE_S = 2 * RETRY_S
SHORT_WINDOW = {"STEAD_STORE_RETRY_SECONDS": f"{RETRY_S:g}"}


def completed(db: Store) -> int:
    return len(db.list_runs(RunFilter(state="Completed", limit=100_000)))


def progress_after(out: Path, timeout: float) -> float | None:
    """Seconds until a task body starts again (work going on after a fault), or None."""
    seen, started = len(executions(out)), time.monotonic()
    if wait_for(lambda: len(executions(out)) > seen, timeout):
        return time.monotonic() - started
    return None


def test_postgres_restart_and_an_outage_past_the_retry_window(
        stead_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        figures: Callable[..., Figures]) -> None:
    """Row 4: two workers (and a direct flow) on a cluster of the test's own, which is
    restarted (down 2 s) and later stopped for twice the retry window."""
    from stead.store.postgres import PostgresStore

    fig = figures("4 PostgreSQL restart, outage 2x the retry window", "postgres",
                  f"pg_ctl restart (down 2 s), then down {OUTAGE_S:g} s with a "
                  f"{RETRY_S:g} s retry window; 2 workers (lease 3 s) + a direct flow")
    cluster = Cluster()  # never stop a server someone else uses
    ws: Workers | None = None
    try:
        url = create_database(cluster.url, "faults_outage")
        PostgresStore(url).close()
        monkeypatch.setenv("STEAD_DATABASE_URL", url)
        close_stores()
        reset_settings()
        db = store_for(url)
        out = tmp_path / "executions.txt"
        ids = [fault_flows.chain.enqueue(out=str(out), n=10, seconds=0.05, queue="q",
                                         run_id=f"pg-{i:02d}") for i in range(48)]
        ws = Workers(url, tmp_path)
        for _ in range(2):
            ws.start("-q", "q", "-c", "2", "--lease", "3", **SHORT_WINDOW)
        assert wait_for(lambda: completed(db) >= 8, 60)
        cluster.restart(down_for=2.0)
        first = progress_after(out, 30)
        direct = "pg-direct"
        log = tmp_path / "direct.log"
        proc = start_direct(stead_home, "chain", direct,
                            {"out": str(out), "n": 60, "seconds": 0.1}, log, **SHORT_WINDOW)
        assert wait_for(lambda: executed(out, direct) >= 3, 60), log.read_text()
        cluster.restart(down_for=OUTAGE_S)
        second = progress_after(out, 30)
        fig.recover_s = max(first or 1e9, second or 1e9)
        code = finish(proc, 60)
        before = {direct: finished_steps(db, direct)}
        if code != 0:  # it gave up after the retry window: the run must still be resumable
            fig.notes.append(f"direct flow exited {code} during the outage; resumed")
            assert finish(start_cli(stead_home, "runs", "resume", direct, log=log,
                                    STEAD_DATABASE_URL=url), 60) == 0, log.read_text()
        settle(db, ids, 60)
        allowance = {rid: interruptions(db, rid) for rid in ids}
        allowance[direct] = 1 if code != 0 else 0
        fig.tally(db, [*ids, direct], out, allowance=allowance, finished_before=before,
                  url=url)
        fig.check()
        assert all(w.poll() is None for w in ws.procs), "a worker died of the outage"
    finally:
        if ws is not None:
            ws.stop_all()
        close_stores()
        cluster.stop()


def test_server_killed_under_remote_workers(stead_home: Path, tmp_path: Path,
                                            figures: Callable[..., Figures]) -> None:
    """Row 5: remote workers talk to `stead server start` on loopback; the server is killed
    with SIGKILL and started again on the same port at once, then killed and kept down for
    twice the retry window."""
    fig = figures("5 server SIGKILL under remote workers", "http+sqlite",
                  f"kill -9 of the server, restarted at once, then down {OUTAGE_S:g} s; "
                  "2 remote workers (lease 2 s)")
    db = store_for()
    db_url = db.url
    server = ServerProcess(stead_home, db_url, tmp_path / "server.log")
    server.start()
    ws = Workers(server.url, tmp_path)
    try:
        out = tmp_path / "executions.txt"
        ids = [fault_flows.chain.enqueue(out=str(out), n=10, seconds=0.05, queue="q",
                                         run_id=f"srv-{i:02d}") for i in range(40)]
        for _ in range(2):
            ws.start("-q", "q", "-c", "2", "--lease", "2", **SHORT_WINDOW)
        assert wait_for(lambda: completed(db) >= 6, 60)
        server.kill()
        server.start()
        first = progress_after(out, 30)
        assert wait_for(lambda: completed(db) >= 14, 60)
        server.kill()
        time.sleep(OUTAGE_S)
        server.start()
        second = progress_after(out, 30)
        fig.recover_s = max(first or 1e9, second or 1e9)
        settle(db, ids, 60)
        allowance = {rid: interruptions(db, rid) for rid in ids}
        fig.tally(db, ids, out, allowance=allowance, url=db_url)
        fig.check()
        assert all(w.poll() is None for w in ws.procs), "a worker died of the outage"
    finally:
        ws.stop_all()
        server.kill()
