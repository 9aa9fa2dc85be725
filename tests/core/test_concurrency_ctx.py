"""`stead.concurrency(...)` and `rate_limit(...)`: slots of Stead's tag limits held around any
block, across threads, coroutines and processes, on every backend."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import stead
from stead import ConcurrencyTimeout, concurrency, flow
from stead.concurrency import rate_limit
from stead.core.runtime import store_for
from stead.errors import ConfigError, LimitNotFound
from stead.store.base import Limit, Store
from tests.conftest import SCRIPTS, script_env


def held(store: Store) -> int:
    """How many concurrency slots of 'db' are taken now (a probe that gets one returns it)."""
    for free in range(10, 0, -1):
        grant = store.take_slots(["db"], "probe", time.time(), 5.0, occupy=free)
        if grant.granted:
            store.release_slots(grant.ids)
            return store.list_limits()[0].concurrency - free
    return store.list_limits()[0].concurrency


def test_processes_holding_all_slots_take_turns(backend: str, stead_home: Path,
                                                tmp_path: Path) -> None:
    """Two processes each ask for both slots of a limit of 2: never both inside at once."""
    store_for().set_limit(Limit("db", concurrency=2))
    out = tmp_path / "turns.txt"
    procs = [subprocess.Popen([sys.executable, str(SCRIPTS / "concurrency_holder.py"), "db",
                               "2", "0.2", "3", str(out)], env=script_env(stead_home))
             for _ in range(2)]
    assert [p.wait(120) for p in procs] == [0, 0]
    events = [line.split() for line in out.read_text().splitlines()]
    assert len(events) == 12
    inside: str | None = None
    for what, pid in events:  # enter and exit alternate, each exit by the one inside
        if what == "enter":
            assert inside is None, f"{pid} entered while {inside} held the slots: {events}"
            inside = pid
        else:
            assert inside == pid
            inside = None
    assert held(store_for()) == 0  # all given back


@pytest.mark.parametrize("shared", [False, True], ids=["own", "shared"])
def test_threads_share_a_limit_and_slots_are_given_back(shared: bool, stead_home: Path) -> None:
    """Each thread with its own `concurrency(...)`, or all with one object: either way each
    block holds its own slot until it ends."""
    store = store_for()
    store.set_limit(Limit("db", concurrency=2))
    inside, peak, lock = 0, 0, threading.Lock()
    one = concurrency("db")
    problems: list[str] = []

    def work() -> None:
        nonlocal inside, peak
        with one if shared else concurrency("db"):
            with lock:
                inside += 1
                peak = max(peak, inside)
            time.sleep(0.05)
            if held(store) < 1:
                problems.append("a block ran without its slot")
            with lock:
                inside -= 1

    threads = [threading.Thread(target=work) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert 1 <= peak <= 2 and problems == []
    assert held(store) == 0


def test_occupy_is_all_or_nothing_and_a_timeout_names_the_limit(backend: str) -> None:
    store = store_for()
    store.set_limit(Limit("db", concurrency=3))
    with stead.concurrency("db", occupy=2):
        assert held(store) == 2
        with concurrency("db", occupy=1, timeout_seconds=5):  # one is still free
            assert held(store) == 3
        with pytest.raises(ConcurrencyTimeout, match=r"2 slot.*'db' within 0.2 s") as caught, \
                concurrency("db", occupy=2, timeout_seconds=0.2):
            raise AssertionError("entered without free slots")
        assert isinstance(caught.value, TimeoutError)  # what Prefect code catches
        assert held(store) == 2  # the refused request took none
    assert held(store) == 0
    with pytest.raises(ConfigError, match="allows 3 at once, so 4 slots could never"), \
            concurrency("db", occupy=4):
        pass


def test_a_missing_limit_limits_nothing_unless_strict(stead_home: Path,
                                                      capfd: pytest.CaptureFixture[str]) -> None:
    ran = []
    with concurrency("nowhere"):
        ran.append(1)
    assert ran == [1]
    assert "concurrency limit 'nowhere' does not exist" in capfd.readouterr().err
    with pytest.raises(LimitNotFound, match="stead limits set nowhere --concurrency N"), \
            concurrency("nowhere", strict=True):
        ran.append(2)
    assert ran == [1]


def test_inside_a_flow_the_run_holds_the_slots_and_its_log_says_when_a_limit_is_missing(
        backend: str) -> None:
    store = store_for()
    store.set_limit(Limit("db", concurrency=1))

    @flow
    def guarded() -> int:
        with concurrency("db"):
            taken = held(store)
        with concurrency("absent"):
            pass
        return taken

    run_id = "guarded-1"
    assert guarded.with_options(run_id=run_id)() == 1
    logs = " ".join(line.message for line in store.read_logs(run_id))
    assert "concurrency limit 'absent' does not exist" in logs
    assert held(store) == 0


def test_async_blocks_wait_on_the_event_loop(backend: str) -> None:
    from stead.concurrency.asyncio import concurrency as aconcurrency

    store_for().set_limit(Limit("db", concurrency=1))
    inside, peak, ticks = 0, 0, 0

    async def work() -> None:
        nonlocal inside, peak
        async with aconcurrency("db"):
            inside += 1
            peak = max(peak, inside)
            await asyncio.sleep(0.05)
            inside -= 1

    async def ticker() -> None:  # keeps running while the others wait for the slot
        nonlocal ticks
        while inside or ticks < 3:
            ticks += 1
            await asyncio.sleep(0.01)

    async def main() -> None:
        await asyncio.gather(work(), work(), work(), ticker())

    asyncio.run(main())
    assert peak == 1 and ticks >= 3


def test_rate_limit_counts_starts_per_period(backend: str) -> None:
    store_for().set_limit(Limit("api", rate=2, period=60.0))
    rate_limit("api")
    rate_limit("api")
    with pytest.raises(ConcurrencyTimeout, match="'api'"):
        rate_limit("api", timeout_seconds=0.2)
    store_for().set_limit(Limit("conc", concurrency=1))
    with pytest.raises(ConfigError, match="has no rate"):
        rate_limit("conc")


def test_a_killed_holder_frees_its_slots_when_its_lease_lapses(stead_home: Path,
                                                               tmp_path: Path) -> None:
    store_for().set_limit(Limit("db", concurrency=1))
    out = tmp_path / "held.txt"
    proc = subprocess.Popen([sys.executable, str(SCRIPTS / "concurrency_holder.py"), "db", "1",
                             "0", "0", str(out)],
                            env=script_env(stead_home, STEAD_LEASE_SECONDS="2"))
    try:
        deadline = time.monotonic() + 60
        while not (out.exists() and "held" in out.read_text()):
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        with pytest.raises(ConcurrencyTimeout), concurrency("db", timeout_seconds=0.1):
            pass
    finally:
        proc.kill()
        proc.wait(10)
    with concurrency("db", timeout_seconds=60):  # the dead holder's lease (2 s) lapses
        pass


@pytest.mark.parametrize("first", ["from stead import concurrency",
                                   "import stead.concurrency.sync",
                                   "from stead.concurrency.asyncio import concurrency"])
def test_every_import_path_gives_the_same_context_manager(first: str,
                                                          stead_home: Path) -> None:
    code = (f"{first}\nimport stead, stead.concurrency.sync as s, stead.concurrency.asyncio as a"
            "\nfrom stead import concurrency as top\n"
            "from stead.concurrency.sync import concurrency as sync_cm\n"
            "for f in (top, stead.concurrency, sync_cm, a.concurrency):\n"
            "    with f('x'): pass\n"
            "import asyncio\n"
            "async def main():\n"
            "    async with stead.concurrency('x'): pass\n"
            "    await a.rate_limit([])\n"
            "asyncio.run(main())\nprint('ok')")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, env=script_env(stead_home))
    assert done.stdout.strip() == "ok", done.stderr
