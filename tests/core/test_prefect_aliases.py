"""Prefect's spellings of options, helpers and modules work as their Stead counterparts."""

from __future__ import annotations

import logging

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import stead
from stead import FakeClock, TaskTimeout, exponential_backoff, flow, task
from stead.cache_policies import DEFAULT, INPUTS, NO_CACHE, NONE, TASK_SOURCE
from stead.core.retries import Jittered, RetryPolicy
from stead.errors import ConfigError, SerializationError
from stead.store.base import RunFilter


def always_fails() -> None:
    raise ConnectionError("down")


def sleeps_of(t, clock: FakeClock | None = None) -> list[float]:
    """The delays slept between the attempts of `t` (which always fails) in one flow run."""
    clock = clock or FakeClock()

    @flow(clock=clock)
    def f() -> None:
        t()

    with pytest.raises(ConnectionError):
        f()
    return clock.sleeps


def only_run(store, flow_name: str):
    [run] = [r for r in store.list_runs(RunFilter()) if r.flow_name == flow_name]
    return run


# -- retries ---------------------------------------------------------------------------------

def test_retry_delay_seconds_is_retry_delay(store) -> None:
    assert sleeps_of(task(retries=2, retry_delay_seconds=3)(always_fails)) == [3, 3]
    assert sleeps_of(task(retries=3, retry_delay_seconds=[1, 5])(always_fails)) == [1, 5, 5]


def test_prefects_exponential_backoff_gives_10_20_40_for_three_retries(store) -> None:
    t = task(retries=3, retry_delay_seconds=exponential_backoff(backoff_factor=10))(always_fails)
    assert sleeps_of(t) == [10, 20, 40]
    # the same object under Stead's spelling, and a copy with more retries gets more delays
    assert sleeps_of(task(retries=3, retry_delay=exponential_backoff(backoff_factor=10))(
        always_fails)) == [10, 20, 40]
    assert sleeps_of(t.with_options(retries=5)) == [10, 20, 40, 80, 160]


def test_steads_exponential_backoff_signature_still_works(store) -> None:
    t = task(retries=3, retry_delay=exponential_backoff(2, jitter=0, maximum=5))(always_fails)
    assert sleeps_of(t) == [2, 4, 5]


def test_a_prefect_delay_callable_gets_the_retry_count_and_returns_the_delays(store) -> None:
    seen = []

    def delays(retries: int) -> list[float]:
        seen.append(retries)
        return [7] * retries

    assert sleeps_of(task(retries=2, retry_delay_seconds=delays)(always_fails)) == [7, 7]
    assert seen == [2]


def test_a_flow_takes_retry_delay_seconds_and_timeout_seconds(store) -> None:
    clock = FakeClock()
    attempts = []

    @flow(retries=2, retry_delay_seconds=4, timeout_seconds=30, clock=clock)
    def shaky() -> int:
        attempts.append(1)
        if len(attempts) < 3:
            raise ValueError("not yet")
        return len(attempts)

    assert shaky() == 3 and clock.sleeps == [4, 4]
    assert shaky.timeout == 30


def test_retry_jitter_factor_spreads_each_delay_around_it(store) -> None:
    t = task(retries=30, retry_delay_seconds=10, retry_jitter_factor=0.5)(always_fails)
    delays = sleeps_of(t)
    assert len(delays) == 30 and all(5 <= d <= 15 for d in delays)
    assert len(set(delays)) > 1  # not the same instant for every retry
    # a copy given a new delay keeps the jitter, as a Prefect task's options do
    again = sleeps_of(t.with_options(retry_delay_seconds=100))
    assert all(50 <= d <= 150 for d in again) and len(set(again)) > 1


def test_retry_jitter_factor_must_be_a_number_at_least_zero() -> None:
    with pytest.raises(ConfigError, match="retry_jitter_factor must be a number >= 0"):
        task(retries=1, retry_jitter_factor=-1)(always_fails)


@settings(max_examples=60, deadline=None)
@given(factor=st.floats(0, 1000, allow_nan=False), retries=st.integers(0, 12),
       jitter=st.floats(0, 2, allow_nan=False))
