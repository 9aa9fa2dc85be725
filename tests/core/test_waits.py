"""Durable waits in flows called directly (they wait in their process): sleeps that resume at
the remaining time, messages received exactly once and in order, human input checked against
its form, published status, requests with replies. Every test runs on SQLite, PostgreSQL and
in remote mode (the `backend` fixture)."""

from __future__ import annotations

import datetime as dt
import threading
import time
from dataclasses import dataclass
from typing import Any

import pytest
from pydantic import BaseModel

import stead
from stead import flow, task
from stead.core.clock import FakeClock
from stead.core.runtime import store_for
from stead.errors import (
    InvalidInput,
    RequestRejected,
    RunNotFound,
    WaitError,
    WaitTimeout,
)


class Approval(BaseModel):
    approved: bool
    approver: str
    note: str = ""


@dataclass
class Payment:
    ref: str
    amount: float = 0.0


class Crash(KeyboardInterrupt):
    """Stands in for a killed process: the run is left unfinished."""


class CrashingClock(FakeClock):
    """A fake clock whose next sleep of at least `at` seconds interrupts the run."""

    def __init__(self, at: float) -> None:
        super().__init__()
        self.at = at

    def sleep(self, seconds: float) -> None:
        if seconds >= self.at:
            self.at = float("inf")
            raise Crash
        super().sleep(seconds)


def later(seconds: float, fn: Any, *args: Any, **kwargs: Any) -> threading.Thread:
    """Call fn(*args) from another thread after `seconds` (as another process would)."""
    def go() -> None:
        time.sleep(seconds)
        fn(*args, **kwargs)

    thread = threading.Thread(target=go, daemon=True)
    thread.start()
    return thread


def wait_for_step(run_id: str, kind: str, timeout: float = 20) -> None:
    """Until the run has recorded a step of `kind` (its wait has begun)."""
    store = store_for()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if any(s.kind == kind for s in store.load_steps(run_id).values()):
                return
        except RunNotFound:
            pass
        time.sleep(0.01)
    raise AssertionError(f"run {run_id} never began a {kind} step")


# -- timers ----------------------------------------------------------------------------------
def test_a_sleep_is_a_step_and_a_resume_waits_only_what_remains() -> None:
    effects: list[str] = []

    @task
    def before() -> None:
        effects.append("before")

    @flow
    def nap() -> str:
        before()
        stead.sleep(dt.timedelta(days=3))
        return "woke"

    clock = CrashingClock(at=1.0)
    with pytest.raises(Crash):
        nap.with_options(run_id="nap", clock=clock)()
    step = next(s for s in store_for().load_steps("nap").values() if s.kind == "sleep")
    assert step.state == "Running" and '"until"' in (step.params or "")
    resumed = FakeClock(start=clock.now() + dt.timedelta(days=1).total_seconds())
    assert nap.with_options(run_id="nap", clock=resumed)() == "woke"
    assert resumed.sleeps == [pytest.approx(dt.timedelta(days=2).total_seconds())]
    assert effects == ["before"]  # the step before the sleep ran once
    steps = store_for().load_steps("nap")
    assert [s.state for s in steps.values()] == ["Completed", "Completed"]
    assert store_for().get_wait("nap") is None


def test_sleep_until_a_time_and_bad_durations() -> None:
    clock = FakeClock(start=1_000_000.0)

    @flow
    def until_then() -> None:
        stead.sleep(until=dt.datetime.fromtimestamp(1_000_060.0, dt.UTC))

    until_then.with_options(clock=clock)()
    assert clock.sleeps == [60.0]

    @flow
    def negative() -> None:
        stead.sleep(-1)

    with pytest.raises(WaitError, match="cannot be negative"):
        negative()

    @flow
    def naive() -> None:
        stead.sleep(until=dt.datetime(2030, 1, 1))

    with pytest.raises(WaitError, match="timezone-aware"):
        naive()
    with pytest.raises(WaitError, match="not both"):
        stead.sleep(1, until=dt.datetime.now(dt.UTC))


