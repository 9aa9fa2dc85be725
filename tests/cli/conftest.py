"""Fixtures for the CLI tests: a wide, quiet console and helpers to run `stead`.

The Stead home (database and results in tmp_path) comes from the autouse `stead_home`
fixture of tests/conftest.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from stead.cli.main import app


@pytest.fixture(autouse=True)
def cli_env(stead_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # Rich tables: no wrapping or elision in assertions
    monkeypatch.setenv("STEAD_CONSOLE", "0")  # no engine lines on stderr from in-test flows
    monkeypatch.delenv("STEAD_LOG_LEVEL", raising=False)


@pytest.fixture
def stead_cli(tmp_path: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run ``python -m stead.cli.main ARGS`` in a real subprocess (cwd: tmp_path)."""

    def run(*args: str, timeout: float = 60, cwd: Path | None = None,
            **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "stead.cli.main", *args],
                              capture_output=True, text=True, timeout=timeout,
                              cwd=cwd or tmp_path, env={**os.environ, **env})

    return run


@pytest.fixture
def invoke() -> Callable[..., object]:
    """Run the CLI in this process with typer's CliRunner; returns its Result."""
    runner = CliRunner()

    def run(*args: str) -> object:
        return runner.invoke(app, list(args))

    return run
