"""Retries: counts, delays (number, list, backoff) on an injected clock, conditions, flows."""

from __future__ import annotations

import json

import pytest

from stead import FakeClock, exponential_backoff, flow, task
from stead.errors import ConfigError
from stead.store.base import RunFilter


class Flaky:
    """Fails the first `failures` calls with `exc`, then returns the call count."""

    def __init__(self, failures: int, exc: type[Exception] = ValueError) -> None:
        self.failures, self.exc, self.calls = failures, exc, 0

    def __call__(self) -> int:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.exc(f"failure {self.calls}")
        return self.calls


def run_with_clock(body, clock: FakeClock):
    @flow(clock=clock)
    def f():
        return body()

    return f()


def test_retry_with_fixed_delay_succeeds_and_records_attempts(store) -> None:
    flaky = Flaky(2)
    t = task(retries=3, retry_delay=5)(flaky)
    clock = FakeClock()
    assert run_with_clock(t, clock) == 3
    assert clock.sleeps == [5, 5]
    [run] = store.list_runs(RunFilter())
    step = store.load_steps(run.id)["1"]
    assert step.state == "Completed" and step.attempts == 3
    states = [h[0] for h in json.loads(step.history)]
    assert states == ["Running", "Retrying", "Running", "Retrying", "Running", "Completed"]
    assert "failure 1" in json.loads(step.history)[1][2]


def test_delay_list_uses_last_value_for_later_attempts() -> None:
    t = task(retries=4, retry_delay=[1, 10])(Flaky(4))
    clock = FakeClock()
    assert run_with_clock(t, clock) == 5
    assert clock.sleeps == [1, 10, 10, 10]


def test_exponential_backoff_without_jitter_doubles_up_to_the_cap() -> None:
    t = task(retries=5, retry_delay=exponential_backoff(base=1, maximum=8, jitter=0))(Flaky(5))
    clock = FakeClock()
    run_with_clock(t, clock)
    assert clock.sleeps == [1, 2, 4, 8, 8]


def test_backoff_jitter_stays_within_bounds() -> None:
    backoff = exponential_backoff(base=10, factor=1, jitter=0.2)
    delays = [backoff(1) for _ in range(200)]
    assert all(8 <= d <= 12 for d in delays) and len(set(delays)) > 1


def test_exhausted_retries_fail_the_run_saying_which_task_and_how_often(store) -> None:
    t = task(retries=2, name="load")(Flaky(10))
    with pytest.raises(ValueError, match="failure 3") as info:
        run_with_clock(t, FakeClock())
    assert any("task 'load' (step 1) failed after 3 attempt(s)" in n
               for n in info.value.__notes__)
    [run] = store.list_runs(RunFilter())
    assert run.state == "Failed"
    error = json.loads(run.error)
    assert error["type"] == "builtins.ValueError" and error["step"] == "1"
    assert error["attempts"] == 3 and "Traceback" in error["traceback"]


def test_retry_on_exception_types() -> None:
    retried = task(retries=3, retry_on=ConnectionError)(Flaky(1, ConnectionError))
    assert run_with_clock(retried, FakeClock()) == 2
    not_retried = Flaky(1, KeyError)
    with pytest.raises(KeyError):
        run_with_clock(task(retries=3, retry_on=(ConnectionError,))(not_retried), FakeClock())
    assert not_retried.calls == 1


def test_retry_on_predicate() -> None:
    flaky = Flaky(5)
    t = task(retries=10, retry_on=lambda exc: "failure 1" in str(exc) or
             "failure 2" in str(exc))(flaky)
    with pytest.raises(ValueError, match="failure 3"):
        run_with_clock(t, FakeClock())
    assert flaky.calls == 3


def test_flow_level_retries_rerun_the_flow_but_not_finished_tasks(store) -> None:
    calls = {"steady": 0}

    @task
    def steady() -> int:
        calls["steady"] += 1
        return 1

    flaky = task(Flaky(1))
    clock = FakeClock()

    @flow(retries=2, retry_delay=30, clock=clock)
    def f() -> int:
        return steady() + flaky()

    assert f() == 1 + 2
    assert calls["steady"] == 1, "a completed step must not run again on a flow retry"
    assert clock.sleeps == [30]
    [run] = store.list_runs(RunFilter())
    assert run.state == "Completed" and run.attempts == 2
    assert [c.state for c in store.run_history(run.id)] == [
        "Running", "Retrying", "Running", "Completed"]


def test_bad_retry_options_are_rejected_at_decoration() -> None:
    with pytest.raises(ConfigError, match="retries must be a whole number"):
        task(retries=-1)(lambda: None)
    with pytest.raises(ConfigError, match="retry_delay must be >= 0"):
        task(retries=1, retry_delay=-2)(lambda: None)
    with pytest.raises(ConfigError, match="retry_on must be"):
        task(retries=1, retry_on="ValueError")(lambda: None)
