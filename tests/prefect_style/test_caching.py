"""Caching, cache policies and results, as Prefect 3's docs use them."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest

from stead.core.runtime import store_for
from stead.store.base import RunFilter
from tests.prefect_style.registry import Difference, differs, unchanged

DIFFERENCES = [
    Difference("result_storage",
               "result_storage= / result_storage_key= (S3, GCS, a local block) are refused "
               "with a ConfigError naming the option",
               "every Stead result is recorded in its own database (files over 64 KiB beside "
               "it), because resume depends on it; remote result storage is not there yet"),
    Difference("cache_shared_between_tasks",
               "two different tasks given the same cache_key_fn (one constant key) do not "
               "share a cached value",
               "Stead's cache keys are per task, so a key chosen by mistake never hands one "
               "task another task's result"),
]


def steps_of(flow_name: str) -> list:
    [run] = store_for().list_runs(RunFilter(flow_name=flow_name, limit=10))
    return list(store_for().load_steps(run.id).values())


@unchanged
def test_persist_result_turns_on_the_default_cache_policy() -> None:
    """persist_result=True: a repeated call with the same inputs in one run is Cached."""
    from stead import flow, task

    bodies = []

    @task(persist_result=True)
    def add_one(x: int) -> int:
        bodies.append(x)
        return x + 1

    @flow
    def my_flow() -> list[int]:
        return [add_one(1), add_one(1), add_one(2)]

    assert my_flow() == [2, 2, 3]
    assert bodies == [1, 2]
    assert [s.state for s in steps_of("my_flow")] == ["Completed", "Cached", "Completed"]


@unchanged
def test_cache_on_inputs_across_runs() -> None:
    """cache_policy=INPUTS: the same inputs in a later run reuse the result."""
    from stead import flow, task
    from stead.cache_policies import INPUTS

    bodies = []

    @task(cache_policy=INPUTS)
    def slow_square(x: int) -> int:
        bodies.append(x)
        return x * x

    @flow
    def squares(xs: list[int]) -> list[int]:
        return [slow_square(x) for x in xs]

    assert squares([1, 2]) == [1, 4]
    assert squares([2, 3]) == [4, 9]
    assert bodies == [1, 2, 3]


@unchanged
def test_cache_on_a_subset_of_inputs() -> None:
    """INPUTS - "debug": an argument left out of the key does not defeat the cache."""
    from stead import flow, task
    from stead.cache_policies import INPUTS

    bodies = []

    @task(cache_policy=INPUTS - "debug")
    def lookup(key: str, debug: bool = False) -> str:
        bodies.append((key, debug))
        return key.upper()

    @flow
    def lookups() -> list[str]:
        return [lookup("a"), lookup("a", debug=True), lookup("b", debug=True)]

    assert lookups() == ["A", "A", "B"]
    assert bodies == [("a", False), ("b", True)]


@unchanged
def test_combined_policies_and_task_source() -> None:
    """INPUTS + TASK_SOURCE: a changed task body is a cache miss; the same body a hit."""
    from stead import flow, task
    from stead.cache_policies import INPUTS, TASK_SOURCE

    bodies = []

    def make(version: int):
        if version == 1:
            @task(name="compute", cache_policy=INPUTS + TASK_SOURCE)
            def compute(x: int) -> int:
                bodies.append("v1")
                return x + 1
        else:
            @task(name="compute", cache_policy=INPUTS + TASK_SOURCE)
            def compute(x: int) -> int:
                bodies.append("v2")
                return x + 100
        return compute

    @flow
    def computing(version: int) -> int:
        return make(version)(1)

    assert computing(1) == 2
    assert computing(1) == 2        # the same source: cached
    assert computing(2) == 101      # a new body: computed again
    assert bodies == ["v1", "v2"]


@unchanged
def test_cache_key_fn() -> None:
    """cache_key_fn(context, parameters) picks the key: here, the first letter."""
    from stead import flow, task

    def first_letter(context, parameters) -> str:
        return parameters["word"][0]

    bodies = []

    @task(cache_key_fn=first_letter)
    def describe(word: str) -> str:
        bodies.append(word)
        return f"starts like {word}"

    @flow
    def words() -> list[str]:
        return [describe("apple"), describe("avocado"), describe("banana")]

    assert words() == ["starts like apple", "starts like apple", "starts like banana"]
    assert bodies == ["apple", "banana"]


@unchanged
def test_task_input_hash_with_expiration() -> None:
    """cache_key_fn=task_input_hash, cache_expiration=...: reuse until the entry expires."""
    from stead import flow, task
    from stead.tasks import task_input_hash

    bodies = []

    @task(cache_key_fn=task_input_hash, cache_expiration=timedelta(seconds=0.5))
    def fetch(url: str) -> int:
        bodies.append(url)
        return len(url)

    @flow
    def fetching() -> int:
        return fetch("https://example.com/a")

    assert fetching() == 21
    assert fetching() == 21
    assert len(bodies) == 1
    time.sleep(0.7)                  # past the expiration: run again
    assert fetching() == 21
    assert len(bodies) == 2


@unchanged
def test_refresh_cache() -> None:
    """refresh_cache=True runs the task anyway and stores the new value for later calls."""
    from stead import flow, task
    from stead.cache_policies import INPUTS

    counter = [0]

    @task(cache_policy=INPUTS)
    def read_counter(name: str) -> int:
        counter[0] += 1
        return counter[0]

    @flow
    def reading(refresh: bool) -> int:
        if refresh:
            return read_counter.with_options(refresh_cache=True)("hits")
        return read_counter("hits")

    assert reading(False) == 1
    assert reading(False) == 1       # cached
    assert reading(True) == 2        # refreshed
    assert reading(False) == 2       # the refreshed value is the cached one now


@unchanged
def test_no_cache() -> None:
    """cache_policy=NO_CACHE: the body runs every time."""
    from stead import flow, task
    from stead.cache_policies import NO_CACHE

    bodies = []

    @task(cache_policy=NO_CACHE, persist_result=True)
    def now_ish(x: int) -> int:
        bodies.append(x)
        return x

    @flow
    def uncached() -> list[int]:
        return [now_ish(1), now_ish(1)]

    assert uncached() == [1, 1]
    assert bodies == [1, 1]


@unchanged
def test_pickle_result_serializer() -> None:
    """result_serializer="pickle" stores a value JSON cannot hold; the result comes back."""
    from stead import flow, task

    @task(result_serializer="pickle", persist_result=True)
    def make_point() -> Point:
        return Point(1, 2)

    @flow
    def geometry() -> int:
        p = make_point()
        return p.x + p.y

    assert geometry() == 3


class Point:
    """A plain class: JSON cannot store it, pickle can (by reference to this module)."""

    def __init__(self, x: int, y: int) -> None:
        self.x, self.y = x, y


@differs
def test_result_storage() -> None:
    from stead import ConfigError, task

    with pytest.raises(ConfigError, match="result_storage"):
        @task(persist_result=True, result_storage_key="{parameters[x]}.json")
        def stored(x: int) -> int:
            return x


@differs
def test_cache_shared_between_tasks() -> None:
    from stead import flow, task

    def same_key(context, parameters) -> str:
        return "shared"

    @task(cache_key_fn=same_key)
    def first() -> str:
        return "first"

    @task(cache_key_fn=same_key)
    def second() -> str:
        return "second"

    @flow
    def sharing() -> list[str]:
        return [first(), second()]

    assert sharing() == ["first", "second"]   # Prefect: ["first", "first"]
