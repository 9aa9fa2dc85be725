"""A real `stead server start` process per test, on the test's database (SQLite or a fresh
PostgreSQL database, see the `backend` fixture), spoken to over real HTTP with httpx."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from stead.core.runtime import store_for
from stead.settings import get_settings
from stead.store.base import Store
from tests.conftest import SCRIPTS, script_env

if str(SCRIPTS) not in sys.path:
    sys.path.insert(0, str(SCRIPTS))

START_TIMEOUT_S = 60.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def client(self, key: str | None = None, **kwargs: object) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        headers.update(kwargs.pop("headers", None) or {})  # type: ignore[call-overload]
        return httpx.Client(base_url=self.url, headers=headers, timeout=30,
                            **kwargs)  # type: ignore[arg-type]

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def start_server(home: Path, log: Path, *args: str, services: bool = False) -> Server:
    """Start `stead server start` (with --no-services unless `services`) on a free port;
    wait until /health answers."""
    for _ in range(3):  # another process may take the free port before the server binds it
        port = free_port()
        env = script_env(home, STEAD_DATABASE_URL=get_settings().database_url,
                         STEAD_CONSOLE="0")
        with open(log, "ab") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "stead.cli.main", "server", "start", "--port", str(port),
                 *([] if services else ["--no-services"]), *args], stdout=out,
                stderr=subprocess.STDOUT, env=env, start_new_session=True)
        server = Server(f"http://127.0.0.1:{port}", process, log)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline and process.poll() is None:
            try:
                if httpx.get(f"{server.url}/health", timeout=1).status_code == 200:
                    return server
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        stop_server(server)
        if "address already in use" not in server.output().lower():
            break
    raise AssertionError(f"the server did not start:\n{server.output()}")


def stop_server(server: Server) -> None:
    if server.process.poll() is None:
        server.process.send_signal(signal.SIGTERM)
        try:
            server.process.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(server.process.pid, signal.SIGKILL)
            server.process.wait(5)


@pytest.fixture
def db(backend: str) -> Store:
    """The test's store (the same database the server serves)."""
    return store_for()


@pytest.fixture
def serve(db: Store, stead_home: Path, tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """Start servers on the test's database: serve(), serve("--require-auth"), or
    serve(services=True) for one that runs its background services. The database is made
    here first (`db`), so the server does not migrate it as it starts."""
    started: list[Server] = []

    def start(*args: str, services: bool = False) -> Server:
        server = start_server(stead_home, tmp_path / f"server-{len(started)}.log", *args,
                              services=services)
        started.append(server)
        return server

    yield start
    for server in started:
        stop_server(server)


@pytest.fixture
def server(serve: Callable[..., Server]) -> Server:
    """A server that needs no API key (loopback)."""
    return serve()
