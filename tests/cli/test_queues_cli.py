"""`stead queues`, `stead limits`, `stead workers ls` and `stead runs ls --queue/--state`.

The database is filled through the store (runs enqueued and claimed as a worker would); the
commands run in-process with CliRunner, and once in a real subprocess.
"""

from __future__ import annotations

import re
import time

import pytest

from stead.core.process import current_owner
from stead.core.runtime import store_for
from stead.store.base import Limit, RunRecord, Store, WorkerRecord


@pytest.fixture
def store() -> Store:
    return store_for()


def enqueue(store: Store, run_id: str, queue: str | None, created_at: float,
            state: str = "Pending", flow_name: str = "etl_flow") -> None:
    store.create_run(RunRecord(id=run_id, flow_name=flow_name, state=state, queue=queue,
                               created_at=created_at), "test")


def worker(wid: str, name: str, heartbeat_at: float, state: str = "running",
           queues: str = '["etl", "ml"]', running: int = 2) -> WorkerRecord:
    return WorkerRecord(id=wid, name=name, host="box-1", pid=4321, queues=queues,
                        concurrency=4, state=state, started_at=heartbeat_at - 60,
                        heartbeat_at=heartbeat_at, running=running)


def row(output: str, first_cell: str) -> list[str]:
    """The cells (split on runs of spaces) of the table row that starts with `first_cell`."""
    for line in output.splitlines():
        cells = [c for c in re.split(r"\s{2,}|│", line.strip()) if c.strip()]
        if cells and cells[0].strip() == first_cell:
            return [c.strip() for c in cells]
    raise AssertionError(f"no row {first_cell!r} in:\n{output}")


def first_cells(output: str) -> list[str]:
    return [line.split()[0] for line in output.splitlines() if line.strip()]


# -- queues ----------------------------------------------------------------------------------


def test_queues_ls_shows_limits_and_counts(invoke, store: Store) -> None:
    now = time.time()
    store.set_queue("declared", 3)
    for i in range(3):
        enqueue(store, f"etl-{i}", "etl", created_at=now - 3 * 3600 + i)
    store.claim_runs(["etl"], worker("w1", "alpha", now), current_owner(), 1, now, 30.0)
    enqueue(store, "done-0", "old", created_at=now - 10, state="Completed")
    enqueue(store, "direct", None, created_at=now - 10, state="Completed")
    result = invoke("queues", "ls")
    assert result.exit_code == 0, result.output
    assert first_cells(result.stdout)[-3:] == ["declared", "etl", "old"]
    assert row(result.stdout, "declared") == ["declared", "3", "0", "0"]
    etl = row(result.stdout, "etl")
    assert etl[:4] == ["etl", "-", "2", "1"]
    assert re.fullmatch(r"\dh \d\dm", etl[4])  # the oldest has waited ~3 hours
    assert row(result.stdout, "old") == ["old", "-", "0", "0"]


def test_queues_ls_without_queues_says_how_to_enqueue(invoke, store: Store) -> None:
    result = invoke("queues", "ls")
    assert result.exit_code == 0, result.output
    assert "No queues in" in result.stdout and ".enqueue(" in result.stdout


def test_queues_ls_without_a_database_is_an_error(invoke) -> None:
    result = invoke("queues", "ls")
    assert result.exit_code == 2
    assert "no Stead database" in result.output


def test_queues_set_changes_the_limit(invoke, store: Store) -> None:
    result = invoke("queues", "set", "etl", "--limit", "4")
    assert result.exit_code == 0, result.output
    assert "queue etl: at most 4 runs at once" in result.stdout
    assert [(q.name, q.concurrency_limit) for q in store.list_queues()] == [("etl", 4)]
    assert row(invoke("queues", "ls").stdout, "etl")[:2] == ["etl", "4"]
    result = invoke("queues", "set", "etl", "--no-limit")
    assert result.exit_code == 0, result.output
    assert "queue etl: no limit" in result.stdout
    assert [(q.name, q.concurrency_limit) for q in store.list_queues()] == [("etl", None)]


@pytest.mark.parametrize("args", [(), ("--limit", "2", "--no-limit")])
def test_queues_set_needs_exactly_one_of_limit_and_no_limit(invoke, store: Store,
                                                            args: tuple[str, ...]) -> None:
    result = invoke("queues", "set", "etl", *args)
    assert result.exit_code == 2
    assert "give either --limit N or --no-limit" in result.output
    assert store.list_queues() == []


def test_queues_set_refuses_a_limit_below_one(invoke, store: Store) -> None:
    result = invoke("queues", "set", "etl", "--limit", "0")
    assert result.exit_code == 2
    assert "--limit" in result.output
    assert store.list_queues() == []


# -- limits ----------------------------------------------------------------------------------


