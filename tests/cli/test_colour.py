"""States are coloured on a terminal: STEAD_COLOR=auto|always|never, and NO_COLOR."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from stead import flow
from stead.core import console
from stead.errors import ConfigError
from stead.settings import get_settings, reset_settings

ANSI_COLOUR = re.compile(r"\x1b\[(?:\d+;)*3\dm")  # a foreground colour (31 red, 32 green, ...)


@flow
def fine() -> int:
    return 1


def _script(tmp_path: Path) -> Path:
    script = tmp_path / "job.py"
    script.write_text(textwrap.dedent("""
        from stead import flow

        @flow
        def job() -> int:
            return 1

        if __name__ == "__main__":
            job.with_options(run_id="colour-run")()
    """))
    return script


def _run(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "STEAD_COLOR")}
    return subprocess.run([sys.executable, str(_script(tmp_path))], capture_output=True,
                          text=True, timeout=60, cwd=tmp_path,
                          env={**clean, "STEAD_CONSOLE": "1", **env})


def test_console_lines_are_coloured_with_stead_color_always(tmp_path: Path) -> None:
    done = _run(tmp_path, STEAD_COLOR="always")
    assert done.returncode == 0, done.stderr
    assert "\x1b[32mCompleted\x1b[0m" in done.stderr
    assert "\x1b[36mRunning\x1b[0m" in done.stderr


@pytest.mark.parametrize("env", [{}, {"STEAD_COLOR": "never"},
                                 {"STEAD_COLOR": "auto", "NO_COLOR": "1"}])
def test_console_lines_are_plain_off_a_terminal_or_when_told(tmp_path: Path,
                                                             env: dict[str, str]) -> None:
    done = _run(tmp_path, **env)
    assert done.returncode == 0, done.stderr
    assert "Completed" in done.stderr and "\x1b[" not in done.stderr


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_auto_colours_a_terminal_unless_no_color(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STEAD_COLOR", raising=False)
    monkeypatch.delenv("NO_COLOR", raising=False)
    reset_settings()
    assert console.colour_wanted(_Terminal()) is True
    assert console.colour_wanted(io.StringIO()) is False
    monkeypatch.setenv("NO_COLOR", "1")
    assert console.colour_wanted(_Terminal()) is False
    monkeypatch.setenv("STEAD_COLOR", "always")  # an explicit choice wins over NO_COLOR
    reset_settings()
    assert console.colour_wanted(io.StringIO()) is True


def test_a_bad_stead_color_says_what_to_give(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STEAD_COLOR", "rainbow")
    reset_settings()
    with pytest.raises(ConfigError, match="auto, always, never"):
        get_settings()


def test_paint_states_colours_the_state_word_only() -> None:
    painted = console.paint_states("Flow 'etl' Failed: ValueError: Completed nothing")
    assert painted == "Flow 'etl' \x1b[1;31mFailed\x1b[0m: ValueError: Completed nothing"


def test_runs_ls_colours_states_with_stead_color_always(stead_cli) -> None:
    fine.with_options(run_id="green-run")()
    coloured = stead_cli("runs", "ls", STEAD_COLOR="always")
    assert coloured.returncode == 0, coloured.stderr
    assert "\x1b[32mCompleted" in coloured.stdout
    assert "green-run" in coloured.stdout
    for env in ({"STEAD_COLOR": "never"}, {"NO_COLOR": "1"}, {}):
        plain = stead_cli("runs", "ls", **env)
        assert plain.returncode == 0, plain.stderr
        assert not ANSI_COLOUR.search(plain.stdout), (env, plain.stdout)


def test_errors_are_red_only_when_colour_is_on(stead_cli) -> None:
    fine.with_options(run_id="some-run")()
    red = stead_cli("runs", "show", "no-such-run", STEAD_COLOR="always")
    assert red.returncode == 2 and "\x1b[" in red.stderr
    plain = stead_cli("runs", "show", "no-such-run", STEAD_COLOR="never")
    assert plain.returncode == 2 and "\x1b[" not in plain.stderr
    assert "no run with id 'no-such-run'" in plain.stderr
