"""Flow.enqueue: a Pending run on a queue; and Flow.execute_claimed: a claimed run, fenced.

Runs on both backends (tests/core/conftest.py). Claimed runs are executed in this process
without a worker: the test claims them with Store.claim_runs, as a worker would.
"""

from __future__ import annotations

import asyncio
import json
import threading

import pytest

from stead import flow, task
from stead.core.serialization import decode
from stead.errors import ConfigError, LeaseLost, ParameterError, RunConflict
from stead.settings import reset_settings
from stead.store.base import RunFilter, RunRecord, Store, WorkerRecord

WORKER = WorkerRecord(id="w-test", name="tester", host="here", pid=1, queues='["etl"]',
                      concurrency=1, state="running", started_at=0.0, heartbeat_at=0.0)


@task
def square(i: int) -> int:
    CALLS.append(i)
    return i * i


CALLS: list[int] = []


@flow
def etl(day: str, n: int = 2) -> dict:
    return {"day": day, "squares": [square(i) for i in range(n)]}


@flow
def route(queue: str, n: int) -> str:
    return f"{queue}:{n}"


@flow
def other(day: str, n: int = 2) -> None:
    return None


@flow
def child(i: int) -> int:
    return square(i) + 1


@flow
def parent(n: int) -> list[int]:
    return [child(i) for i in range(n)]


@flow
async def async_etl(n: int) -> int:
    await asyncio.sleep(0)
    return sum(square(i) for i in range(n))


@flow
def broken(n: int) -> None:
    square(n)
    raise ValueError(f"broken at {n}")


RECOVER_DURING: dict[str, Store] = {}  # run id -> store: recover the run during task "takeover"


@task
def takeover(run_id: str) -> str:
    store = RECOVER_DURING.pop(run_id, None)
    if store is not None:  # the reaper of another worker recovers the run meanwhile
        epoch = store.get_run(run_id).lease_epoch
        assert store.recover_run(run_id, epoch, 1e9, "lease expired (test)") == "Pending"
    return "taken"


@flow
def two_steps(target: str) -> list:
    return [square(3), takeover(target), square(4)]


@pytest.fixture(autouse=True)
def _no_calls() -> None:
    CALLS.clear()
    RECOVER_DURING.clear()


def claim(store: Store, queue: str = "etl", n: int = 1) -> list[RunRecord]:
    return store.claim_runs([queue], WORKER, "here|1|1", n, now=1e6, lease_s=30.0)


# -- enqueue --------------------------------------------------------------------------------


def test_enqueue_records_a_pending_run_on_its_queue(store: Store) -> None:
    run_id = etl.enqueue("2026-11-22", n=3, queue="etl", priority=5)
    assert isinstance(run_id, str) and run_id
    run = store.get_run(run_id)
    assert run.state == "Pending" and run.flow_name == "etl"
    assert run.queue == "etl" and run.priority == 5
    assert decode(run.params) == {"day": "2026-11-22", "n": 3}
    assert run.entrypoint == "tests.core.test_enqueue:etl"
    assert run.started_at is None and run.lease_epoch == 0 and run.worker_id is None
    assert [(c.state, c.message) for c in store.run_history(run_id)] == [
        ("Pending", "enqueued on queue 'etl'")]
    assert CALLS == []  # nothing ran


def test_enqueue_defaults_to_the_default_queue_and_applies_defaults(store: Store) -> None:
    run = store.get_run(etl.enqueue(day="d"))
    assert run.queue == "default" and run.priority == 0
    assert decode(run.params) == {"day": "d", "n": 2}
    assert [q.name for q in store.list_queues()] == ["default"]
    assert store.list_queues()[0].pending == 1


def test_enqueue_with_the_same_run_id_and_params_is_a_no_op(store: Store) -> None:
    first = etl.enqueue("d", queue="etl", run_id="etl-d")
    again = etl.enqueue(day="d", n=2, queue="etl", run_id="etl-d")
    assert first == again == "etl-d"
    assert [r.id for r in store.list_runs(RunFilter())] == ["etl-d"]
    assert len(store.run_history("etl-d")) == 1


