"""The fault matrix's machinery: processes to start and kill (direct flows, CLI commands,
servers), body executions counted from the flows' O_APPEND files, and the figures each
scenario records (runs lost, finished steps run twice, runs stuck, slots leaked, recoveries,
time to recover). Workers come from tests/worker/conftest.py, clusters from tests/postgres.py.
"""

from __future__ import annotations

import glob
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

from stead.errors import RunNotFound
from stead.store.base import Store
from tests.conftest import SCRIPTS, script_env
from tests.server.conftest import free_port

FLOWS = SCRIPTS / "fault_flows.py"
FINAL_STATES = frozenset({"Completed", "Cached", "Failed", "Cancelled"})
FAKETIME_LIB = next(iter(glob.glob("/usr/lib/*/faketime/libfaketime.so.1")),
                    "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1")


# -- waiting ---------------------------------------------------------------------------------
def wait_for(check: Callable[[], Any], timeout: float, poll: float = 0.05) -> bool:
    """Poll `check` until it is true (True) or `timeout` seconds pass (False)."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(poll)
    return True


def settle(db: Store, run_ids: Iterable[str], timeout: float) -> float:
    """Wait until every run is in a final state, at most `timeout` s; the seconds waited.
    Whatever is not final then counts as stuck in the figures (see `tally`)."""
    ids = list(run_ids)
    started = time.monotonic()
    wait_for(lambda: all(state_of(db, rid) in FINAL_STATES for rid in ids), timeout, 0.1)
    return time.monotonic() - started


def state_of(db: Store, run_id: str) -> str | None:
    try:
        return db.get_run(run_id).state
    except RunNotFound:
        return None


# -- body executions -------------------------------------------------------------------------
def executions(out: Path) -> list[tuple[str, str, int]]:
    """(run id, step key, pid) of every task body that started, from fault_flows' file."""
    if not out.exists():
        return []
    rows = []
    for line in out.read_text().splitlines():
        run_id, key, pid = line.split()
        rows.append((run_id, key, int(pid)))
    return rows


def executed(out: Path, run_id: str) -> int:
    return sum(1 for rid, _, _ in executions(out) if rid == run_id)


def finished_steps(db: Store, run_id: str) -> set[str]:
    """Keys of the run's steps recorded as finished (Completed, Cached or Failed)."""
    return {key for key, s in db.load_steps(run_id).items()
            if s.state in ("Completed", "Cached", "Failed")}


# -- processes -------------------------------------------------------------------------------
STARTED: list[subprocess.Popen[bytes]] = []  # killed at the end of each test (conftest)


def kill_leftovers() -> None:
    """SIGKILL the group of every process a scenario started and left running."""
    while STARTED:
        proc = STARTED.pop()
        if proc.poll() is None:
            killpg(proc)
            proc.wait(10)


def start_direct(home: Path, flow: str, run_id: str, params: dict[str, Any], log: Path,
                 **env: str) -> subprocess.Popen[bytes]:
    """A script calling a flow with a fixed run id (no worker), in its own process group."""
    import json

    with open(log, "ab") as out:
        STARTED.append(subprocess.Popen(
            [sys.executable, str(FLOWS), flow, run_id, json.dumps(params)], stdout=out,
            stderr=subprocess.STDOUT, start_new_session=True,
            env=script_env(home, STEAD_CONSOLE="0", **env)))
    return STARTED[-1]


def start_cli(home: Path, *args: str, log: Path, **env: str) -> subprocess.Popen[bytes]:
    """`stead ARGS...` in a fresh interpreter, in its own process group."""
    with open(log, "ab") as out:
        STARTED.append(subprocess.Popen([sys.executable, "-m", "stead.cli.main", *args],
                                        stdout=out, stderr=subprocess.STDOUT,
                                        start_new_session=True, env=script_env(home, **env)))
    return STARTED[-1]


def finish(proc: subprocess.Popen[bytes], timeout: float) -> int | None:
    """Wait for a process; SIGKILL its group if it outlives `timeout`. Its exit code, or None
    when it had to be killed."""
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        killpg(proc)
        proc.wait(10)
        return None


def killpg(proc: subprocess.Popen[bytes], sig: int = signal.SIGKILL) -> None:
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass


@dataclass
class ServerProcess:
    """`stead server start` on a loopback port, restartable on the same port after a kill."""

    home: Path
    database_url: str
    log: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60) -> None:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "stead.cli.main", "server", "start", "--port",
                 str(self.port)], stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                env=script_env(self.home, STEAD_DATABASE_URL=self.database_url,
                               STEAD_CONSOLE="0"))
        STARTED.append(self.proc)
        proc = self.proc

        def healthy() -> bool:
            assert proc.poll() is None, self.log.read_text(errors="replace")[-3000:]
            try:
                return httpx.get(f"{self.url}/health", timeout=1).status_code == 200
            except httpx.TransportError:
                return False

        assert wait_for(healthy, timeout), "the server did not answer /health"

    def kill(self) -> None:
        if self.proc is not None:
            killpg(self.proc)
            self.proc.wait(10)


