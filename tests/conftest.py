"""Shared fixtures: every test gets its own Stead home (database and results) in tmp_path."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
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


@pytest.fixture(scope="session")
def postgres_admin() -> Iterator[str]:
    """An admin URL of a PostgreSQL server (found, or started for this session)."""
    from tests.postgres import start_server

    url, stop = start_server()
    yield url
    stop()


@pytest.fixture(scope="session")
def postgres_template(postgres_admin: str) -> Iterator[str]:
    """A database with the Stead schema, cloned for each test (cheap isolation)."""
    from stead.store.postgres import PostgresStore
    from tests.postgres import create_database, drop_database

    name = f"stead_template_{os.getpid()}"
    PostgresStore(create_database(postgres_admin, name)).close()
    yield name
    drop_database(postgres_admin, name)


_counter = iter(range(1_000_000))


@pytest.fixture(params=["sqlite", "postgres", "http"])
def backend(request: pytest.FixtureRequest, stead_home: Path,
            monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Run the test on SQLite, on a fresh PostgreSQL database, and in remote mode: through
    a real HTTP server (on loopback, in a thread) over a fresh SQLite database."""
    if request.param == "sqlite":
        yield "sqlite"
        return
    if request.param == "http":
        yield from _remote_backend(stead_home, monkeypatch)
        return
    from tests.postgres import create_database, drop_database

    admin = request.getfixturevalue("postgres_admin")
    template = request.getfixturevalue("postgres_template")
    name = f"stead_test_{os.getpid()}_{next(_counter)}"
    monkeypatch.setenv("STEAD_DATABASE_URL", create_database(admin, name, template))
    close_stores()
    reset_settings()
    yield "postgres"
    close_stores()
    drop_database(admin, name)


def script_env(home: Path, **extra: str) -> dict[str, str]:
    """The environment of a script run by a test: its Stead home and database (if set)."""
    env = dict(os.environ)
    env["STEAD_HOME"] = str(home)
    env["PYTHONPATH"] = os.pathsep.join([str(SCRIPTS), env.get("PYTHONPATH", "")])
    env.update(extra)
    return env


def run_script(home: Path, name: str, *args: str, timeout: float = 120,
               **env: str) -> subprocess.CompletedProcess[str]:
    """Run tests/scripts/NAME in a fresh interpreter with the test's Stead home."""
    return subprocess.run([sys.executable, str(SCRIPTS / name), *args], capture_output=True,
                          text=True, timeout=timeout, env=script_env(home, **env))


def serve_in_thread(store: Store, *, require_auth: bool) -> tuple[str, Callable[[], None]]:
    """A real Stead server over `store` on a free loopback port, in a thread of this process;
    its URL and a function that stops it."""
    import socket
    import threading
    import time

    import uvicorn

    from stead.server.app import create_app

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(store, require_auth=require_auth),
                                           host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="test-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test's Stead server did not start")
        time.sleep(0.01)

    def stop() -> None:
        server.should_exit = True
        thread.join(10)

    return f"http://127.0.0.1:{port}", stop


def _remote_backend(home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    from stead.store import open_store

    backing = open_store(f"sqlite:///{home / 'server.db'}")
    url, stop = serve_in_thread(backing, require_auth=False)
    monkeypatch.setenv("STEAD_DATABASE_URL", url)
    close_stores()
    reset_settings()
    yield "http"
    close_stores()
    stop()
    backing.close()
