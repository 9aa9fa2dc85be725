"""Shared fixtures: every test gets its own Stead home (database and results) in tmp_path."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from stead.core.runtime import close_stores, store_for
from stead.settings import reset_settings
from stead.store.base import Store

SCRIPTS = Path(__file__).parent / "scripts"


@pytest.fixture(autouse=True)
def stead_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh STEAD_HOME for each test, so no test sees another's runs or ~/.stead."""
    home = tmp_path / "stead-home"
    monkeypatch.setenv("STEAD_HOME", str(home))
    monkeypatch.delenv("STEAD_DATABASE_URL", raising=False)
    monkeypatch.delenv("STEAD_RESULTS_DIR", raising=False)
    close_stores()
    reset_settings()
    yield home
    close_stores()
    reset_settings()


@pytest.fixture
def store(stead_home: Path) -> Store:
    return store_for()


def script_env(home: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["STEAD_HOME"] = str(home)
    env.pop("STEAD_DATABASE_URL", None)
    env["PYTHONPATH"] = os.pathsep.join([str(SCRIPTS), env.get("PYTHONPATH", "")])
    env.update(extra)
    return env


def run_script(home: Path, name: str, *args: str, timeout: float = 120,
               **env: str) -> subprocess.CompletedProcess[str]:
    """Run tests/scripts/NAME in a fresh interpreter with the test's Stead home."""
    return subprocess.run([sys.executable, str(SCRIPTS / name), *args], capture_output=True,
                          text=True, timeout=timeout, env=script_env(home, **env))