# -- messages --------------------------------------------------------------------------------
def test_a_message_sent_before_receive_waits_for_it_and_one_sent_after_wakes_it() -> None:
    gate = threading.Event()

    @flow
    def listen() -> list[Any]:
        gate.wait(30)
        first = stead.receive("payment")
        second = stead.receive("payment", timeout=30)
        assert first is not None and second is not None
        return [first.payload, second.payload]

    store = store_for()
    # Start the run in a thread; send one message before it reaches its second receive and
    # one while it waits there.
    result: list[Any] = []
    thread = threading.Thread(target=lambda: result.append(
        listen.with_options(run_id="listen")()), daemon=True)
    thread.start()
    wait_for_step_or_run("listen")
    stead.send("listen", "payment", {"ref": "a"})  # before the run reaches receive
    gate.set()
    wait_for_step("listen", "receive")
    time.sleep(0.2)
    stead.send("listen", "payment", {"ref": "b"})
    thread.join(30)
    assert result == [[{"ref": "a"}, {"ref": "b"}]]
    msgs = store.list_messages("listen")
    assert [m.state for m in msgs] == ["consumed", "consumed"]


def wait_for_step_or_run(run_id: str, timeout: float = 20) -> None:
    store = store_for()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            store.get_run(run_id)
            return
        except RunNotFound:
            time.sleep(0.01)
    raise AssertionError(f"run {run_id} never started")


def test_100_sends_with_20_duplicate_keys_deliver_80_in_order() -> None:
    gate = threading.Event()

    @flow
    def drain() -> list[int]:
        gate.wait(30)
        got = []
        while (msg := stead.receive("n", timeout=0)) is not None:
            got.append(msg.payload)
        return got

    out: list[list[int]] = []
    thread = threading.Thread(target=lambda: out.append(drain.with_options(run_id="d")()),
                              daemon=True)
    thread.start()
    wait_for_step_or_run("d")
    ids = set()
    for i in range(100):
        key = f"k{i - 80}" if i >= 80 else f"k{i}"  # the last 20 repeat earlier keys
        ids.add(stead.send("d", "n", i, idempotency_key=key))
    assert len(ids) == 80
    gate.set()
    thread.join(60)
    assert out == [list(range(80))]


def test_a_run_interrupted_after_receiving_gets_the_same_message_on_resume() -> None:
    seen: list[Any] = []

    @task
    def handle(payload: Any) -> None:
        seen.append(payload)
        if len(seen) == 1:
            raise Crash  # killed right after the message was consumed

    gate = threading.Event()

    @flow
    def once() -> Any:
        gate.wait(30)
        msg = stead.receive("job", timeout=10)
        assert msg is not None
        handle(msg.payload)
        return msg.payload

    errors: list[BaseException] = []

    def first() -> None:
        try:
            once.with_options(run_id="once")()
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=first, daemon=True)
    thread.start()
    wait_for_step_or_run("once")
    stead.send("once", "job", {"n": 1})
    gate.set()
    thread.join(30)
    assert errors and isinstance(errors[0], Crash)
    stead.send("once", "job", {"n": 2})  # a second message: the resumed run must not take it
    assert once.with_options(run_id="once")() == {"n": 1}
    states = {m.payload: m.state for m in store_for().list_messages("once")}
    assert states == {'{"n": 1}': "consumed", '{"n": 2}': "pending"}
    assert seen == [{"n": 1}, {"n": 1}]


def test_timeouts_return_none_or_raise_durably() -> None:
    clock = FakeClock()

    @flow
    def quiet() -> Any:
        return stead.receive("nothing", timeout=dt.timedelta(seconds=2))

    assert quiet.with_options(clock=clock)() is None
    assert sum(clock.sleeps) == pytest.approx(2.0)

    @flow
    def strict() -> Any:
        return stead.receive("nothing", timeout=0.01, raise_on_timeout=True)

    with pytest.raises(WaitTimeout, match="nothing"):
        strict.with_options(clock=FakeClock())()


