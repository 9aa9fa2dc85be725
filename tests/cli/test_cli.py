"""The `stead` command line against real SQLite databases filled by real flow runs."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from stead import INPUTS, flow, get_logger, task
from stead.core.loader import load_flow
from stead.core.runtime import store_for
from stead.errors import FlowNotLoadable
from stead.store.base import RunFilter, RunRecord

# -- flows used to fill the database ---------------------------------------------------------


@task
def square(i: int) -> int:
    get_logger().info("squaring %d", i)
    return i * i


@task
def outer(i: int) -> str:
    return f"outer-{square(i)}"  # a task inside a task: step "N.1"


@flow
def summer(n: int) -> int:
    get_logger().warning("summing %d", n)
    return n * 100


@flow
def pipeline(n: int) -> dict:
    squares = [square(i) for i in range(n)]
    nested = outer(3)
    total = summer(n)
    return {"squares": squares, "nested": nested, "total": total}


@task(retries=1)
def explode(what: str) -> None:
    get_logger().error("about to explode: %s", what)
    raise ValueError(f"boom: {what}")


@flow
def fragile(what: str) -> None:
    square(2)
    explode(what)


def _rows_of(output: str, *run_ids: str) -> list[int]:
    """The line numbers of the table rows whose first cell is each of `run_ids`."""
    lines = output.splitlines()
    return [next(i for i, line in enumerate(lines) if line.split()[:1] == [run_id])
            for run_id in run_ids]


def _step_rows(output: str) -> list[str]:
    """The keys of the rows of the steps table, in printed order."""
    section = output.split("Steps (call order)", 1)[1].split("Child runs", 1)[0]
    return re.findall(r"^ ?(\d+(?:\.\d+)*)\s+\S", section, flags=re.M)


# -- ls ----------------------------------------------------------------------------------------


def test_ls_lists_runs_newest_first_with_states(stead_cli) -> None:
    pipeline.with_options(run_id="ls-ok-run")(2)
    with pytest.raises(ValueError):
        fragile.with_options(run_id="ls-bad-run")("x")

    done = stead_cli("runs", "ls")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "Traceback" not in done.stderr
    ok, child, bad = _rows_of(out, "ls-ok-run", "ls-ok-run:4", "ls-bad-run")
    assert bad < child < ok  # newest first: the child starts after its parent
    assert "Completed" in out.splitlines()[ok] and "pipeline" in out.splitlines()[ok]
    assert "Failed" in out.splitlines()[bad] and "fragile" in out.splitlines()[bad]
    child_line = out.splitlines()[child]
    assert "summer" in child_line and child_line.rstrip().endswith("ls-ok-run")  # its parent

    failed = stead_cli("runs", "ls", "--state", "failed")
    assert "ls-bad-run" in failed.stdout and "ls-ok-run" not in failed.stdout
    by_flow = stead_cli("runs", "ls", "--flow", "pipeline", "--limit", "1")
    assert "ls-ok-run" in by_flow.stdout and "ls-bad-run" not in by_flow.stdout


def test_ls_shows_generated_ids_whole(invoke) -> None:
    pipeline(1)
    run = store_for().list_runs(RunFilter())[-1]
    result = invoke("runs", "ls")
    assert result.exit_code == 0, result.output
    assert run.id in result.stdout
    assert f"{run.id}:3" in result.stdout  # the child flow run, whole as well


def test_ls_rejects_an_unknown_state(invoke) -> None:
    pipeline(1)
    result = invoke("runs", "ls", "--state", "Sleeping")
    assert result.exit_code == 2
    assert "unknown state" in result.output


# -- show --------------------------------------------------------------------------------------


def test_show_completed_run_lists_steps_in_call_order_with_results(invoke) -> None:
    pipeline.with_options(run_id="show-ok")(11)  # keys 1..11 (10 sorts after 9), 12, 12.1, 13

    result = invoke("runs", "show", "show-ok")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "Completed" in out and "pipeline" in out and "n=11" in out
    assert "'total': 1100" in out  # the run's result, decoded
    keys = _step_rows(out)
    assert keys == [str(i) for i in range(1, 13)] + ["12.1", "13"]
    lines = out.splitlines()
    row_10 = next(line for line in lines if re.match(r"^ ?10\s+square", line))
    assert row_10.rstrip().endswith("81")  # square(9) = 81: step 10's result
    assert any(re.match(r"^ ?12\s+outer\s+task", line) and "'outer-9'" in line for line in lines)
    assert any(re.match(r"^ ?12\.1\s+square", line) for line in lines)
    child_row = next(line for line in lines if re.match(r"^ ?13\s+summer\s+flow", line))
    assert "run show-ok:13" in child_row and "1100" in child_row
    assert "Child runs" in out and "State timeline" in out
    assert "Failure" not in out


@task(cache_policy=INPUTS)
def cached_double(x: int) -> int:
    return 2 * x


@flow
def fan_in(n: int) -> int:
    parts = cached_double.map(range(n))
    return square.submit(sum(p.result() for p in parts)).result() + add_up.submit(parts).result()


@task
def add_up(values: list[int]) -> int:
    return sum(values)


def test_show_marks_cached_steps_and_dependency_edges(invoke) -> None:
    fan_in.with_options(run_id="graph-1")(3)
    fan_in.with_options(run_id="graph-2")(3)
    out = invoke("runs", "show", "graph-2").stdout
    cached = [line for line in out.splitlines() if re.match(r"^ ?[123]\s+cached_double", line)]
    assert len(cached) == 3
    assert all("Cached" in line and "cached from graph-1 [" in line for line in cached)
    add_row = next(line for line in out.splitlines() if re.match(r"^ ?5\s+add_up", line))
    assert "after [1, 2, 3]" in add_row


def test_show_failed_run_shows_failing_step_exception_and_traceback(stead_cli) -> None:
    with pytest.raises(ValueError):
        fragile.with_options(run_id="show-bad")("kaboom")

    done = stead_cli("runs", "show", "show-bad")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "Failed" in out
    failure = out.split("Failure", 1)[1]
    assert "step 2 'explode' (task)" in failure
    assert "ValueError" in failure and "boom: kaboom" in failure
    assert re.search(r"Attempts\s+2", failure)
    assert "Traceback (most recent call last)" in failure
    assert 'raise ValueError(f"boom: {what}")' in failure
    assert "stead runs resume show-bad" in failure
    # the steps table: step 1 completed with its result, step 2 failed after 2 attempts
    lines = out.splitlines()
    assert any(re.match(r"^ ?1\s+square\s+task\s+Completed\s+1\s", line) for line in lines)
    assert any(re.match(r"^ ?2\s+explode\s+task\s+Failed\s+2\s", line) and "boom" in line
               for line in lines)
    assert "Attempt history" in out and "retrying in" in out


def test_show_accepts_a_prefix_even_when_the_run_has_child_runs(invoke) -> None:
    pipeline(1)  # a generated id; its child run "<id>:3" shares every prefix of it
    root = next(r for r in store_for().list_runs(RunFilter()) if r.parent_id is None)

    result = invoke("runs", "show", root.id[:12])
    assert result.exit_code == 0, result.output
    assert root.id in result.stdout
    child = invoke("runs", "show", f"{root.id[:12]}:3")  # a prefix of the root, then the key
    assert child.exit_code == 0, child.output
    assert f"{root.id}:3" in child.stdout and "summer" in child.stdout


def test_unknown_run_id_is_one_red_line_and_exit_code_2(stead_cli) -> None:
    pipeline(1)
    for command in (["runs", "show"], ["logs"], ["runs", "resume"]):
        done = stead_cli(*command, "no-such-run")
        assert done.returncode == 2, (command, done.stdout, done.stderr)
        assert done.stderr.startswith("error: no run with id 'no-such-run'")
        assert len(done.stderr.strip().splitlines()) == 1
        assert "Traceback" not in done.stderr + done.stdout


def test_ambiguous_prefix_is_a_clear_error(stead_cli) -> None:
    square_flow = pipeline.with_options(run_id="dup-aaa")
    square_flow(1)
    pipeline.with_options(run_id="dup-bbb")(1)

    done = stead_cli("runs", "show", "dup-")
    assert done.returncode == 2
    assert "'dup-' matches 2 runs (dup-aaa, dup-bbb)" in done.stderr
    assert "give more characters" in done.stderr
    assert "Traceback" not in done.stderr

    one = stead_cli("runs", "show", "dup-b")
    assert one.returncode == 0 and "dup-bbb" in one.stdout


def test_a_missing_database_is_an_error_and_is_not_created(stead_cli, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "stead.db"
    for args in (["runs", "ls", "--db", str(missing)],
                 ["--db", f"sqlite:///{missing}", "runs", "ls"]):
        done = stead_cli(*args)
        assert done.returncode == 2
        assert done.stderr.startswith(f"error: no Stead database at {missing}")
    assert not missing.exists()


def test_db_option_reads_another_database(stead_cli, tmp_path: Path) -> None:
    other = tmp_path / "other.db"
    pipeline.with_options(run_id="elsewhere", database_url=f"sqlite:///{other}")(1)
    pipeline.with_options(run_id="default-db")(1)

    done = stead_cli("runs", "ls", "--db", f"sqlite:///{other}")
    assert "elsewhere" in done.stdout and "default-db" not in done.stdout
    top = stead_cli("--db", str(other), "runs", "show", "elsewhere")
    assert top.returncode == 0 and "elsewhere" in top.stdout
    assert "elsewhere" not in stead_cli("runs", "ls").stdout


def test_bad_settings_are_reported_without_a_traceback(stead_cli) -> None:
    done = stead_cli("runs", "ls", STEAD_PARAM_MAX="lots")
    assert done.returncode == 2
    assert done.stderr.startswith("error: STEAD_PARAM_MAX='lots' is not a whole number")


# -- logs --------------------------------------------------------------------------------------


def test_logs_prints_the_stored_lines_oldest_first(stead_cli) -> None:
    with pytest.raises(ValueError):
        fragile.with_options(run_id="logged")("fuse")

    done = stead_cli("logs", "logged")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 3
    assert re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} INFO\s+\[1\] squaring 2$", lines[0])
    assert re.search(r"ERROR\s+\[2\] about to explode: fuse$", lines[1])
    assert re.search(r"ERROR\s+\[2\] about to explode: fuse$", lines[2])  # the retry

    errors_only = stead_cli("logs", "logged", "--level", "error")
    assert len(errors_only.stdout.splitlines()) == 2
    bad_level = stead_cli("logs", "logged", "--level", "LOUD")
    assert bad_level.returncode == 2 and "unknown level" in bad_level.stderr


def test_logs_of_a_flow_body_and_of_a_child_run(invoke) -> None:
    pipeline.with_options(run_id="parent-logs")(1)
    result = invoke("logs", "parent-logs:3")
    assert result.exit_code == 0, result.output
    assert re.search(r"WARNING\s+\[flow\] summing 1", result.stdout)
    empty = invoke("logs", "parent-logs", "--level", "CRITICAL")
    assert empty.exit_code == 0 and "no log lines at this level" in empty.stderr


FOLLOW_SCRIPT = """
import sys, time
from stead import flow, get_logger, task