def test_limits_set_ls_rm(invoke, store: Store) -> None:
    result = invoke("limits", "ls")
    assert result.exit_code == 0 and "No tag limits" in result.stdout
    for args in (("db", "--concurrency", "5"), ("api", "--rate", "10", "--per", "1"),
                 ("wh", "--concurrency", "2", "--rate", "100", "--per", "60")):
        result = invoke("limits", "set", *args)
        assert result.exit_code == 0, result.output
        assert f"tag {args[0]}: limit set" in result.stdout
    assert store.list_limits() == [Limit("api", None, 10, 1.0), Limit("db", 5),
                                   Limit("wh", 2, 100, 60.0)]
    listing = invoke("limits", "ls").stdout
    assert first_cells(listing)[-3:] == ["api", "db", "wh"]
    assert row(listing, "api") == ["api", "-", "10 per 1 s"]
    assert row(listing, "db") == ["db", "5", "-"]
    assert row(listing, "wh") == ["wh", "2", "100 per 60 s"]
    result = invoke("limits", "rm", "api")
    assert result.exit_code == 0 and "tag api: no limit" in result.stdout
    assert [lim.name for lim in store.list_limits()] == ["db", "wh"]
    assert "api" not in first_cells(invoke("limits", "ls").stdout)


@pytest.mark.parametrize(("args", "message"), [
    ((), "give --concurrency N, or --rate N --per SECONDS, or both"),
    (("--rate", "10"), "--rate and --per go together"),
    (("--concurrency", "2", "--per", "5"), "--rate and --per go together"),
    (("--rate", "10", "--per", "0"), "--per must be > 0 seconds"),
])
def test_limits_set_errors(invoke, store: Store, args: tuple[str, ...], message: str) -> None:
    result = invoke("limits", "set", "db", *args)
    assert result.exit_code == 2
    assert message in result.output
    assert store.list_limits() == []


# -- workers ---------------------------------------------------------------------------------


def test_workers_ls_shows_live_and_lost_workers_and_all_shows_stopped(invoke,
                                                                      store: Store) -> None:
    now = time.time()
    store.register_worker(worker("w1", "alive-one", now))
    store.register_worker(worker("w2", "silent-one", now - 3600, queues='["etl"]', running=1))
    store.register_worker(worker("w3", "gone-one", now - 7200, state="stopped", running=0))
    result = invoke("workers", "ls")
    assert result.exit_code == 0, result.output
    out = result.stdout
    alive, silent = row(out, "alive-one"), row(out, "silent-one")
    assert alive[1:6] == ["box-1", "4321", "etl, ml", "running", "2/4"]
    assert silent[1:4] == ["box-1", "4321", "etl"] and silent[5] == "1/4"
    assert "lost" in silent[4]  # (its exact text: see the markup test below)
    assert "gone-one" not in out
    assert first_cells(out).index("alive-one") < first_cells(out).index("silent-one")
    everything = invoke("workers", "ls", "--all")
    assert everything.exit_code == 0, everything.output
    assert row(everything.stdout, "gone-one")[4:6] == ["stopped", "0/4"]  # stopped, not lost
    assert "lost" in row(everything.stdout, "silent-one")[4]


def test_a_lost_worker_is_shown_as_lost_not_as_markup(invoke, store: Store) -> None:
    store.register_worker(worker("w2", "silent-one", time.time() - 3600))
    out = invoke("workers", "ls").stdout
    assert row(out, "silent-one")[4] == "lost"
    assert "[bold red]" not in out


def test_names_with_brackets_are_shown_as_they_are(invoke, store: Store) -> None:
    store.set_queue("etl[eu]", 2)
    store.set_limit(Limit("db[main]", concurrency=1))
    store.register_worker(worker("w1", "node[a]", time.time()))
    assert row(invoke("queues", "ls").stdout, "etl[eu]")[:2] == ["etl[eu]", "2"]
    assert row(invoke("limits", "ls").stdout, "db[main]")[:2] == ["db[main]", "1"]
    assert row(invoke("workers", "ls").stdout, "node[a]")[4] == "running"


def test_workers_ls_without_workers(invoke, store: Store) -> None:
    result = invoke("workers", "ls")
    assert result.exit_code == 0, result.output
    assert "No workers running in" in result.stdout and "--all" in result.stdout
    store.register_worker(worker("w3", "gone-one", time.time(), state="stopped"))
    assert "gone-one" not in invoke("workers", "ls").stdout
    assert "No workers running" in invoke("workers", "ls").stdout


def test_a_heartbeat_brings_a_lost_worker_back(invoke, store: Store) -> None:
    w = worker("w1", "sleepy", time.time() - 3600)
    store.register_worker(w)
    assert "lost" in row(invoke("workers", "ls").stdout, "sleepy")[4]
    store.heartbeat(w, [], time.time(), 30.0)
    assert row(invoke("workers", "ls").stdout, "sleepy")[4] == "running"