def faketime_env(offset: str) -> dict[str, str]:
    """The environment that gives a process (and its children) a clock `offset` ahead."""
    assert os.path.exists(FAKETIME_LIB), (
        f"{FAKETIME_LIB} is missing: apt-get install faketime (tools/test.sh does)")
    return {"LD_PRELOAD": FAKETIME_LIB, "FAKETIME": offset, "FAKETIME_DONT_RESET": "1"}


# -- what the database holds -------------------------------------------------------------------
def slot_rows(url: str) -> int:
    """Rows of the slots table (tag-limit slots held or not yet cleaned up)."""
    if url.startswith("sqlite:///"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            return int(conn.execute("SELECT count(*) FROM slots").fetchone()[0])
    import psycopg

    with psycopg.connect(url) as conn:
        return int(conn.execute("SELECT count(*) FROM slots").fetchone()[0])


def interruptions(db: Store, run_id: str) -> int:
    """How often the run went back to its queue after it started: recoveries of a lost
    executor and hand-backs (a drain, a store outage). Each may re-run the step in flight."""
    history = [c.state for c in db.run_history(run_id)]
    return sum(1 for i, state in enumerate(history) if state == "Pending" and
               "Running" in history[:i])


def first_running_after(db: Store, run_id: str, at: float) -> float | None:
    """When the run next moved to Running after `at` (a resume or a new claim)."""
    for change in db.run_history(run_id):
        if change.state == "Running" and change.at > at:
            return change.at
    return None


# -- figures ---------------------------------------------------------------------------------
@dataclass
class Figures:
    """What one scenario measured; `check()` asserts the promise on it."""

    scenario: str
    backend: str
    injected: str
    runs: int = 0  # runs accepted (started or enqueued) by the scenario
    steps: int = 0  # finished steps recorded
    executions: int = 0  # task bodies that started
    reruns: int = 0  # re-executions allowed: the step in flight at each fault
    duplicates: int = 0  # finished steps run again (beyond the in-flight allowance)
    lost: int = 0  # accepted runs the database does not know
    stuck: int = 0  # runs not in a final state when the scenario's wait ended
    not_completed: int = 0  # runs that ended otherwise than Completed
    slots_leaked: int = 0  # slots rows left once the runs finished
    recoveries: int = 0  # lease recoveries recorded on the runs
    handbacks: int = 0  # returns to the queue that were not recoveries (drain, store outage)
    executors: int = 0  # distinct processes that ran a body after the fault
    recover_s: float | None = None  # from the fault to work going on again
    seconds: float = 0.0  # the scenario's wall time
    trials: int = 1
    notes: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)

    def tally(self, db: Store, run_ids: Iterable[str], out: Path,
              allowance: dict[str, int] | None = None,
              finished_before: dict[str, set[str]] | None = None,
              url: str | None = None, expect: str = "Completed") -> None:
        """Add the figures of `run_ids` (executions from `out`). `allowance`: how many
        re-executions each run may have (one per fault that hit a step in flight);
        `finished_before`: steps recorded finished before the fault, which must never run
        again whatever the allowance."""
        allowance = allowance or {}
        finished_before = finished_before or {}
        counts = Counter((rid, key) for rid, key, _ in executions(out))
        for rid in run_ids:
            self.runs += 1
            try:
                run = db.get_run(rid)
            except RunNotFound:
                self.lost += 1
                continue
            if run.state not in FINAL_STATES:
                self.stuck += 1
            elif run.state != expect:
                self.not_completed += 1
                self.notes.append(f"{rid} {run.state}: {(run.error or '')[:160]}")
            self.recoveries += run.recoveries
            self.handbacks += max(0, interruptions(db, rid) - run.recoveries)
            steps = db.load_steps(rid)
            self.steps += sum(1 for s in steps.values() if s.state in ("Completed", "Cached"))
            extra = [key for (r, key), n in counts.items() if r == rid for _ in range(n - 1)]
            self.executions += sum(n for (r, _), n in counts.items() if r == rid)
            forbidden = [k for k in extra if k in finished_before.get(rid, set())]
            others = len(extra) - len(forbidden)
            allowed = min(others, allowance.get(rid, 0))
            self.reruns += allowed
            self.duplicates += len(forbidden) + others - allowed
            if len(forbidden) + others - allowed:
                history = " > ".join(f"{c.state} ({c.message})" for c in db.run_history(rid))
                self.notes.append(f"{rid}: steps run twice {sorted(extra)}; {history[:600]}")
        if url is not None:
            self.slots_leaked = slot_rows(url)

    def check(self) -> None:
        """The promise: nothing lost, nothing finished run twice, nothing stuck, no slot
        leaked, every run Completed."""
        self.seconds = round(time.monotonic() - self.started, 1)
        bad = {name: getattr(self, name) for name in
               ("lost", "duplicates", "stuck", "not_completed", "slots_leaked")
               if getattr(self, name)}
        assert not bad, f"{self.scenario} ({self.backend}): {bad}; {self.notes[:6]}"

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("started")
        if not self.seconds:
            data["seconds"] = round(time.monotonic() - self.started, 1)
        if self.recover_s is not None:
            data["recover_s"] = round(self.recover_s, 2)
        return data