@task
def tick(i: int) -> int:
    get_logger().info("tick %d", i)
    time.sleep(0.3)
    return i

@flow
def ticker(n: int) -> int:
    for i in range(n):
        tick(i)
    get_logger().warning("done ticking")
    return n

if __name__ == "__main__":
    ticker.with_options(run_id=sys.argv[1])(int(sys.argv[2]))
"""


@pytest.mark.slow
def test_logs_follow_prints_new_lines_until_the_run_ends(stead_cli, tmp_path: Path) -> None:
    script = tmp_path / "ticker.py"
    script.write_text(FOLLOW_SCRIPT)
    proc = subprocess.Popen([sys.executable, str(script), "follow-me", "6"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while True:  # wait until the run is recorded
            done = stead_cli("runs", "show", "follow-me")
            if done.returncode == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert done.returncode == 0, done.stderr
        following = stead_cli("logs", "follow-me", "--follow", timeout=60)
        assert proc.wait(timeout=60) == 0, proc.stderr.read() if proc.stderr else ""
    finally:
        proc.kill()
        proc.wait()
    assert following.returncode == 0, following.stderr
    messages = [line.split("] ", 1)[1] for line in following.stdout.splitlines()]
    assert messages == [f"tick {i}" for i in range(6)] + ["done ticking"]
    assert "is Completed; stopped following" in following.stderr


# -- resume ------------------------------------------------------------------------------------

CRASH_SCRIPT = """
import dataclasses, os, sys
from pathlib import Path
from stead import flow, get_logger, task

