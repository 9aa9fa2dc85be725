"""Ctrl-C (SIGINT) ends `stead` with one line and exit code 130, never a traceback."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path


def _interrupt(args: list[str], *, after_s: float, cwd: Path,
               wait_for: str | None = None) -> subprocess.CompletedProcess[str]:
    """Start ``python -m stead.cli.main ARGS``, send SIGINT after `after_s` (or once stderr
    shows `wait_for`), and return how it ended."""
    proc = subprocess.Popen([sys.executable, "-m", "stead.cli.main", *args], cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "STEAD_CONSOLE": "1"})
    time.sleep(after_s)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def test_interrupt_while_the_cli_imports_is_one_line(tmp_path: Path) -> None:
    """A Ctrl-C while the CLI still imports Typer, Rich and its commands (the first tenths
    of a second of every command), made deterministic: the signal arrives between the
    package and the command modules, as `stead` (argv[0]) imports them."""
    code = ("import os, signal, sys; sys.argv = ['stead']; import stead.cli; "
            "os.kill(os.getpid(), signal.SIGINT); import stead.cli.main")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, cwd=tmp_path)
    assert done.returncode == 130, done.stderr
    assert done.stderr == "interrupted\n"


def test_importing_the_cli_elsewhere_leaves_sigint_alone(tmp_path: Path) -> None:
    """Tests and programs that import stead.cli keep Python's KeyboardInterrupt."""
    code = ("import os, signal, stead.cli\n"
            "try:\n    os.kill(os.getpid(), signal.SIGINT)\n"
            "except KeyboardInterrupt:\n    print('caught')")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, cwd=tmp_path)
    assert done.stdout == "caught\n", done.stderr


def test_interrupt_of_logs_follow(tmp_path: Path) -> None:
    from stead.core.process import current_owner
    from stead.core.runtime import store_for
    from stead.store.base import RunRecord

    store = store_for()
    now = time.time()
    store.create_run(RunRecord(id="live-run", flow_name="f", state="Running", created_at=now,
                               started_at=now, attempts=1, owner=current_owner()),
                     "started")  # this process owns it: alive, so --follow keeps following
    done = _interrupt(["logs", "live-run", "--follow"], after_s=2.5, cwd=tmp_path)
    assert done.returncode == 130, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1] == "interrupted"


def test_interrupt_of_the_scheduler(tmp_path: Path) -> None:
    done = _interrupt(["scheduler", "start", "--every", "0.2"], after_s=3, cwd=tmp_path)
    assert done.returncode == 130, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1] == "interrupted"


def test_interrupt_of_a_resumed_run_says_how_to_resume_again(tmp_path: Path) -> None:
    script = tmp_path / "slow.py"
    script.write_text(textwrap.dedent("""
        import time
        from stead import flow, task

        @task
        def nap() -> None:
            time.sleep(60)

        @flow
        def slow() -> None:
            nap()

        if __name__ == "__main__":
            slow.with_options(run_id="slow-run")()
    """))
    first = subprocess.Popen([sys.executable, str(script)], cwd=tmp_path,
                             stderr=subprocess.PIPE, text=True)
    time.sleep(3)
    first.kill()  # a crash: the run stays Running with a dead owner
    first.communicate(timeout=30)
    done = _interrupt(["runs", "resume", "slow-run"], after_s=4, cwd=tmp_path)
    assert done.returncode == 130, done.stderr
    assert "Traceback" not in done.stderr
    assert "stead runs resume slow-run" in done.stderr
