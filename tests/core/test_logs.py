"""The run logger and print capture: lines are stored with their run and step."""

from __future__ import annotations

from stead import flow, get_logger, task
from stead.store.base import RunFilter


def test_logger_lines_are_stored_with_run_and_step(store, capsys) -> None:
    @task
    def work(n: int) -> int:
        get_logger().info("working on %d", n)
        return n

    @flow
    def f() -> None:
        get_logger().warning("starting")
        work(1)
        work(2)

    f()
    [run] = store.list_runs(RunFilter())
    lines = [(g.step_key, g.level, g.message) for g in store.read_logs(run.id)]
    assert lines == [(None, 30, "starting"), ("1", 20, "working on 1"),
                     ("2", 20, "working on 2")]
    assert "working on 2" in capsys.readouterr().err


def test_failure_logs_include_the_exception(store) -> None:
    @flow
    def f() -> None:
        try:
            raise ValueError("bad row 7")
        except ValueError:
            get_logger().exception("could not parse")

    f()
    [run] = store.list_runs(RunFilter())
    [line] = store.read_logs(run.id)
    assert "could not parse" in line.message and "ValueError: bad row 7" in line.message


def test_print_capture_is_opt_in(store, capsys) -> None:
    @task
    def shout() -> None:
        print("from a task")

    @flow(log_prints=True)
    def captured() -> None:
        print("hello", "world")
        shout()

    @flow
    def plain() -> None:
        print("not captured")

    captured()
    plain()
    runs = {r.flow_name: r for r in store.list_runs(RunFilter())}
    assert [(g.step_key, g.message) for g in store.read_logs(runs["captured"].id)] == [
        (None, "hello world"), ("1", "from a task")]
    assert store.read_logs(runs["plain"].id) == []
    assert "not captured" in capsys.readouterr().out


def test_console_prints_one_line_per_state_change(store, capsys) -> None:
    @task(retries=1)
    def flaky(state={"n": 0}) -> None:  # noqa: B006 - call counter
        state["n"] += 1
        if state["n"] == 1:
            raise OSError("disk hiccup")

    @flow
    def f() -> None:
        flaky()

    f()
    err = capsys.readouterr().err.splitlines()
    assert any("Flow 'f' Running" in line for line in err)
    assert any("Task 'flaky' [1] Retrying: attempt 1 failed: OSError: disk hiccup" in line
               for line in err)
    assert any("Flow 'f' Completed" in line for line in err)
    assert len(err) == 3
