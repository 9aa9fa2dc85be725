"""Loading a flow's code to resume it (or to run it in a worker) never starts another run."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from stead.core.loader import load_entrypoint, load_flow
from stead.core.runtime import store_for
from stead.errors import FlowNotLoadable
from stead.store.base import RunFilter
from tests.conftest import script_env

# The README's quickstart shape: no `if __name__ == "__main__":` guard. The first run is
# SIGKILLed in its second step; code after the module-level call must not run on resume.
UNGUARDED = '''
import os, signal
from pathlib import Path
from stead import flow, task

MARK = Path(__file__).with_name("killed-once")

@task
def double(x: int) -> int:
    return 2 * x

@task
def die_once(x: int) -> int:
    if not MARK.exists():
        MARK.write_text("killed")
        os.kill(os.getpid(), signal.SIGKILL)
    return x + 1

@flow
def unguarded(n: int) -> int:
    return die_once(double(n))

print("before the call")
unguarded(20)
print("after the call")
unguarded.enqueue(3)
'''


def write(tmp_path: Path, name: str, source: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(source))
    return path


def stead(home: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "stead.cli.main", *args], capture_output=True,
                          text=True, timeout=120, cwd=cwd, env=script_env(home))


def test_resume_of_an_unguarded_script_leaves_exactly_one_completed_run(
        stead_home: Path, tmp_path: Path) -> None:
    script = write(tmp_path, "unguarded.py", UNGUARDED)
    first = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                           timeout=120, env=script_env(stead_home))
    assert first.returncode == -9, first.stderr
    [crashed] = store_for().list_runs(RunFilter())
    assert crashed.state == "Running"  # its owner is dead: resumable

    resumed = stead(stead_home, "runs", "resume", crashed.id, cwd=tmp_path.parent)
    assert resumed.returncode == 0, resumed.stderr
    assert "result: 41" in resumed.stdout
    assert "before the call" in resumed.stdout and "after the call" not in resumed.stdout
    [run] = store_for().list_runs(RunFilter())  # no second run, no enqueued run
    assert run.id == crashed.id and run.state == "Completed" and run.resumes == 1


def test_a_flow_called_above_the_resumed_flows_definition_is_named_in_the_error(
        stead_home: Path, tmp_path: Path) -> None:
    script = write(tmp_path, "two_flows.py", '''
        from stead import flow

        @flow
        def first() -> int:
            return 1

        first()

        @flow
        def second() -> int:
            return 2
        ''')
    with pytest.raises(FlowNotLoadable) as caught:
        load_entrypoint(f"{script}:second")
    message = str(caught.value)
    assert "stopped at a call of flow 'first' at module level (line 8)" in message
    assert 'if __name__ == "__main__":' in message
    assert store_for().list_runs(RunFilter()) == []


def test_loading_a_module_that_calls_its_flow_at_import_starts_no_run(
        stead_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    package = tmp_path / "proj_pkg_loader"
    package.mkdir()
    (package / "__init__.py").write_text("")
    write(package, "jobs.py", '''
        from stead import flow

        @flow
        def job(x: int) -> int:
            return x * 3

        RESULT = job(5)
        ''')
    monkeypatch.chdir(tmp_path)
    flow_obj = load_entrypoint("proj_pkg_loader.jobs:job")
    assert store_for().list_runs(RunFilter()) == []
    module = sys.modules["proj_pkg_loader.jobs"]
    assert not hasattr(module, "RESULT")  # the import stopped at the call
    assert sys.modules["proj_pkg_loader"].jobs is module
    assert flow_obj(7) == 21  # once loaded, the flow runs as usual
    [run] = store_for().list_runs(RunFilter())
    assert load_flow(run).fn is flow_obj.fn