SIDE = Path(__file__).with_name("side-effects.txt")

@dataclasses.dataclass
class Point:
    x: int
    y: int

@task
def work(i: int) -> Point:
    with SIDE.open("a") as f:
        f.write(f"{i}\\n")
    get_logger().info("work %d", i)
    if i == 3 and os.environ.get("CRASH_AT_3") == "1":
        os._exit(1)  # like SIGKILL: nothing is recorded, the run stays Running
    return Point(i, i * i)

@flow
def crashy(n: int, origin: Point) -> int:
    points = [work(i) for i in range(n)]
    assert all(isinstance(p, Point) for p in points)  # replayed results are Points again
    return sum(p.y for p in points) + origin.x

if __name__ == "__main__":
    print(crashy.with_options(run_id=sys.argv[1])(int(sys.argv[2]), Point(0, 0)))
"""


@pytest.mark.slow
def test_resume_of_a_crashed_run_completes_it_without_rerunning_finished_steps(
        stead_cli, tmp_path: Path) -> None:
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    script = scripts / "crashy.py"
    script.write_text(CRASH_SCRIPT)
    side = scripts / "side-effects.txt"
    first = subprocess.run([sys.executable, str(script), "crash-run", "5"], capture_output=True,
                           text=True, timeout=60, env={**os.environ, "CRASH_AT_3": "1"})
    assert first.returncode == 1, first.stderr
    assert side.read_text().split() == ["0", "1", "2", "3"]

    listed = stead_cli("runs", "ls")
    assert re.search(r"crash-run\s+crashy\s+Crashed\?", listed.stdout), listed.stdout
    crashed = stead_cli("logs", "crash-run", "--follow", timeout=30)  # must not hang
    assert "Running (process gone); stopped following" in crashed.stderr
    shown = stead_cli("runs", "show", "crash-run")
    assert "Running (process gone)" in shown.stdout and "Point(x=2, y=4)" in shown.stdout

    resumed = stead_cli("runs", "resume", "crash-run")  # cwd is not the script's folder
    assert resumed.returncode == 0, resumed.stderr
    assert "Resuming run crash-run of flow 'crashy'" in resumed.stdout
    assert "3 finished steps will be reused" in resumed.stdout
    assert "Run crash-run Completed" in resumed.stdout and "result: 30" in resumed.stdout
    # steps 0-2 were not run again; step 3 (in flight at the crash) and 4 ran
    assert side.read_text().split() == ["0", "1", "2", "3", "3", "4"]

    store = store_for()
    run = store.get_run("crash-run")
    assert run.state == "Completed" and run.resumes == 1
    states = [change.state for change in store.run_history("crash-run")]
    assert states == ["Running", "Crashed", "Running", "Completed"]
    # Steps recorded by the CLI's resume name the script's classes as __main__, like the
    # original process did, so the script itself can still read them.
    assert '"c":"__main__:Point"' in store.load_steps("crash-run")["5"].result
    again = stead_cli("runs", "resume", "crash-run")
    assert again.returncode == 0 and "already Completed" in again.stdout


FAILING_SCRIPT = """
from stead import flow, task

