"""on_crashed hooks of runs whose process was killed with SIGKILL: run exactly once, by the
process that records the crash (a resume, a worker that saw its child die, a reaper)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import hook_flows
import pytest

from stead.store.base import RunRecord, Store, WorkerRecord
from stead.worker.recovery import reap
from tests.conftest import SCRIPTS, script_env
from tests.worker.conftest import Workers, wait_until


def hook_lines(out: Path) -> list[tuple[str, str]]:
    """(kind, run id) of each hook call the flow's hooks wrote."""
    path = Path(str(out) + ".hooks")
    if not path.exists():
        return []
    return [(kind, rid) for kind, rid, _ in
            (line.split() for line in path.read_text().splitlines() if line.strip())]


def kinds(out: Path) -> list[str]:
    return [kind for kind, _ in hook_lines(out)]


def hook_log_lines(db: Store, run_id: str, text: str) -> list[str]:
    return [log.message for log in db.read_logs(run_id) if text in log.message]


def test_a_killed_direct_run_runs_on_crashed_once_when_stead_runs_resume_records_it(
        db: Store, db_url: str, stead_home: Path, tmp_path: Path) -> None:
    out, marker = tmp_path / "effects.txt", tmp_path / "marker"
    env = script_env(stead_home, STEAD_DATABASE_URL=db_url)
    proc = subprocess.Popen([sys.executable, str(SCRIPTS / "hook_flows.py"), "direct-1",
                             str(out), str(marker)], env=env, stderr=subprocess.PIPE)
    wait_until(marker.exists, 60, "the flow to reach its sleep")
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    assert kinds(out) == ["running"]  # nothing ran at the kill: SIGKILL leaves no chance
    assert db.get_run("direct-1").state == "Running"  # a dead owner: Crashed? in the CLI

    resume = subprocess.run([sys.executable, "-m", "stead.cli.main", "runs", "resume",
                             "direct-1"], env=env, capture_output=True, text=True, timeout=120)
    assert resume.returncode == 0, resume.stderr
    # The resume recorded the crash, ran on_crashed, then the run went on and completed.
    assert hook_lines(out) == [("running", "direct-1"), ("crashed", "direct-1"),
                               ("running", "direct-1"), ("completed", "direct-1")]
    assert [c.state for c in db.run_history("direct-1")] == [
        "Running", "Crashed", "Running", "Completed"]
    assert len(hook_log_lines(db, "direct-1", "on_crashed hooks ran")) == 1

    again = subprocess.run([sys.executable, "-m", "stead.cli.main", "runs", "resume",
                            "direct-1"], env=env, capture_output=True, text=True, timeout=120)
    assert kinds(out).count("crashed") == 1, again.stderr  # a finished run runs no hook


def test_a_worker_whose_child_is_killed_runs_on_crashed_once(
        workers: Workers, db: Store, tmp_path: Path) -> None:
    out, marker = tmp_path / "effects.txt", tmp_path / "marker"
    rid = hook_flows.hooked.enqueue(str(out), str(marker), queue="hooks")
    workers.start("-q", "hooks", "-c", "1")
    wait_until(marker.exists, 60, "the run to reach its sleep")
    child_pid = int(out.read_text().split()[0])  # the task wrote the pid of its process
    os.kill(child_pid, signal.SIGKILL)
    try:
        wait_until(lambda: db.get_run(rid).state == "Completed", 60, "the run to finish")
    except AssertionError:
        print(workers.log(workers.procs[0]), [(c.state, c.message) for c in db.run_history(rid)])
        raise
    wait_until(lambda: "crashed" in kinds(out), 60, "the on_crashed hook")
    lines = hook_lines(out)
    assert [k for k in kinds(out) if k != "running"] == ["crashed", "completed"] or \
        [k for k in kinds(out) if k != "running"] == ["completed", "crashed"], lines
    assert all(r == rid for _, r in lines)
    # on_running once per execution: the killed one and the resumed one.
    assert kinds(out).count("running") == 2
    # The hook ran in a process of its own, neither the killed child nor the worker.
    pids = {int(line.split()[2]) for line in Path(str(out) + ".hooks").read_text().splitlines()
            if line.startswith("crashed")}
    assert child_pid not in pids and workers.procs[0].pid not in pids
    wait_until(lambda: hook_log_lines(db, rid, "on_crashed hooks ran"), 30, "the hook's record")


