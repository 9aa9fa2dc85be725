"""`stead logs` prints lines in time order, merging steps and child runs."""

from __future__ import annotations

import itertools
import re
import time

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stead import flow, get_logger, task
from stead.cli.logs import sort_lines
from stead.core.runtime import store_for
from stead.store.base import LogRecord, RunRecord

_ids = itertools.count()
STAMP = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}) ")


def _new_run() -> str:
    run_id = f"logs-run-{next(_ids)}"
    now = time.time()
    store_for().create_run(RunRecord(id=run_id, flow_name="f", state="Completed",
                                     created_at=now, started_at=now, ended_at=now,
                                     attempts=1), "started")
    return run_id


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.permutations(range(12)), st.lists(st.sampled_from([None, "1", "2", "10", "2.1"]),
                                            min_size=12, max_size=12))
def test_lines_stored_out_of_order_are_printed_in_time_order(invoke, order: list[int],
                                                            keys: list[str | None]) -> None:
    """Lines are stored in the order the run's lock was taken, not the order they were
    logged: `stead logs` sorts them by time. Line i was logged at base + i * 10 ms."""
    run_id = _new_run()
    base = 1_800_000_000.0
    store_for().append_logs([LogRecord(run_id, keys[i], base + i * 0.01, 20, f"line {i}")
                             for i in order])
    result = invoke("logs", run_id)
    assert result.exit_code == 0, result.output
    printed = [int(n) for n in re.findall(r"line (\d+)$", result.stdout, flags=re.M)]
    assert printed == list(range(12))


def test_sort_lines_breaks_ties_by_step_position_then_storage_order() -> None:
    lines = [("", LogRecord("r", "10", 5.0, 20, "ten", id=1)),
             ("", LogRecord("r", "2", 5.0, 20, "two", id=2)),
             ("", LogRecord("r", None, 5.0, 20, "flow", id=3)),
             ("", LogRecord("r", "2", 5.0, 20, "two again", id=4)),
             ("", LogRecord("r", "1", 4.0, 20, "first", id=5))]
    assert [line.message for _, line in sort_lines(lines)] == [
        "first", "flow", "two", "two again", "ten"]


@task
def chatty(i: int) -> int:
    for n in range(5):
        get_logger().info("task %d line %d", i, n)
        time.sleep(0.002)
    return i


@flow
def fan_out() -> int:
    return sum(f.result() for f in chatty.map(range(8)))


def test_lines_of_concurrent_tasks_come_out_in_time_order(invoke) -> None:
    fan_out.with_options(run_id="fan-out-run")()
    result = invoke("logs", "fan-out-run")
    assert result.exit_code == 0, result.output
    stamps = [m[1] for m in map(STAMP.match, result.stdout.splitlines()) if m]
    assert len(stamps) == 40
    assert stamps == sorted(stamps)


@flow
def child() -> int:
    get_logger().info("in the child")
    return 1


@flow
def parent() -> int:
    get_logger().info("parent before")
    time.sleep(0.01)
    value = child()
    time.sleep(0.01)
    get_logger().info("parent after")
    return value


def test_a_runs_logs_include_its_child_runs_in_time_order(invoke) -> None:
    parent.with_options(run_id="parent-run")()
    result = invoke("logs", "parent-run")
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    assert [line.rsplit("] ", 1)[1] for line in lines] == [
        "parent before", "in the child", "parent after"]
    assert "[1:flow] in the child" in lines[1]  # the child run of step 1