@task
def always_fails() -> None:
    raise RuntimeError("still broken")

@flow
def doomed() -> None:
    always_fails()

if __name__ == "__main__":
    doomed.with_options(run_id="doomed-run")()
"""


@pytest.mark.slow
def test_resume_of_a_run_that_fails_again_exits_1_with_the_error(stead_cli,
                                                                 tmp_path: Path) -> None:
    script = tmp_path / "doomed.py"
    script.write_text(FAILING_SCRIPT)
    subprocess.run([sys.executable, str(script)], capture_output=True, timeout=60)
    assert store_for().get_run("doomed-run").state == "Failed"

    done = stead_cli("runs", "resume", "doomed-run")
    assert done.returncode == 1
    assert "Run doomed-run Failed in step 1: RuntimeError: still broken" in done.stderr
    assert store_for().get_run("doomed-run").resumes == 1


def test_resume_of_a_standalone_task_run_says_what_it_is(stead_cli, tmp_path: Path) -> None:
    script = tmp_path / "lonely.py"
    script.write_text("from stead import task\n\n@task\ndef lonely() -> None:\n"
                      "    raise RuntimeError('broken')\n\nlonely()\n")
    subprocess.run([sys.executable, str(script)], capture_output=True, timeout=60)
    runs = store_for().list_runs(RunFilter(limit=10))
    assert [(r.flow_name, r.state) for r in runs] == [("lonely", "Failed")]

    done = stead_cli("runs", "resume", runs[0].id)
    assert done.returncode == 2  # refused, as for a child run
    assert "is a standalone task run (task 'lonely' called outside a flow)" in done.stderr
    assert store_for().get_run(runs[0].id).resumes == 0  # nothing was attempted


MODULE_FLOW = """
import os
from pathlib import Path
from stead import flow, task