def test_typed_decoding_and_a_payload_that_does_not_decode_stays_stored() -> None:
    gate = threading.Event()

    @flow
    def typed_payment() -> Payment:
        gate.wait(30)
        msg = stead.receive("pay", timeout=10, type=Payment)
        assert msg is not None
        return msg.payload

    out: list[Any] = []
    thread = threading.Thread(target=lambda: out.append(
        _catch(typed_payment.with_options(run_id="typed"))), daemon=True)
    thread.start()
    wait_for_step_or_run("typed")
    stead.send("typed", "pay", {"amount": "lots"})
    gate.set()
    thread.join(30)
    assert isinstance(out[0], WaitError)
    assert "ref" in str(out[0]) and "typed" in str(out[0])
    [msg] = store_for().list_messages("typed")
    assert msg.state == "pending"  # nothing lost


def _catch(fn: Any) -> Any:
    try:
        return fn()
    except Exception as exc:
        return exc


def test_bad_sends_name_the_run_and_lose_nothing() -> None:
    with pytest.raises(RunNotFound):
        stead.send("no-such-run", "t", 1)

    @flow
    def done() -> int:
        return 1

    done.with_options(run_id="done")()
    with pytest.raises(WaitError, match="done"):
        stead.send("done", "t", 1)
    with pytest.raises(WaitError, match="JSON"):
        stead.send("done", "t", object())
    with pytest.raises(WaitError, match="topic"):
        stead.send("done", "", 1)
    with pytest.raises(WaitError, match="inside a flow"):
        stead.receive("t")


# -- human input -----------------------------------------------------------------------------
def test_input_is_checked_against_the_form_and_resumes_with_a_model() -> None:
    @flow
    def refund(amount: float) -> Any:
        answer = stead.wait_for_input(Approval, timeout=30,
                                      description=f"refund {amount}?")
        return answer

    out: list[Any] = []
    thread = threading.Thread(target=lambda: out.append(
        refund.with_options(run_id="refund")(20.0)), daemon=True)
    thread.start()
    wait_for_step("refund", "input")
    deadline = time.monotonic() + 20  # the wait is recorded just after its step
    while (wait := store_for().get_wait("refund")) is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert wait is not None and wait.kind == "input" and "refund 20.0?" in wait.detail
    with pytest.raises(InvalidInput) as bad:
        stead.send_input("refund", {"approved": "perhaps", "approver": "ana"})
    assert bad.value.field == "approved"
    assert store_for().list_messages("refund") == []  # refused at the door
    stead.send_input("refund", Approval(approved=True, approver="ana"))
    thread.join(30)
    assert out == [Approval(approved=True, approver="ana")]
    with pytest.raises(WaitError, match="Completed"):
        stead.send_input("refund", {"approved": True, "approver": "bo"})  # it has finished


def test_input_timeout_returns_none() -> None:
    @flow
    def unanswered() -> Any:
        return stead.wait_for_input(Approval, timeout=1)

    assert unanswered.with_options(clock=FakeClock())() is None


# -- status ----------------------------------------------------------------------------------
def test_status_is_read_while_running_after_completion_and_with_wait() -> None:
    gate = threading.Event()

    @flow
    def staged() -> None:
        stead.set_status("stage", "checking")
        gate.wait(30)
        stead.set_status("stage", {"name": "approved", "by": "ana"})
        stead.set_status("done", True)

    thread = threading.Thread(target=staged.with_options(run_id="staged"), daemon=True)
    thread.start()
    assert stead.get_status(wait_for_run("staged"), "stage", wait=20) == "checking"
    assert stead.get_status("staged", "done") is None
    later(0.2, gate.set)
    assert stead.get_status("staged", "done", wait=20) is True
    thread.join(30)
    assert stead.get_status("staged") == {"stage": {"name": "approved", "by": "ana"},
                                          "done": True}
    with pytest.raises(WaitTimeout, match="never"):
        stead.get_status("staged", "never", wait=0.05)


