"""Recorded failures on resume: a failure the flow caught and went past is raised again (the
flow takes the same path, its compensation stands); the failure that ended a run or an
attempt runs again, with a fresh retry budget."""

from __future__ import annotations

import collections
import json

import pytest

from stead import flow, task
from stead.errors import StepFailed

calls: collections.Counter[str] = collections.Counter()
world = {"seats": False, "crash": True, "b_ok": False}


class NoSeats(Exception):
    pass


class CodedError(Exception):
    """Takes a code and a message: it cannot be rebuilt from its recorded message alone."""

    def __init__(self, code: int, text: str) -> None:
        super().__init__(f"[{code}] {text}")


@pytest.fixture(autouse=True)
def _fresh_world() -> None:
    calls.clear()
    world.update(seats=False, crash=True, b_ok=False)


def crash_point() -> None:
    """A crash the first time (KeyboardInterrupt leaves the run Crashed, as a kill would)."""
    if world["crash"]:
        world["crash"] = False
        raise KeyboardInterrupt


@task
def book_hotel() -> str:
    calls["hotel"] += 1
    return "H1"


@task
def book_flight() -> str:
    calls["flight"] += 1
    if not world["seats"]:
        raise NoSeats("flight full")
    return "F1"


@task
def cancel_hotel(booking: str) -> str:
    calls["cancel"] += 1
    return f"cancelled {booking}"


@flow
def trip() -> str:
    hotel = book_hotel()
    try:
        booked = book_flight()
    except NoSeats as exc:
        calls[f"caught {type(exc).__name__}"] += 1
        cancelled = cancel_hotel(hotel)
        crash_point()
        return cancelled
    return f"booked {hotel} {booked}"


def test_a_caught_failure_is_raised_again_on_resume_and_the_compensation_stands(store) -> None:
    with pytest.raises(KeyboardInterrupt):
        trip.with_options(run_id="trip-1")()
    world["seats"] = True  # had the flight step run again, it would now succeed
    assert trip.resume("trip-1") == "cancelled H1"
    assert calls == {"hotel": 1, "flight": 1, "cancel": 1, "caught NoSeats": 2}
    run = store.get_run("trip-1")
    assert run.state == "Completed"
    assert store.load_steps("trip-1")["2"].state == "Failed"  # the record is unchanged


@task
def coded_failure() -> None:
    calls["coded"] += 1
    raise CodedError(7, "declined")


seen: list[BaseException] = []


@flow
def payment() -> str:
    try:
        coded_failure()
    except Exception as exc:
        seen.append(exc)
        crash_point()
        return f"{type(exc).__name__}: {exc}"
    return "paid"


def test_a_failure_whose_type_cannot_be_rebuilt_comes_back_as_step_failed(store) -> None:
    seen.clear()
    with pytest.raises(KeyboardInterrupt):
        payment.with_options(run_id="pay-1")()
    assert payment.resume("pay-1") == f"StepFailed: {__name__}.CodedError: [7] declined"
    assert calls["coded"] == 1
    original, replayed = seen
    assert isinstance(original, CodedError)
    assert isinstance(replayed, StepFailed)
    assert replayed.type_name == f"{__name__}.CodedError"
    assert replayed.original_message == "[7] declined"
    assert "CodedError: [7] declined" in replayed.traceback
    assert any("raised again" in note for note in replayed.__notes__)


@task
def lookup() -> str:
    calls["lookup"] += 1
    raise LookupError("not cached")


@task(retries=1)
def load() -> str:
    calls["load"] += 1
    if not world["b_ok"]:
        raise RuntimeError("database down")
    return "loaded"


@flow
def pipeline() -> str:
    try:
        source = lookup()
    except LookupError:
        source = "fallback"
    return f"{source} {load()}"


def test_resuming_a_failed_run_reruns_only_the_failure_that_ended_it(store) -> None:
    with pytest.raises(RuntimeError, match="database down"):
        pipeline.with_options(run_id="pipe-1")()
    assert calls == {"lookup": 1, "load": 2}  # load used its retry
    error = json.loads(store.get_run("pipe-1").error)
    assert error["rerun"] == ["2"]
    world["b_ok"] = False
    with pytest.raises(RuntimeError):  # a fresh retry budget: two more attempts
        pipeline.resume("pipe-1")
    assert calls == {"lookup": 1, "load": 4}
    world["b_ok"] = True
    assert pipeline.resume("pipe-1") == "fallback loaded"
    assert calls == {"lookup": 1, "load": 5}  # the handled failure never ran again


@flow(retries=1)
def retried_pipeline() -> str:
    try:
        source = lookup()
    except LookupError:
        source = "fallback"
    result = load.with_options(retries=0)()
    return f"{source} {result}"


def test_a_flow_retry_reruns_the_failure_that_ended_the_attempt_only(store) -> None:
    world["b_ok"] = False
    with pytest.raises(RuntimeError):
        retried_pipeline.with_options(run_id="retry-1")()
    assert calls == {"lookup": 1, "load": 2}  # one load per flow attempt; lookup replayed


@task
def inner() -> str:
    calls["inner"] += 1
    raise ValueError("inner broke")


@task
def outer() -> str:
    try:
        inner()
    except ValueError:
        calls["outer handled"] += 1
    crash_point()
    return "outer done"


@flow
def nested() -> str:
    return outer()


def test_an_inner_failure_caught_by_its_task_is_raised_again_when_that_task_resumes(
        store) -> None:
    with pytest.raises(KeyboardInterrupt):
        nested.with_options(run_id="nest-1")()
    assert nested.resume("nest-1") == "outer done"
    assert calls == {"inner": 1, "outer handled": 2}


@task
def flaky_inner() -> str:
    calls["flaky"] += 1
    if calls["flaky"] == 1:
        raise ValueError("first call fails")
    return "fine"


@task(retries=1)
def retrying_outer() -> str:
    return flaky_inner()


@flow
def nested_retry() -> str:
    return retrying_outer()


def test_an_inner_failure_that_failed_its_task_runs_again_in_the_task_retry(store) -> None:
    assert nested_retry() == "fine"
    assert calls["flaky"] == 2


@task
def submitted() -> int:
    calls["submitted"] += 1
    raise NoSeats("none left")


@flow
def fan() -> str:
    future = submitted.submit()
    try:
        future.result()
    except NoSeats:
        crash_point()
        return "handled"
    return "used"


def test_a_submitted_failure_the_flow_handled_is_raised_again_on_resume(store) -> None:
    with pytest.raises(KeyboardInterrupt):
        fan.with_options(run_id="fan-1")()
    world["seats"] = True
    assert fan.resume("fan-1") == "handled"
    assert calls["submitted"] == 1


def test_a_child_flow_failure_the_parent_handled_is_not_rerun(store) -> None:
    @flow
    def child() -> str:
        return book_flight()

    @flow
    def parent() -> str:
        try:
            return child()
        except NoSeats:
            crash_point()
            return "no flight"

    with pytest.raises(KeyboardInterrupt):
        parent.with_options(run_id="parent-1")()
    world["seats"] = True
    assert parent.resume("parent-1") == "no flight"
    assert calls["flight"] == 1
    assert store.get_run("parent-1:1").state == "Failed"
