"""Every command's --help shows boolean options as flags (``--force``), never ``<bool>``."""

from __future__ import annotations

import os
import subprocess
import sys

import typer

from stead.cli.main import app


def _command_paths() -> list[list[str]]:
    paths: list[list[str]] = []

    def walk(command: object, path: list[str]) -> None:
        paths.append(path)
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, [*path, name])

    walk(typer.main.get_command(app), [])
    return paths


def test_no_help_shows_a_bool_type(invoke) -> None:
    paths = _command_paths()
    assert ["runs", "prune"] in paths and ["worker", "start"] in paths
    shown = []
    for path in paths:
        result = invoke(*path, "--help")
        assert result.exit_code == 0, (path, result.output)
        assert "--help" in result.stdout
        shown += [(path, line) for line in result.stdout.splitlines() if "<bool>" in line]
    assert shown == []


def test_the_stead_command_shows_flags(tmp_path) -> None:
    done = subprocess.run([sys.executable, "-m", "stead.cli.main", "runs", "resume", "--help"],
                          capture_output=True, text=True, timeout=60, cwd=tmp_path,
                          env={**os.environ, "COLUMNS": "160"})
    assert done.returncode == 0, done.stderr
    assert "--force" in done.stdout and "<bool>" not in done.stdout


def test_flags_still_work_as_flags(invoke) -> None:
    result = invoke("runs", "prune", "--help")
    assert result.exit_code == 0
    assert "--dry-run" in result.stdout and "<bool>" not in result.stdout
    assert invoke("--version").stdout.startswith("stead ")