# -- runs ls ---------------------------------------------------------------------------------


def fill_runs(store: Store) -> None:
    now = time.time()
    enqueue(store, "etl-running", "etl", now - 50)  # the oldest: claimed below
    enqueue(store, "etl-pending", "etl", now - 40)
    store.claim_runs(["etl"], worker("w1", "alpha", now), current_owner(), 1, now, 30.0)
    enqueue(store, "ml-pending", "ml", now - 30)
    enqueue(store, "direct-done", None, now - 20, state="Completed")
    enqueue(store, "etl-done", "etl", now - 10, state="Completed")


def test_runs_ls_by_queue(invoke, store: Store) -> None:
    fill_runs(store)
    result = invoke("runs", "ls", "--queue", "etl")
    assert result.exit_code == 0, result.output
    ids = [c for c in first_cells(result.stdout) if "-" in c and c != "-"]
    assert ids == ["etl-done", "etl-pending", "etl-running"]  # newest first
    assert "ml-pending" not in result.stdout and "direct-done" not in result.stdout
    assert "Queue" in result.stdout
    assert row(result.stdout, "etl-running")[2] == "Running"
    assert "etl" in row(result.stdout, "etl-pending")
    none = invoke("runs", "ls", "--queue", "nowhere")
    assert none.exit_code == 0 and "No runs matching the filters" in none.stdout


def test_runs_ls_with_several_states(invoke, store: Store) -> None:
    fill_runs(store)
    result = invoke("runs", "ls", "--state", "Pending", "--state", "running")
    assert result.exit_code == 0, result.output
    shown = [c for c in first_cells(result.stdout) if "-" in c and c != "-"]
    assert shown == ["ml-pending", "etl-pending", "etl-running"]
    both = invoke("runs", "ls", "-s", "Pending", "--queue", "etl")
    assert [c for c in first_cells(both.stdout) if "-" in c and c != "-"] == ["etl-pending"]
    bad = invoke("runs", "ls", "--state", "Pending", "--state", "Sleeping")
    assert bad.exit_code == 2 and "unknown state" in bad.output


def test_runs_ls_crashed_on_a_queue_includes_claimed_runs_whose_process_is_gone(
        invoke, store: Store) -> None:
    now = time.time()
    dead_owner = current_owner().rsplit("|", 1)[0] + "|0"  # this pid, another start: gone
    for queue in ("etl", "ml"):
        enqueue(store, f"{queue}-orphan", queue, now - 10)
        store.claim_runs([queue], worker("w1", "alpha", now), dead_owner, 1, now, 30.0)
    enqueue(store, "etl-alive", "etl", now - 5)
    store.claim_runs(["etl"], worker("w1", "alpha", now), current_owner(), 1, now, 30.0)
    result = invoke("runs", "ls", "--state", "Crashed", "--queue", "etl")
    assert result.exit_code == 0, result.output
    assert [c for c in first_cells(result.stdout) if "-" in c and c != "-"] == ["etl-orphan"]
    assert "Crashed?" in row(result.stdout, "etl-orphan")[2]


def test_runs_ls_without_queued_runs_has_no_queue_column(invoke, store: Store) -> None:
    enqueue(store, "direct-done", None, time.time(), state="Completed")
    result = invoke("runs", "ls")
    assert result.exit_code == 0, result.output
    assert "direct-done" in result.stdout and "Queue" not in result.stdout


def test_queues_and_workers_from_a_real_process(stead_cli, store: Store) -> None:
    enqueue(store, "etl-0", "etl", time.time())
    store.register_worker(worker("w1", "alpha", time.time()))
    queues = stead_cli("queues", "ls")
    assert queues.returncode == 0, queues.stderr
    assert row(queues.stdout, "etl")[:4] == ["etl", "-", "1", "0"]
    workers = stead_cli("workers", "ls")
    assert workers.returncode == 0, workers.stderr
    assert row(workers.stdout, "alpha")[4] == "running"
    bad = stead_cli("limits", "set", "db", "--rate", "5")
    assert bad.returncode == 2 and "--rate and --per go together" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_runs_show_names_the_queue_and_recoveries_of_an_enqueued_run(invoke, store: Store
                                                                     ) -> None:
    now = time.time()
    store.create_run(RunRecord(id="queued-1", flow_name="etl_flow", state="Pending",
                               queue="etl", priority=5, created_at=now, max_recoveries=2),
                     "enqueued")
    (run,) = store.claim_runs(["etl"], worker("w1", "alpha", now), current_owner(), 1, now,
                              30.0)
    store.recover_run(run.id, run.lease_epoch, now + 1, "lease expired")
    out = invoke("runs", "show", "queued-1").stdout
    assert row(out, "Queue")[1] == "etl (priority 5)"
    assert row(out, "Recoveries")[1].startswith("1 of at most 2")
    assert "lease expired" in out  # the recovery is on the run's timeline