@task
def record(i: int) -> int:
    with Path(os.environ["SIDE_FILE"]).open("a") as f:
        f.write(f"{i}\\n")
    if i == 2 and os.environ.get("FAIL_AT_2") == "1":
        raise RuntimeError("not yet")
    return i

@flow
def counted(n: int) -> int:
    return sum(record(i) for i in range(n))
"""


@pytest.mark.slow
def test_resume_imports_a_flow_module_from_the_working_directory(stead_cli,
                                                                 tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "counting.py").write_text(MODULE_FLOW)
    side = tmp_path / "side.txt"
    env = {**os.environ, "SIDE_FILE": str(side)}
    first = subprocess.run(
        [sys.executable, "-c", "import counting; counting.counted.with_options("
                               "run_id='module-run')(4)"],
        cwd=project, capture_output=True, text=True, timeout=60,
        env={**env, "FAIL_AT_2": "1"})
    assert "RuntimeError: not yet" in first.stderr
    run = store_for().get_run("module-run")
    assert (run.state, run.entrypoint, run.script_path) == ("Failed", "counting:counted", None)

    elsewhere = stead_cli("runs", "resume", "module-run", SIDE_FILE=str(side))
    assert elsewhere.returncode == 2
    assert "module 'counting' is not importable from" in elsewhere.stderr

    done = stead_cli("runs", "resume", "module-run", cwd=project, SIDE_FILE=str(side))
    assert done.returncode == 0, done.stderr
    assert "result: 6" in done.stdout
    assert side.read_text().split() == ["0", "1", "2", "2", "3"]  # 0 and 1 were reused


@pytest.mark.slow
def test_resume_refuses_a_run_whose_process_is_alive(stead_cli, tmp_path: Path) -> None:
    script = tmp_path / "ticker.py"
    script.write_text(FOLLOW_SCRIPT)
    proc = subprocess.Popen([sys.executable, str(script), "busy-run", "40"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while stead_cli("runs", "show", "busy-run").returncode != 0:
            assert time.monotonic() < deadline, "the run was never recorded"
            time.sleep(0.1)
        done = stead_cli("runs", "resume", "busy-run")
        assert done.returncode == 2
        assert "which is alive" in done.stderr and "Resuming" not in done.stdout
        listed = stead_cli("runs", "ls")
        assert re.search(r"busy-run\s+ticker\s+Running", listed.stdout)
    finally:
        proc.kill()
        proc.wait()
    # killed: the run is still recorded as Running, and now shown as crashed
    assert re.search(r"busy-run\s+ticker\s+Crashed\?", stead_cli("runs", "ls").stdout)


def test_resume_explains_a_script_that_is_gone(stead_cli, tmp_path: Path) -> None:
    script = tmp_path / "gone.py"
    script.write_text(FAILING_SCRIPT)
    subprocess.run([sys.executable, str(script)], capture_output=True, timeout=60)
    script.unlink()
    done = stead_cli("runs", "resume", "doomed-run")
    assert done.returncode == 2
    assert "defined in the script" in done.stderr and "no longer exists" in done.stderr
    assert "Traceback" not in done.stderr


def test_resume_of_a_child_run_points_to_the_top_level_run(stead_cli) -> None:
    with pytest.raises(ValueError):
        fragile.with_options(run_id="has-no-children")("x")
    pipeline.with_options(run_id="with-child")(1)
    store = store_for()
    child = store.get_run("with-child:3")
    child.state = "Failed"  # pretend the child failed, so it is not already Completed
    store.transition_run(child, "Failed", time.time(), "test")
    done = stead_cli("runs", "resume", "with-child:3")
    assert done.returncode == 2
    assert "child run of with-child" in done.stderr and "stead runs resume with-child" in \
        done.stderr


# -- the flow loader ---------------------------------------------------------------------------


def _run(entrypoint: str, script: str | None = None) -> RunRecord:
    return RunRecord(id="r1", flow_name="f", state="Failed", entrypoint=entrypoint,
                     script_path=script)


def test_load_flow_imports_the_recorded_module(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_flow(_run(f"{__name__}:pipeline")) is pipeline
    with pytest.raises(FlowNotLoadable, match="no 'renamed'"):
        load_flow(_run(f"{__name__}:renamed"))
    with pytest.raises(FlowNotLoadable, match="not a stead flow"):
        load_flow(_run(f"{__name__}:square"))
    with pytest.raises(FlowNotLoadable, match="'no_such_module' is not importable"):
        load_flow(_run("no_such_module:f"))


def test_load_flow_refuses_flows_defined_inside_functions() -> None:
    with pytest.raises(FlowNotLoadable, match="flows defined inside functions cannot be resumed"):
        load_flow(_run(f"{__name__}:make.<locals>.inner"))


@pytest.fixture
def isolated_imports(monkeypatch: pytest.MonkeyPatch) -> None:
    """Undo what loading a script does to this process: sys.path, sys.modules, aliases."""
    from stead.core import serialization

    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setattr(sys, "modules", dict(sys.modules))
    monkeypatch.setattr(serialization, "_module_aliases", dict(serialization._module_aliases))
    monkeypatch.setattr(serialization, "_class_cache", {})


def test_load_flow_imports_a_script_as_its_own_module(tmp_path: Path,
                                                      isolated_imports: None) -> None:
    script = tmp_path / "flows_script.py"
    script.write_text(textwrap.dedent("""
        from stead import flow
        RAN_MAIN = False

        @flow
        def scripted() -> int:
            return 1

        if __name__ == "__main__":
            RAN_MAIN = True
    """))
    loaded = load_flow(_run("__main__:scripted", str(script)))
    assert loaded.name == "scripted"
    module = sys.modules["__stead_main__"]
    assert module.RAN_MAIN is False  # the script's main block did not run
    broken = tmp_path / "broken.py"
    broken.write_text("raise RuntimeError('cannot import me')\n")
    with pytest.raises(FlowNotLoadable, match="RuntimeError: cannot import me"):
        load_flow(_run("__main__:scripted", str(broken)))


# -- help and version --------------------------------------------------------------------------


def test_version_and_help_with_examples(invoke) -> None:
    version = invoke("--version")
    assert version.exit_code == 0 and version.stdout.startswith("stead ")
    for command in ([], ["runs"], ["runs", "ls"], ["runs", "show"], ["runs", "resume"],
                    ["logs"]):
        result = invoke(*command, "--help")
        assert result.exit_code == 0, (command, result.output)
        assert "Example" in result.stdout, command
