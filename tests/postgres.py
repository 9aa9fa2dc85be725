"""A PostgreSQL server for the tests: the one named by STEAD_TEST_POSTGRES_URL, else one
answering on 127.0.0.1:5432, else a throwaway cluster started here from the installed
binaries (initdb + pg_ctl, on a free port, fsync off) and stopped at the end of the session.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable

import psycopg

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def _answers(url: str) -> bool:
    try:
        with psycopg.connect(url, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
        return True
    except psycopg.Error:
        return False


def _binaries() -> str:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return os.path.dirname(found[-1])
    initdb = shutil.which("initdb")
    if initdb:
        return os.path.dirname(initdb)
    raise RuntimeError("no PostgreSQL server answers and no initdb is installed: install the "
                       "server (apt-get install -y postgresql) or set STEAD_TEST_POSTGRES_URL")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_postgres_user(cmd: list[str]) -> list[str]:
    """initdb and postgres refuse to run as root: run them as the 'postgres' user then."""
    if os.geteuid() != 0:
        return cmd
    return ["runuser", "-u", "postgres", "--", *cmd]


def start_server() -> tuple[str, Callable[[], None]]:
    """An admin URL of a server for the tests, and a function that stops it if we started it."""
    url = os.environ.get("STEAD_TEST_POSTGRES_URL")
    if url:
        return url, lambda: None
    if _answers(DEFAULT_URL):
        return DEFAULT_URL, lambda: None
    cluster = Cluster()
    return cluster.url, cluster.stop


class Cluster:
    """A throwaway PostgreSQL cluster of our own: tests may restart it (never a shared one)."""

    def __init__(self) -> None:
        self.bindir = _binaries()
        self.data = tempfile.mkdtemp(prefix="stead-pg-")
        if os.geteuid() == 0:
            shutil.chown(self.data, "postgres", "postgres")
        port = _free_port()
        subprocess.run(_as_postgres_user([f"{self.bindir}/initdb", "-D", self.data, "-U",
                                          "postgres", "--auth=trust", "-E", "UTF8"]),
                       check=True, capture_output=True)
        self.options = (f"-p {port} -k {self.data} -c listen_addresses=127.0.0.1 "
                        "-c fsync=off -c max_connections=300")
        self._ctl("start")
        self.url = f"postgresql://postgres@127.0.0.1:{port}/postgres"

    def _ctl(self, action: str, *extra: str) -> None:
        subprocess.run(_as_postgres_user([f"{self.bindir}/pg_ctl", "-D", self.data, "-o",
                                          self.options, "-w", "-l", f"{self.data}/server.log",
                                          *extra, action]), check=True, capture_output=True)

    def restart(self, down_for: float = 0.0) -> None:
        """Stop the server (ending every session), wait `down_for` seconds, start it again."""
        self._ctl("stop", "-m", "fast")
        time.sleep(down_for)
        self._ctl("start")

    def stop(self) -> None:
        subprocess.run(_as_postgres_user([f"{self.bindir}/pg_ctl", "-D", self.data, "-m",
                                          "immediate", "stop"]), capture_output=True)
        shutil.rmtree(self.data, ignore_errors=True)


def database_url(admin_url: str, name: str) -> str:
    return admin_url.rsplit("/", 1)[0] + f"/{name}"


def create_database(admin_url: str, name: str, template: str | None = None) -> str:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        clause = f' TEMPLATE "{template}"' if template else ""
        conn.execute(f'CREATE DATABASE "{name}"{clause}')
    return database_url(admin_url, name)


def drop_database(admin_url: str, name: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