def test_backoff_delays_double_and_jitter_stays_in_its_band(factor: float, retries: int,
                                                            jitter: float) -> None:
    delays = exponential_backoff(backoff_factor=factor)(retries)
    assert delays == [factor * 2 ** n for n in range(retries)]
    policy = RetryPolicy.build(retries, Jittered(exponential_backoff(backoff_factor=factor),
                                                 jitter), None, "task 't'")
    for attempt in range(2, retries + 2):
        base = delays[attempt - 2]
        assert max(0.0, base * (1 - jitter)) - 1e-9 <= policy.delay_before(attempt) \
            <= base * (1 + jitter) + 1e-9


def test_retry_condition_fn_gets_the_task_its_run_and_a_failed_state(store) -> None:
    seen = []

    def retry_handler(task_obj, task_run, state) -> bool:
        assert state.is_failed() and not state.is_completed()
        try:
            state.result()
        except ConnectionError as exc:
            seen.append((task_obj, task_run, str(exc), state.result(raise_on_failure=False)))
            return task_run.run_count < 2  # retry once, then give up
        return False

    @task(retries=5, retry_condition_fn=retry_handler)
    def fetch(url: str) -> None:
        raise ConnectionError("refused")

    @flow
    def pull() -> None:
        fetch("http://x")

    with pytest.raises(ConnectionError):
        pull()
    run = only_run(store, "pull")
    assert len(seen) == 2  # the condition said no after the second attempt, not 5 retries
    (task_obj, first, message, exc), (_, second, _, _) = seen
    assert task_obj is fetch and message == "refused" and isinstance(exc, ConnectionError)
    assert first.flow_run_id == run.id and first.name == "fetch-1" and first.step_key == "1"
    assert first.task_name == "fetch" and first.parameters == {"url": "http://x"}
    assert first.id == f"{run.id}/1" and (first.run_count, second.run_count) == (1, 2)
    assert store.get_step(run.id, "1").attempts == 2


def test_retry_condition_fn_false_for_an_error_type_fails_at_once(store) -> None:
    calls = []

    @task(retries=3, retry_condition_fn=lambda t, r, s: not isinstance(
        s.result(raise_on_failure=False), KeyError))
    def lookup(kind: str) -> None:
        calls.append(kind)
        raise KeyError(kind) if kind == "key" else ConnectionError(kind)

    @flow
    def f(kind: str) -> None:
        lookup(kind)

    with pytest.raises(KeyError):
        f("key")
    with pytest.raises(ConnectionError):
        f("net")
    assert calls == ["key"] + ["net"] * 4


def test_timeout_seconds_is_timeout(store) -> None:
    import time

    @task(timeout_seconds=0.2)
    def slow() -> None:
        time.sleep(5)

    @flow
    def f() -> None:
        slow()

    with pytest.raises(TaskTimeout):
        f()


# -- both spellings, unknown options ------------------------------------------------------------

@pytest.mark.parametrize(("stead_name", "prefect_name", "value"), [
    ("retry_delay", "retry_delay_seconds", 1), ("timeout", "timeout_seconds", 1),
    ("retry_on", "retry_condition_fn", lambda t, r, s: True),
    ("serializer", "result_serializer", "pickle"),
    ("cache_policy", "cache_key_fn", lambda c, p: "k"),
])
def test_both_spellings_of_one_task_option_is_an_error_naming_both(
        stead_name: str, prefect_name: str, value) -> None:
    stead_value = {"retry_on": ValueError, "cache_policy": INPUTS, "serializer": "pickle"}.get(
        stead_name, 2)
    with pytest.raises(ConfigError, match=f"both {stead_name}= and {prefect_name}="):
        task(**{stead_name: stead_value, prefect_name: value})(always_fails)
    with pytest.raises(ConfigError, match=f"both {stead_name}= and {prefect_name}="):
        task(always_fails).with_options(**{stead_name: stead_value, prefect_name: value})


def test_with_options_in_prefects_spelling_replaces_the_stead_one() -> None:
    t = task(retry_delay=5, timeout=9)(always_fails).with_options(retry_delay_seconds=1,
                                                                   timeout_seconds=2)
    assert t.retry.delay == 1 and t.timeout == 2