def test_enqueue_with_the_same_run_id_and_other_params_is_refused(store: Store) -> None:
    etl.enqueue("d", queue="etl", run_id="etl-d")
    with pytest.raises(RunConflict, match=r"run id 'etl-d' already names a run of flow 'etl'"):
        etl.enqueue("other-day", queue="etl", run_id="etl-d")
    with pytest.raises(RunConflict, match="Use another run id"):
        other.enqueue("d", queue="etl", run_id="etl-d")  # same params, another flow
    run = store.get_run("etl-d")
    assert decode(run.params) == {"day": "d", "n": 2} and run.flow_name == "etl"


@pytest.mark.parametrize(("args", "kwargs", "problem"), [
    ((), {}, "missing a required argument: 'day'"),
    (("d", 2, 3), {}, "too many positional arguments"),
    (("d",), {"size": 3}, "unexpected keyword argument 'size'"),
])
def test_enqueue_with_wrong_arguments_names_the_problem(store: Store, args: tuple,
                                                        kwargs: dict, problem: str) -> None:
    with pytest.raises(ParameterError, match=f"flow 'etl' was enqueued with wrong arguments: "
                                             f".*{problem}") as raised:
        etl.enqueue(*args, queue="etl", **kwargs)
    assert "It takes etl(day: " in str(raised.value)
    assert store.list_runs(RunFilter()) == []


def test_a_flow_with_a_parameter_named_queue_takes_params(store: Store) -> None:
    with pytest.raises(ConfigError, match=r"flow 'route' has a parameter named 'queue'.*"
                                          r"enqueue\(params=\{\.\.\.\}, queue=\.\.\.\)"):
        route.enqueue("inbox", 1)
    with pytest.raises(ConfigError, match=r"either as params=.* or as arguments"):
        route.enqueue("inbox", params={"queue": "inbox", "n": 1})
    run_id = route.enqueue(params={"queue": "inbox", "n": 1}, queue="work", priority=2)
    run = store.get_run(run_id)
    assert decode(run.params) == {"queue": "inbox", "n": 1}
    assert run.queue == "work" and run.priority == 2
    with pytest.raises(ParameterError, match="missing a required argument: 'n'"):
        route.enqueue(params={"queue": "inbox"}, queue="work")