@pytest.mark.parametrize("backend", ["sqlite", "postgres"], indirect=True)
def test_a_lost_worker_group_is_reaped_by_two_reapers_and_on_crashed_runs_once(
        workers: Workers, db: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # This test's process is the reaper: the hooks' process imports the flow from here.
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(SCRIPTS), *sys.path]))
    out, marker = tmp_path / "effects.txt", tmp_path / "marker"
    rid = hook_flows.hooked.enqueue(str(out), str(marker), queue="hooks")
    victim = workers.start("-q", "hooks", "-c", "1", "--lease", "1")
    wait_until(marker.exists, 60, "the run to reach its sleep")
    workers.kill(victim)  # the worker, its forkserver and its child: a lost host
    victim.wait(10)
    wait_until(lambda: db.expired_runs(), 60, "the lease to lapse")

    recovered: list[int] = []
    reapers = [threading.Thread(target=lambda: recovered.append(reap(db, time.time())))
               for _ in range(2)]
    for t in reapers:
        t.start()
    for t in reapers:
        t.join(60)
    assert sorted(recovered) == [0, 1]  # one reaper recorded the crash, the other nothing
    wait_until(lambda: hook_log_lines(db, rid, "on_crashed hooks ran"), 60, "the hooks")
    assert kinds(out).count("crashed") == 1
    assert db.get_run(rid).state == "Pending"  # requeued for a worker to resume


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_a_flow_whose_code_cannot_be_loaded_is_recovered_and_the_log_says_so(
        db: Store) -> None:
    now = time.time()
    db.create_run(RunRecord(id="lost-code", flow_name="gone", state="Pending",
                            entrypoint="no_such_module_here:gone", queue="q", created_at=now))
    worker = WorkerRecord("w1", "w1", "host", 1, '["q"]', 1, "running", now, now)
    db.register_worker(worker)
    [claimed] = db.claim_runs(["q"], worker, "host|1|1", 1, now, lease_s=0.05)
    wait_until(lambda: db.expired_runs(), 30, "the lease to lapse")
    assert reap(db, time.time()) == 1
    assert db.get_run(claimed.id).state == "Pending"  # the recovery went through
    [line] = wait_until(lambda: hook_log_lines(db, "lost-code", "on_crashed hooks not run"),
                        60, "the log line about the hooks")
    assert "no_such_module_here" in line


def test_cancelling_a_running_worker_run_runs_on_cancellation_once(
        workers: Workers, db: Store, tmp_path: Path) -> None:
    out, marker = tmp_path / "effects.txt", tmp_path / "marker"
    rid = hook_flows.hooked.enqueue(str(out), str(marker), queue="hooks")
    workers.start("-q", "hooks", "-c", "1")
    wait_until(marker.exists, 60, "the run to reach its sleep")
    assert db.cancel_run(rid, time.time(), "not needed") == "Cancelling"
    wait_until(lambda: db.get_run(rid).state == "Cancelled", 60, "the run to be Cancelled")
    # The hook ran in the run's own process before it stopped.
    assert kinds(out) == ["running", "cancelling"]
    child_pid = int(out.read_text().split()[0])
    assert hook_lines(out)[1] == ("cancelling", rid)
    assert Path(str(out) + ".hooks").read_text().splitlines()[1].endswith(str(child_pid))


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_stead_runs_resume_of_a_dead_workers_run_records_the_crash_and_runs_on_crashed_once(
        workers: Workers, db: Store, db_url: str, stead_home: Path, tmp_path: Path) -> None:
    out, marker = tmp_path / "effects.txt", tmp_path / "marker"
    rid = hook_flows.hooked.enqueue(str(out), str(marker), queue="hooks")
    victim = workers.start("-q", "hooks", "-c", "1", "--lease", "600")
    wait_until(marker.exists, 60, "the run to reach its sleep")
    workers.kill(victim)
    victim.wait(10)
    env = script_env(stead_home, STEAD_DATABASE_URL=db_url)
    resume = subprocess.run([sys.executable, "-m", "stead.cli.main", "runs", "resume", rid],
                            env=env, capture_output=True, text=True, timeout=120)
    assert resume.returncode == 0, resume.stderr
    assert [c.state for c in db.run_history(rid)][-2:] == ["Crashed", "Pending"]
    wait_until(lambda: hook_log_lines(db, rid, "on_crashed hooks ran"), 60, "the hooks")
    assert kinds(out) == ["running", "crashed"]