def test_both_spellings_on_a_flow_and_task_only_options_on_a_flow_are_errors() -> None:
    with pytest.raises(ConfigError, match="both timeout= and timeout_seconds="):
        flow(timeout=1, timeout_seconds=2)(always_fails)
    with pytest.raises(ConfigError, match="retry_condition_fn= is a task option"):
        flow(retry_condition_fn=lambda t, r, s: True)(always_fails)
    with pytest.raises(ConfigError, match="cache_key_fn= is a task option"):
        flow(cache_key_fn=lambda c, p: "k")(always_fails)


def test_an_unknown_option_is_a_config_error_listing_the_known_ones() -> None:
    with pytest.raises(ConfigError, match=r"unknown option retry_delay_second=;.*"
                                          r"retry_delay_seconds"):
        task(retry_delay_second=1)(always_fails)
    with pytest.raises(ConfigError, match="unknown option"):
        flow(result_storage="s3://bucket")(always_fails)


# -- results -----------------------------------------------------------------------------------

class Opaque:
    """Not a dataclass, not a pydantic model: only pickle can store it."""

    def __init__(self, n: int) -> None:
        self.n = n


def test_result_serializer_pickle_stores_what_json_cannot(store) -> None:
    @task(result_serializer="pickle")
    def make() -> Opaque:
        return Opaque(3)

    @task(result_serializer="json")
    def make_json() -> Opaque:
        return Opaque(3)

    @flow
    def f() -> int:
        return make().n

    @flow
    def g() -> int:
        return make_json().n

    assert f() == 3
    with pytest.raises(SerializationError):
        g()
    with pytest.raises(ConfigError, match='result_serializer must be "json" or "pickle"'):
        task(result_serializer="compressed/json")(always_fails)
    with pytest.raises(ConfigError, match="a flow's result is always stored as JSON"):
        flow(result_serializer="pickle")(always_fails)


def test_persist_result_false_still_records_the_result_so_resume_reuses_it(store) -> None:
    calls = []

    @task(persist_result=False)
    def expensive(n: int) -> int:
        calls.append(n)
        return n * 10

    @task
    def flaky(state: list) -> None:
        if not state:
            state.append(1)
            raise RuntimeError("first run fails")

    state: list = []

    @flow(persist_result=False)
    def f(n: int) -> int:
        value = expensive(n)
        flaky(state)
        return value

    with pytest.raises(RuntimeError):
        f.with_options(run_id="persist-run")(4)
    assert f.resume("persist-run") == 40
    assert calls == [4]  # the recorded result was reused, not computed again
    assert store.get_step("persist-run", "1").result == "40"
    with pytest.raises(ConfigError, match="persist_result must be True or False"):
        task(persist_result="yes")(always_fails)


# -- caching -----------------------------------------------------------------------------------

def test_cache_key_fn_in_prefects_two_argument_form(store) -> None:
    calls, contexts = [], []

    def by_url(context, parameters) -> str:
        contexts.append(context)
        return parameters["url"].lower()

    @task(cache_key_fn=by_url)
    def fetch(url: str) -> str:
        calls.append(url)
        return f"body of {url}"

    @flow
    def crawl(url: str) -> str:
        return fetch(url)

    assert crawl("http://A") == "body of http://A"
    assert crawl("http://a") == "body of http://A"  # the same key: the cached value
    assert calls == ["http://A"]
    runs = {r.params: r.id for r in store.list_runs(RunFilter())}
    first = contexts[0]
    assert first.task is fetch and first.parameters == {"url": "http://A"}
    assert first.task_run.flow_run_id == runs['{"url":"http://A"}']
    assert first.task_run.id == f"{first.task_run.flow_run_id}/1"
    second_run = runs['{"url":"http://a"}']
    assert store.get_step(second_run, "1").state == "Cached"


