"""Cache policies: hits across runs recorded as Cached, expiry on an injected clock, refresh."""

from __future__ import annotations

import dataclasses
import datetime as dt
import subprocess
import sys
from collections import Counter

import pytest

from stead import INPUTS, TASK_SOURCE, CacheKeyFn, FakeClock, Inputs, flow, task
from stead.core.caching import CachePolicy
from stead.errors import ConfigError
from stead.store.base import RunFilter

calls: Counter[str] = Counter()


@dataclasses.dataclass(frozen=True)
class Query:
    table: str
    since: dt.date


@task(cache_policy=INPUTS, cache_expiration=dt.timedelta(hours=1))
def expensive(query: Query, limit: int = 10) -> list[str]:
    calls["expensive"] += 1
    return [f"{query.table}:{i}" for i in range(limit)]


def run_query(clock: FakeClock, *args, **kwargs) -> list[str]:
    @flow(clock=clock)
    def report() -> list[str]:
        return expensive(*args, **kwargs)

    return report()


def steps_of_latest_run(store):
    run = store.list_runs(RunFilter(limit=1))[0]
    return run, store.load_steps(run.id)


def test_cache_hit_across_runs_is_recorded_as_cached_with_its_origin(store) -> None:
    calls.clear()
    clock = FakeClock()
    q = Query("orders", dt.date(2026, 11, 21))
    first = run_query(clock, q)
    producer, _ = steps_of_latest_run(store)
    clock.advance(60)
    assert run_query(clock, q, limit=10) == first  # same inputs (default made explicit)
    assert calls["expensive"] == 1
    _, steps = steps_of_latest_run(store)
    assert steps["1"].state == "Cached" and steps["1"].cached_from == f"{producer.id}/1"
    assert steps["1"].result == store.load_steps(producer.id)["1"].result


def test_different_inputs_miss(store) -> None:
    calls.clear()
    clock = FakeClock()
    run_query(clock, Query("orders", dt.date(2026, 11, 21)))
    run_query(clock, Query("orders", dt.date(2026, 11, 22)))
    run_query(clock, Query("orders", dt.date(2026, 11, 22)), limit=3)
    assert calls["expensive"] == 3


def test_cache_entries_expire_on_the_injected_clock(store) -> None:
    calls.clear()
    clock = FakeClock()
    q = Query("users", dt.date(2026, 1, 1))
    run_query(clock, q)
    clock.advance(3599)
    run_query(clock, q)
    assert calls["expensive"] == 1
    clock.advance(2)  # past the hour
    run_query(clock, q)
    assert calls["expensive"] == 2
    clock.advance(60)
    run_query(clock, q)  # the fresh entry from the second real call is used
    assert calls["expensive"] == 2


def test_refresh_cache_runs_anyway_and_replaces_the_entry(store) -> None:
    calls.clear()
    clock = FakeClock()
    q = Query("events", dt.date(2026, 2, 2))
    run_query(clock, q)

    @flow(clock=clock)
    def refresh() -> list[str]:
        return expensive.with_options(refresh_cache=True)(q)

    clock.advance(1)
    refresh()
    assert calls["expensive"] == 2
    clock.advance(1)
    run_query(clock, q)
    assert calls["expensive"] == 2
    _, steps = steps_of_latest_run(store)
    refreshed = next(r for r in store.list_runs(RunFilter()) if r.flow_name == "refresh")
    assert steps["1"].cached_from == f"{refreshed.id}/1"


def test_custom_key_function_and_excluded_inputs(store) -> None:
    seen: Counter[str] = Counter()

    @task(cache_policy=CacheKeyFn(lambda args: args["url"].lower()))
    def fetch(url: str) -> str:
        seen["fetch"] += 1
        return url.upper()

    @task(cache_policy=Inputs(exclude=("verbose",)))
    def parse(text: str, verbose: bool = False) -> int:
        seen["parse"] += 1
        return len(text)

    @flow
    def f() -> tuple:
        return (fetch("http://A"), fetch("http://a"), parse("abc"), parse("abc", verbose=True))

    assert f() == ("HTTP://A", "HTTP://A", 3, 3)
    assert seen == {"fetch": 1, "parse": 1}


def test_task_source_policy_changes_when_the_code_changes(store, tmp_path) -> None:
    module = tmp_path / "versioned.py"
    counter = tmp_path / "count.txt"
    template = """
from pathlib import Path
from stead import flow, task, TASK_SOURCE, INPUTS

@task(cache_policy=TASK_SOURCE + INPUTS)
def compute(x: int) -> int:
    with Path({counter!r}).open("a") as f:
        f.write("run\\n")
    return x * {factor}

@flow
def main() -> int:
    return compute(7)

if __name__ == "__main__":
    print(main())
"""
    outputs = []
    for factor in (2, 2, 3):
        module.write_text(template.format(counter=str(counter), factor=factor))
        done = subprocess.run([sys.executable, str(module)], capture_output=True, text=True,
                              timeout=60, check=True)
        outputs.append(done.stdout.strip())
    assert outputs == ["14", "14", "21"]
    assert counter.read_text().split() == ["run", "run"]  # the edit invalidated the cache


def test_keys_are_stable_across_processes_for_supported_types() -> None:
    code = """
import datetime as dt, decimal, uuid, pathlib
from stead import INPUTS, task
@task
def t(a, b, c, d): ...
print(INPUTS.key(t, {"a": {"z": 1, "a": (1, 2)}, "b": {3, 1, 2}, "c": dt.date(2026, 1, 1),
                     "d": [decimal.Decimal("1.5"), uuid.UUID(int=5), pathlib.Path("/x"),
                           {2: "b", 1: "a"}, b"bytes"]}))
"""
    keys = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           check=True, env={"PYTHONHASHSEED": str(seed),
                                            "PATH": "/usr/bin:/bin"}).stdout.strip()
            for seed in (1, 2, 3)}
    assert len(keys) == 1 and len(keys.pop()) == 64


def test_unhashable_inputs_run_uncached_with_a_warning(store) -> None:
    ran = []

    @task(cache_policy=INPUTS)
    def uses(conn: object) -> int:
        ran.append(1)
        return 1

    @flow
    def f() -> int:
        return uses(object()) + uses(object())

    assert f() == 2 and len(ran) == 2
    run, _ = steps_of_latest_run(store)
    assert any("cannot be hashed for the cache" in g.message for g in store.read_logs(run.id))


def test_cached_submitted_tasks(store) -> None:
    seen: Counter[int] = Counter()

    @task(cache_policy=INPUTS)
    def square(x: int) -> int:
        seen[x] += 1
        return x * x

    @flow
    def f() -> list[int]:
        return [x.result() for x in square.map([1, 2, 3])]

    assert f() == f() == [1, 4, 9]
    assert seen == {1: 1, 2: 1, 3: 1}


def test_bad_cache_options_are_rejected() -> None:
    with pytest.raises(ConfigError, match="cache_policy must be a policy"):
        task(cache_policy="inputs")(lambda: None)
    with pytest.raises(ConfigError, match="cache_expiration must be"):
        task(cache_policy=INPUTS, cache_expiration=-5)(lambda: None)
    assert isinstance(INPUTS + TASK_SOURCE, CachePolicy)
