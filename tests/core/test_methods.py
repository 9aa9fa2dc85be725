"""`@flow` and `@task` on methods, classmethods and staticmethods: self is bound, not stored."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stead import flow, task
from stead.cache_policies import INPUTS
from stead.core.loader import load_flow
from stead.core.runtime import store_for
from stead.errors import ConfigError
from stead.store.base import RunFilter
from tests.conftest import script_env


def runs_of(store, flow_name: str):
    return [r for r in store.list_runs(RunFilter()) if r.flow_name == flow_name]


@dataclasses.dataclass
class Scaler:
    factor: int

    @task
    def scale(self, n: int) -> int:
        return self.factor * n

    @flow
    def total(self, numbers: list[int]) -> int:
        return sum(self.scale(n) for n in numbers)

    @flow
    async def total_async(self, n: int) -> int:
        await asyncio.sleep(0)
        return self.scale(n)

    @classmethod
    @flow
    def doubled(cls, n: int) -> int:  # @classmethod above @flow
        return cls(2).scale(n)

    @flow
    @classmethod
    def tripled(cls, n: int) -> int:  # @flow above @classmethod
        return cls(3).scale(n)

    @staticmethod
    @flow
    def plain(n: int) -> int:
        return n + 1

    @flow
    @staticmethod
    def plain_too(n: int) -> int:
        return n + 2

    @classmethod
    @task
    def label(cls, n: int) -> str:
        return f"{cls.__name__}:{n}"

    @task
    @staticmethod
    def inc(n: int) -> int:
        return n + 1

    @flow
    def labels(self, n: int) -> list:
        return [Scaler.label(n), self.label(n), Scaler.inc(n), self.inc(n)]


def test_an_instance_method_flow_binds_self_and_records_only_its_parameters(store) -> None:
    assert Scaler(10).total([1, 2, 3]) == 60
    [run] = runs_of(store, "total")
    assert json.loads(run.params) == {"numbers": [1, 2, 3]}  # no self
    assert run.entrypoint == "tests.core.test_methods:Scaler.total"
    steps = store.load_steps(run.id)
    assert [json.loads(steps[k].params) for k in ("1", "2", "3")] == [
        {"n": 1}, {"n": 2}, {"n": 3}]
    assert Scaler(1).total([1, 2, 3]) == 6  # another instance, its own self


def test_an_async_method_flow(store) -> None:
    assert asyncio.run(Scaler(5).total_async(3)) == 15
    [run] = runs_of(store, "total_async")
    assert json.loads(run.params) == {"n": 3}


@pytest.mark.parametrize(("name", "via_class", "via_instance"), [
    ("doubled", 14, 14), ("tripled", 21, 21), ("plain", 8, 8), ("plain_too", 9, 9)])
def test_classmethod_and_staticmethod_flows_in_either_stacking_order(
        store, name: str, via_class: int, via_instance: int) -> None:
    assert getattr(Scaler, name)(7) == via_class
    assert getattr(Scaler(100), name)(7) == via_instance
    runs = runs_of(store, name)
    assert len(runs) == 2 and all(json.loads(r.params) == {"n": 7} for r in runs)


def test_classmethod_and_staticmethod_tasks(store) -> None:
    assert Scaler(1).labels(4) == ["Scaler:4", "Scaler:4", 5, 5]
    [run] = runs_of(store, "labels")
    steps = store.load_steps(run.id)
    assert [json.loads(steps[k].params) for k in ("1", "2", "3", "4")] == [{"n": 4}] * 4


def test_submit_and_map_on_a_bound_task(store) -> None:
    @flow
    def fan_out(s: int) -> list[int]:
        scaler = Scaler(s)
        first = scaler.scale.submit(1)
        return [first.result(), *scaler.scale.map([2, 3]).result()]

    assert fan_out(10) == [10, 20, 30]
    [run] = runs_of(store, "fan_out")
    assert sorted(json.loads(s.params)["n"] for s in store.load_steps(run.id).values()) == [
        1, 2, 3]


def test_a_method_tasks_cache_key_covers_the_instance(store) -> None:
    calls = []

    @dataclasses.dataclass
    class Model:
        weights: int

        @task(cache_policy=INPUTS)
        def predict(self, x: int) -> int:
            calls.append((self.weights, x))
            return self.weights * x

    @flow
    def serve(weights: int, x: int) -> int:
        return Model(weights).predict(x)

    assert serve(2, 5) == 10 and serve(2, 5) == 10  # the second from the cache
    assert serve(3, 5) == 15  # another model's state: not the cached value
    assert calls == [(2, 5), (3, 5)]


def test_with_options_on_a_bound_flow_keeps_self_bound(store) -> None:
    scaler = Scaler(4)
    assert scaler.total.with_options(run_id="fixed")([1, 1]) == 8
    assert store.get_run("fixed").params == '{"numbers":[1,1]}'


def test_an_instance_method_flow_resumes_from_python_on_its_instance(store) -> None:
    failures = []

    class Job:
        def __init__(self, base: int) -> None:
            self.base = base

        @task
        def step(self, n: int) -> int:
            failures.append(n)
            if len(failures) == 2:
                raise RuntimeError("second step fails once")
            return self.base + n

        @flow
        def run(self, n: int) -> int:
            return self.step(n) + self.step(n + 1)

    job = Job(100)
    with pytest.raises(RuntimeError):
        job.run.with_options(run_id="job-1")(1)
    assert job.run.resume("job-1") == 203
    assert failures == [1, 2, 2]  # step 1 was not run again


def test_an_instance_method_flow_cannot_be_enqueued_but_a_classmethod_can(store) -> None:
    with pytest.raises(ConfigError, match="method of a Scaler instance; a worker cannot"):
        Scaler(1).total.enqueue([1])
    handle = Scaler.doubled.enqueue(3, queue="q")
    run = store.get_run(str(handle))
    assert run.entrypoint == "tests.core.test_methods:Scaler.doubled"
    loaded = load_flow(run)  # what a worker runs: the flow bound to its class again
    assert loaded.bound_to is Scaler and loaded.fn(3) == 6


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(factor=st.integers(-1000, 1000), numbers=st.lists(st.integers(-1000, 1000), max_size=4))
def test_a_bound_flow_matches_the_plain_method(store, factor: int, numbers: list[int]) -> None:
    assert Scaler(factor).total(numbers) == sum(factor * n for n in numbers)


# -- resuming a killed run of a method flow from another process ------------------------------

SCRIPT = '''
import os, signal, sys
from pathlib import Path
from stead import flow, task

HERE = Path(__file__).parent

@task
def double(x: int) -> int:
    with open(HERE / "double-calls", "a") as f:
        f.write("x\\n")
    return 2 * x

@task
def die_once(x: int) -> int:
    mark = HERE / "killed-once"
    if not mark.exists():
        mark.write_text("killed")
        os.kill(os.getpid(), signal.SIGKILL)
    return x + 1

class Pipeline:
    offset = 100

    def __init__(self, offset: int) -> None:
        self.offset = offset

    @classmethod
    @flow
    def nightly(cls, n: int) -> int:
        return die_once(double(n)) + cls.offset

    @flow
    @classmethod
    def weekly(cls, n: int) -> int:
        return die_once(double(n)) + cls.offset

    @flow
    def run(self, n: int) -> int:
        return die_once(double(n)) + self.offset

if __name__ == "__main__":
    what = sys.argv[1]
    if what == "resume":
        print(Pipeline(7).run.resume(sys.argv[2]))
    elif what == "run":
        print(Pipeline(7).run(20))
    else:
        print(getattr(Pipeline, what)(20))
'''


def start_and_kill(stead_home: Path, tmp_path: Path, what: str):
    script = tmp_path / "pipeline.py"
    script.write_text(textwrap.dedent(SCRIPT))
    first = subprocess.run([sys.executable, str(script), what], capture_output=True, text=True,
                           timeout=120, env=script_env(stead_home))
    assert first.returncode == -9, first.stderr
    [crashed] = store_for().list_runs(RunFilter())
    assert crashed.state == "Running" and json.loads(crashed.params) == {"n": 20}
    return script, crashed


def stead_cli(home: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "stead.cli.main", *args], capture_output=True,
                          text=True, timeout=120, cwd=cwd, env=script_env(home))


@pytest.mark.parametrize("what", ["nightly", "weekly"])
def test_a_killed_classmethod_flow_is_resumed_by_the_cli(
        stead_home: Path, tmp_path: Path, what: str) -> None:
    _, crashed = start_and_kill(stead_home, tmp_path, what)
    resumed = stead_cli(stead_home, "runs", "resume", crashed.id, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert "result: 141" in resumed.stdout
    run = store_for().get_run(crashed.id)
    assert run.state == "Completed" and run.resumes == 1
    assert (tmp_path / "double-calls").read_text().count("x") == 1  # not run again


def test_a_killed_instance_method_flow_is_refused_by_the_cli_and_resumed_from_python(
        stead_home: Path, tmp_path: Path) -> None:
    script, crashed = start_and_kill(stead_home, tmp_path, "run")
    refused = stead_cli(stead_home, "runs", "resume", crashed.id, cwd=tmp_path)
    assert refused.returncode != 0
    said = " ".join((refused.stdout + refused.stderr).split())
    assert "is the method Pipeline.run of Pipeline instances" in said
    assert "obj.run.resume(run_id)" in said
    assert store_for().get_run(crashed.id).state != "Completed"

    resumed = subprocess.run([sys.executable, str(script), "resume", crashed.id],
                             capture_output=True, text=True, timeout=120,
                             env=script_env(stead_home))
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout.strip().splitlines()[-1] == "48"
    assert store_for().get_run(crashed.id).state == "Completed"
    assert (tmp_path / "double-calls").read_text().count("x") == 1


def test_a_method_flow_called_inside_a_flow_is_a_child_run_without_self(store) -> None:
    @flow
    def parent() -> int:
        return Scaler(3).total([1, 2]) + Scaler.doubled(1)

    assert parent() == 11
    [run] = runs_of(store, "parent")
    steps = store.load_steps(run.id)
    assert [(s.kind, s.name, json.loads(s.params)) for s in steps.values()] == [
        ("flow", "total", {"numbers": [1, 2]}), ("flow", "doubled", {"n": 1})]
    [child] = runs_of(store, "total")
    assert child.parent_id == run.id and json.loads(child.params) == {"numbers": [1, 2]}