def wait_for_run(run_id: str) -> str:
    wait_for_step_or_run(run_id)
    return run_id


def test_status_is_replayed_not_published_again_on_resume() -> None:
    @flow
    def publish() -> None:
        stead.set_status("stage", "one")
        stead.sleep(5)
        stead.set_status("stage", "two")

    with pytest.raises(Crash):
        publish.with_options(run_id="pub", clock=CrashingClock(at=1.0))()
    assert stead.get_status("pub", "stage") == "one"
    publish.with_options(run_id="pub", clock=FakeClock(start=2e9))()
    assert stead.get_status("pub", "stage") == "two"


# -- requests --------------------------------------------------------------------------------
def test_requests_get_replies_rejections_and_timeouts() -> None:
    def positive(payload: Any) -> bool:
        if payload["percent"] <= 0:
            raise ValueError("percent must be positive")
        return True

    @flow
    def shop() -> list[Any]:
        handled = []
        for _ in range(2):
            msg = stead.receive("discount", timeout=20, validate=positive)
            assert msg is not None
            msg.reply({"accepted": msg.payload["percent"] <= 20})
            handled.append(msg.payload["percent"])
        return handled

    out: list[Any] = []
    thread = threading.Thread(target=lambda: out.append(shop.with_options(run_id="shop")()),
                              daemon=True)
    thread.start()
    wait_for_step_or_run("shop")
    assert stead.request("shop", "discount", {"percent": 10}, timeout=20) == {"accepted": True}
    with pytest.raises(RequestRejected, match="percent must be positive"):
        stead.request("shop", "discount", {"percent": -5}, timeout=20)
    assert stead.request("shop", "discount", {"percent": 50}, timeout=20) == {
        "accepted": False}
    thread.join(30)
    assert out == [[10, 50]]
    with pytest.raises(WaitError):
        stead.request("shop", "discount", {"percent": 1}, timeout=1)  # finished run


def test_a_request_nobody_answers_times_out_and_stays_stored() -> None:
    gate = threading.Event()

    @flow
    def deaf() -> None:
        gate.wait(30)

    thread = threading.Thread(target=deaf.with_options(run_id="deaf"), daemon=True)
    thread.start()
    wait_for_step_or_run("deaf")
    with pytest.raises(WaitTimeout, match="did not reply"):
        stead.request("deaf", "q", {"x": 1}, timeout=0.1)
    gate.set()
    thread.join(30)
    [msg] = store_for().list_messages("deaf")
    assert msg.state == "pending" and msg.expects_reply


# -- retry delays ----------------------------------------------------------------------------
def test_a_retry_delay_survives_a_crash_and_a_resume_waits_what_remains() -> None:
    calls: list[float] = []

    @task(retries=1, retry_delay=20)
    def flaky() -> str:
        calls.append(0)
        if len(calls) == 1:
            raise ValueError("first attempt fails")
        return "ok"

    @flow
    def retried() -> str:
        return flaky()

    clock = CrashingClock(at=20.0)
    with pytest.raises(Crash):  # killed during the 20-second delay
        retried.with_options(run_id="retried", clock=clock)()
    resumed = FakeClock(start=clock.now() + 15)
    assert retried.with_options(run_id="retried", clock=resumed)() == "ok"
    assert resumed.sleeps == [pytest.approx(5.0)]  # not at once, and not 20 s again
    assert len(calls) == 2


def test_waits_work_in_async_flows() -> None:
    import asyncio

    clock = FakeClock()

    @flow
    async def later_on() -> Any:
        stead.sleep(30)  # a durable wait (it blocks this flow's event loop while it waits)
        return stead.receive("none", timeout=1)

    assert asyncio.run(later_on.with_options(clock=clock)()) is None
    assert clock.sleeps[0] == 30.0