@pytest.mark.parametrize(("options", "problem"), [
    ({"queue": ""}, "queue must be a non-empty name"),
    ({"queue": "  "}, "queue must be a non-empty name"),
    ({"priority": "high"}, "priority must be a whole number"),
    ({"max_recoveries": -1}, "max_recoveries must be a whole number >= 0"),
])
def test_enqueue_refuses_bad_options(store: Store, options: dict, problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        etl.enqueue("d", **options)
    assert store.list_runs(RunFilter()) == []


@flow
def takes_anything(thing: object) -> None:
    return None


def test_unstorable_parameters_are_refused(store: Store) -> None:
    with pytest.raises(ParameterError, match=r"flow 'takes_anything': its parameters cannot be "
                                             r"recorded.*a worker receives them from the "
                                             r"database"):
        takes_anything.enqueue(threading.Lock(), queue="etl")
    # One that does not fit its annotation is refused before that, naming the parameter.
    with pytest.raises(ParameterError, match=r"flow 'etl': parameter 'day' expects str"):
        etl.enqueue(threading.Lock(), queue="etl")
    assert store.list_runs(RunFilter()) == []


def test_a_flow_defined_inside_a_function_cannot_be_enqueued(store: Store) -> None:
    @flow
    def local(n: int) -> int:
        return n

    with pytest.raises(ConfigError, match=r"flow 'local' is defined inside a function; a worker "
                                          r"could not import it"):
        local.enqueue(1, queue="etl")
    assert store.list_runs(RunFilter()) == []


def test_max_recoveries_defaults_to_the_setting(store: Store,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    assert store.get_run(etl.enqueue("a")).max_recoveries == 3
    monkeypatch.setenv("STEAD_MAX_RECOVERIES", "7")
    reset_settings()
    assert store.get_run(etl.enqueue("b")).max_recoveries == 7
    assert store.get_run(etl.enqueue("c", max_recoveries=0)).max_recoveries == 0


# -- execute_claimed -------------------------------------------------------------------------


def test_a_claimed_run_executes_to_completion(store: Store) -> None:
    run_id = etl.enqueue("d", n=3, queue="etl")
    [claimed] = claim(store)
    assert claimed.id == run_id and claimed.state == "Running"
    assert etl.execute_claimed(claimed, store) == {"day": "d", "squares": [0, 1, 4]}
    run = store.get_run(run_id)
    assert run.state == "Completed" and json.loads(run.result or "null") is not None
    assert decode(run.result or "") == {"day": "d", "squares": [0, 1, 4]}
    assert (run.queue, run.worker_id, run.lease_epoch) == ("etl", "w-test", 1)
    steps = store.load_steps(run_id)
    assert {k: (s.name, s.state, decode(s.result or "")) for k, s in steps.items()} == {
        "1": ("square", "Completed", 0), "2": ("square", "Completed", 1),
        "3": ("square", "Completed", 4)}
    assert [c.state for c in store.run_history(run_id)] == ["Pending", "Running", "Completed"]
    assert store.list_queues()[0].pending == store.list_queues()[0].running == 0


def test_child_flows_of_a_claimed_run_share_its_fence(store: Store) -> None:
    run_id = parent.enqueue(2, queue="etl")
    [claimed] = claim(store)
    assert parent.execute_claimed(claimed, store) == [1, 2]
    children = store.list_runs(RunFilter(parent_id=run_id))
    assert sorted(r.id for r in children) == [f"{run_id}:1", f"{run_id}:2"]
    assert all(r.state == "Completed" for r in children)


def test_an_async_claimed_run_executes(store: Store) -> None:
    run_id = async_etl.enqueue(3, queue="etl")
    [claimed] = claim(store)
    assert async_etl.execute_claimed(claimed, store) == 5
    assert store.get_run(run_id).state == "Completed"
    assert len(store.load_steps(run_id)) == 3


def test_a_claimed_run_that_fails_is_recorded_failed(store: Store) -> None:
    run_id = broken.enqueue(4, queue="etl")
    [claimed] = claim(store)
    with pytest.raises(ValueError, match="broken at 4"):
        broken.execute_claimed(claimed, store)
    run = store.get_run(run_id)
    assert run.state == "Failed" and "broken at 4" in (run.error or "")
    assert store.load_steps(run_id)["1"].state == "Completed"


def test_executing_a_claim_whose_run_was_recovered_raises_lease_lost(store: Store) -> None:
    run_id = etl.enqueue("d", n=2, queue="etl")
    [stale] = claim(store)
    assert store.recover_run(run_id, stale.lease_epoch, 2e6, "lease expired") == "Pending"
    before = store.load_steps(run_id)
    with pytest.raises(LeaseLost, match=f"lost the lease on run {run_id}"):
        etl.execute_claimed(stale, store)
    assert store.load_steps(run_id) == before == {}
    run = store.get_run(run_id)
    assert run.state == "Pending" and run.lease_epoch == stale.lease_epoch + 1
    assert [c.state for c in store.run_history(run_id)] == [
        "Pending", "Running", "Crashed", "Pending"]  # the stale executor wrote nothing
    # The new claim executes it.
    [fresh] = claim(store)
    assert etl.execute_claimed(fresh, store) == {"day": "d", "squares": [0, 1]}


def test_a_run_recovered_mid_execution_stops_its_old_executor(store: Store) -> None:
    run_id = two_steps.enqueue("mid", queue="etl", run_id="mid")
    [first] = claim(store)
    RECOVER_DURING[run_id] = store
    with pytest.raises(LeaseLost):
        two_steps.execute_claimed(first, store)
    # Step 1 was committed under the old lease; step 2 (whose recording was refused) and
    # step 3 (never reached) are not recorded, and the run waits on its queue again.
    steps = store.load_steps(run_id)
    assert {k: s.state for k, s in steps.items()} == {"1": "Completed"}
    assert CALLS == [3]
    run = store.get_run(run_id)
    assert run.state == "Pending" and run.recoveries == 1
    # Another executor resumes from the recorded step: square(3) is not called again.
    [second] = claim(store)
    assert two_steps.execute_claimed(second, store) == [9, "taken", 16]
    assert CALLS == [3, 4]
    assert store.get_run(run_id).state == "Completed"
    assert sorted(store.load_steps(run_id)) == ["1", "2", "3"]
