"""Run ids are shown whole: in `runs ls`, `runs show`, and the engine's console lines.

Custom ids such as "nightly-2026-11-21" and "nightly-2026-11-22" share long prefixes, so any
cut (12 characters in tables, 8 in console lines, once) names several runs.
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from stead import flow, task

NIGHTLY = ("nightly-2026-11-21", "nightly-2026-11-22")
SCHEDULED = "every5@2026-11-21T18:05:00+00:00"  # the shape of a schedule's run ids


@task
def double(x: int) -> int:
    return 2 * x


@flow
def nightly(x: int) -> int:
    return double(x)


def _record(*run_ids: str) -> None:
    for run_id in run_ids:
        nightly.with_options(run_id=run_id)(1)


@pytest.mark.parametrize("columns", ["200", "80"])
def test_ls_shows_ids_sharing_a_long_prefix_whole(stead_cli, columns: str) -> None:
    _record(*NIGHTLY, SCHEDULED)
    done = stead_cli("runs", "ls", COLUMNS=columns)
    assert done.returncode == 0, done.stderr
    for run_id in (*NIGHTLY, SCHEDULED):
        assert run_id in done.stdout, done.stdout
    assert max(len(line) for line in done.stdout.splitlines()) <= int(columns)


def test_ls_folds_an_id_wider_than_the_screen_without_losing_characters(stead_cli) -> None:
    long_id = "backfill-" + "x" * 40 + "-end"
    _record(long_id)
    done = stead_cli("runs", "ls", COLUMNS="40")
    assert done.returncode == 0, done.stderr
    rows = done.stdout.split("─\n", 1)[1].splitlines()  # the lines under the header's rule
    run_cells = "".join(line.split()[0] for line in rows if line.strip())
    assert long_id in run_cells, done.stdout


def test_show_with_an_ambiguous_prefix_lists_the_candidates(stead_cli) -> None:
    _record(*NIGHTLY)
    for command in ("show", "resume"):
        done = stead_cli("runs", command, "nightly-2026")
        assert done.returncode == 2
        assert NIGHTLY[0] in done.stderr and NIGHTLY[1] in done.stderr, done.stderr
        assert "Traceback" not in done.stderr
    shown = stead_cli("runs", "show", NIGHTLY[1])
    assert shown.returncode == 0 and f"Run {NIGHTLY[1]}" in shown.stdout


def test_show_names_child_runs_whole(stead_cli) -> None:
    @flow
    def parent() -> int:
        return nightly(2)

    parent.with_options(run_id=NIGHTLY[0])()
    done = stead_cli("runs", "show", NIGHTLY[0])
    assert done.returncode == 0, done.stderr
    assert f"{NIGHTLY[0]}:1" in done.stdout


def test_console_lines_carry_the_whole_custom_id(tmp_path: Path, stead_cli) -> None:
    script = tmp_path / "job.py"
    script.write_text(textwrap.dedent("""
        from stead import flow

        @flow
        def job() -> int:
            raise ValueError("boom")

        if __name__ == "__main__":
            try:
                job.with_options(run_id="nightly-2026-11-21")()
            except ValueError:
                pass
    """))
    import subprocess

    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=60, cwd=tmp_path, env=_env(STEAD_CONSOLE="1"))
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert lines and all("| job/nightly-2026-11-21 |" in line for line in lines), lines
    assert "(stead runs show nightly-2026-11-21)" in done.stderr


def _env(**extra: str) -> dict[str, str]:
    import os

    return {**os.environ, **extra}