def test_a_cache_key_fn_returning_none_does_not_cache_and_does_not_warn(store, caplog) -> None:
    calls = []

    @task(cache_key_fn=lambda context, parameters: None)
    def work(n: int) -> int:
        calls.append(n)
        return n

    @flow
    def f() -> int:
        return work(1) + work(1)

    with caplog.at_level(logging.WARNING):
        assert f() == 2
    assert calls == [1, 1]
    assert "cannot be hashed" not in caplog.text


def test_a_cache_key_fn_keyed_on_the_flow_run_caches_within_that_run_only(store) -> None:
    calls = []

    @task(cache_key_fn=lambda context, p: f"{context.task_run.flow_run_id}:{p['n']}")
    def work(n: int) -> int:
        calls.append(n)
        return n

    @flow
    def f() -> int:
        return work(1) + work(1)

    assert f() == 2 and f() == 2
    assert calls == [1, 1]  # once per run


def test_cache_policies_module_names(store) -> None:
    calls = []

    @task(cache_policy=DEFAULT)  # inputs + source + run id: reused inside one run only
    def square(n: int) -> int:
        calls.append(n)
        return n * n

    @task(cache_policy=NO_CACHE)
    def never(n: int) -> int:
        calls.append(-n)
        return n

    @task(cache_policy=(INPUTS - "verbose") + TASK_SOURCE)
    def quiet(n: int, verbose: bool = False) -> int:
        calls.append(100 + n)
        return n

    @flow
    def f() -> int:
        return square(3) + square(3) + never(1) + never(1) + quiet(1) + quiet(1, verbose=True)

    assert f() == 22 and f() == 22
    assert calls == [3, -1, -1, 101, 3, -1, -1]  # run 2: square again (RUN_ID), quiet cached
    assert NONE is NO_CACHE
    with pytest.raises(ConfigError, match="both cache_policy= and cache_key_fn="):
        task(cache_policy=INPUTS, cache_key_fn=lambda c, p: "k")(always_fails)


# -- prints, loggers, modules --------------------------------------------------------------------

def test_a_tasks_log_prints_overrides_the_flows(store) -> None:
    @task(log_prints=True)
    def loud() -> None:
        print("from loud")

    @task(log_prints=False)
    def private() -> None:
        print("from private")

    @task
    def plain() -> None:
        print("from plain")

    @flow
    def quiet_flow() -> None:  # records no prints of its own
        print("flow line")
        loud()
        plain()

    @flow(log_prints=True)
    def chatty_flow() -> None:
        print("chatty line")
        private()
        plain()

    quiet_flow()
    chatty_flow()
    quiet = only_run(store, "quiet_flow")
    assert [(g.step_key, g.message) for g in store.read_logs(quiet.id)] == [("1", "from loud")]
    chatty = only_run(store, "chatty_flow")
    assert [(g.step_key, g.message) for g in store.read_logs(chatty.id)] == [
        (None, "chatty line"), ("2", "from plain")]
    with pytest.raises(ConfigError, match="log_prints must be True, False or None"):
        task(log_prints="yes")(always_fails)


def test_get_run_logger_is_the_run_logger(store) -> None:
    from stead.logging import get_logger, get_run_logger

    assert stead.get_run_logger is get_run_logger is get_logger is stead.get_logger

    @flow
    def f() -> None:
        get_run_logger().info("via prefect's name")

    f()
    run = only_run(store, "f")
    assert [g.message for g in store.read_logs(run.id)] == ["via prefect's name"]


def test_futures_and_task_runners_modules(store) -> None:
    from stead.futures import PrefectFuture, PrefectFutureList, as_completed, wait
    from stead.task_runners import ThreadPoolTaskRunner

    @task
    def double(n: int) -> int:
        return 2 * n

    @flow(task_runner=ThreadPoolTaskRunner(max_workers=2))
    def f() -> tuple[list[int], int, int]:
        futures = double.map([1, 2, 3])
        assert isinstance(futures, PrefectFutureList)
        assert all(isinstance(x, PrefectFuture) for x in futures)
        state = wait(futures)
        assert len(state.done) == 3 and not state.not_done
        return futures.result(), sum(x.result() for x in as_completed(futures)), len(futures)

    assert f() == ([2, 4, 6], 12, 3)
