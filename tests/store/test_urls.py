"""Database URLs: one convention (SQLAlchemy's), the resolved path shown, and a PostgreSQL
server that is not there failing a command with one line."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stead.errors import ConfigError, StoreError
from stead.store import open_store
from stead.store.urls import parse_database_url
from tests.postgres import _free_port

SCRIPT = """
import stead

@stead.flow
def hello(name: str) -> str:
    return "hi " + name

hello("there")
"""


def stead(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "stead.cli.main", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "COLUMNS": "200", **env})


# -- the convention ----------------------------------------------------------------------
def test_three_slashes_are_relative_to_the_current_directory_and_four_absolute() -> None:
    here = Path("/home/me/project")
    assert parse_database_url("sqlite:///data/x.db", cwd=here).path == here / "data/x.db"
    assert parse_database_url("sqlite:////srv/x.db", cwd=here).path == Path("/srv/x.db")
    assert parse_database_url("data/x.db", cwd=here).path == here / "data/x.db"
    assert parse_database_url("/srv/x.db", cwd=here).path == Path("/srv/x.db")
    assert parse_database_url("sqlite:///../x.db", cwd=here).path == Path("/home/me/x.db")
    home = Path("~").expanduser()
    assert parse_database_url("sqlite:///~/s.db", cwd=here).path == home / "s.db"
    assert parse_database_url("sqlite:///data/x.db", cwd=here).url == \
        "sqlite:////home/me/project/data/x.db"
    assert parse_database_url("sqlite:///data/x.db", cwd=here).describe() == \
        "sqlite /home/me/project/data/x.db"


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///", "sqlite:///:memory:", ":memory:",
                                 "sqlite:///:memory:?cache=shared"])
def test_an_in_memory_database_is_refused_saying_why(url: str) -> None:
    with pytest.raises(ConfigError, match=r"in-memory SQLite.*outlive the process.*"
                                          r"sqlite:////ABSOLUTE/PATH\.db"):
        parse_database_url(url)


@pytest.mark.parametrize(("url", "why"), [
    ("sqlite:/x.db", "not an SQLite URL"), ("sqlite:x.db", "not an SQLite URL"),
    ("sqlite://host/x.db", "names a host"), ("sqlite:///x.db?mode=ro", "query options"),
    ("mysql://u@h/db", "scheme 'mysql' is not supported"), ("", "empty"),
])
def test_other_malformed_urls_say_what_to_write(url: str, why: str) -> None:
    with pytest.raises(ConfigError, match=why) as raised:
        parse_database_url(url)
    assert "sqlite:///" in str(raised.value)


def test_a_postgresql_url_is_described_without_its_password() -> None:
    where = parse_database_url("postgresql://app:s3cret@db.internal:6543/stead")
    assert where.kind == "postgresql" and where.describe() == \
        "postgresql app@db.internal:6543/stead"


segment = st.text(alphabet="abcxyz_-.0123456789", min_size=1, max_size=8).filter(
    lambda s: s not in (".", ".."))


@given(parts=st.lists(segment, min_size=1, max_size=4))
def test_every_form_of_one_file_resolves_to_the_same_absolute_path(parts: list[str]) -> None:
    cwd = Path("/work/here")
    rel = "/".join(parts)
    forms = [f"sqlite:///{rel}", rel, f"sqlite:////work/here/{rel}", f"/work/here/{rel}",
             f"sqlite:///./{rel}"]
    paths = {parse_database_url(form, cwd=cwd).path for form in forms}
    assert paths == {cwd.joinpath(*parts)}
    again = parse_database_url(parse_database_url(f"sqlite:///{rel}", cwd=cwd).url, cwd=Path("/"))
    assert again.path == cwd.joinpath(*parts)  # the resolved URL no longer depends on the cwd


# -- through real processes ----------------------------------------------------------------
def test_a_relative_url_is_found_from_its_directory_and_named_elsewhere(tmp_path: Path) -> None:
    project, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    project.mkdir()
    elsewhere.mkdir()
    (project / "hello.py").write_text(SCRIPT)
    env = {**os.environ, "STEAD_DATABASE_URL": "sqlite:///data/x.db", "STEAD_CONSOLE": "0"}
    subprocess.run([sys.executable, "hello.py"], cwd=project, env=env, check=True, timeout=120)
    db = project / "data" / "x.db"
    assert db.exists()

    here = stead("runs", "ls", cwd=project, STEAD_DATABASE_URL="sqlite:///data/x.db")
    assert here.returncode == 0 and "hello" in here.stdout
    assert f"store: sqlite {db}" in here.stdout

    absolute = stead("runs", "ls", "--db", f"sqlite:///{db}", cwd=elsewhere)
    assert absolute.returncode == 0 and "hello" in absolute.stdout
    assert f"store: sqlite {db}" in absolute.stdout

    lost = stead("runs", "ls", cwd=elsewhere, STEAD_DATABASE_URL="sqlite:///data/x.db")
    assert lost.returncode == 2
    assert f"no Stead database at {elsewhere / 'data' / 'x.db'}" in lost.stderr
    assert f"relative to the current directory, {elsewhere}" in lost.stderr
    assert not (elsewhere / "data").exists()  # a read never creates a database


def test_an_empty_listing_names_the_resolved_file(tmp_path: Path) -> None:
    open_store(str(tmp_path / "empty.db")).close()
    listed = stead("runs", "ls", "--db", "sqlite:///empty.db", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert f"No runs in sqlite {tmp_path / 'empty.db'}." in listed.stdout


def test_sqlite_with_two_slashes_is_one_clear_line(tmp_path: Path) -> None:
    done = stead("runs", "ls", "--db", "sqlite://", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "in-memory SQLite database" in done.stderr


# -- a PostgreSQL server that is not there ---------------------------------------------------
@pytest.mark.parametrize("command", [("runs", "ls"), ("workers", "ls"), ("db", "status")])
def test_a_command_on_a_closed_postgresql_port_fails_with_one_line(
        tmp_path: Path, command: tuple[str, ...]) -> None:
    port = _free_port()
    url = f"postgresql://stead:pw@127.0.0.1:{port}/stead"
    started = time.monotonic()
    done = stead(*command, "--db", url, cwd=tmp_path)
    took = time.monotonic() - started
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert f"127.0.0.1:{port}" in lines[0] and "start the server" in lines[0]
    assert "pw" not in lines[0] and "pool" not in lines[0]
    print(f"{' '.join(command)} on a closed port failed in {took:.2f} s")


def test_a_service_keeps_trying_until_its_wait_is_over() -> None:
    from stead.store.postgres import connect

    port = _free_port()
    started = time.monotonic()
    with pytest.raises(StoreError, match=rf"127\.0\.0\.1:{port} \(Connection refused; "
                                         r"tried for 1\.5 s\)"):
        connect(f"postgresql://postgres@127.0.0.1:{port}/x", 1.5)
    assert time.monotonic() - started >= 1.2  # retried, not given up at the first refusal


def test_a_server_that_comes_up_within_the_wait_is_used(postgres_admin: str) -> None:
    """A TCP relay to the real server that starts listening 1 s late: the open waits."""
    import socket
    import threading

    from psycopg.conninfo import conninfo_to_dict

    from stead.store.postgres import connect

    info = conninfo_to_dict(postgres_admin)
    target = (str(info.get("host") or "127.0.0.1"), int(info.get("port") or 5432))
    port = _free_port()

    def pipe(a: socket.socket, b: socket.socket) -> None:
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass
        finally:
            b.close()

    def relay() -> None:
        time.sleep(1.0)
        with socket.create_server(("127.0.0.1", port)) as server:
            client, _ = server.accept()
            upstream = socket.create_connection(target)
            threading.Thread(target=pipe, args=(client, upstream), daemon=True).start()
            pipe(upstream, client)

    threading.Thread(target=relay, daemon=True).start()
    url = postgres_admin.replace(f"{target[0]}:{target[1]}", f"127.0.0.1:{port}")
    assert url != postgres_admin
    with connect(url, 10.0) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_a_wrong_database_name_is_refused_at_once_without_waiting(postgres_admin: str,
                                                                 tmp_path: Path) -> None:
    url = postgres_admin.rsplit("/", 1)[0] + "/stead_no_such_database"
    started = time.monotonic()
    done = stead("runs", "ls", "--db", url, cwd=tmp_path, STEAD_CLI_WAIT_SECONDS="60")
    assert time.monotonic() - started < 30  # not the 60 s a server that is down gets
    assert done.returncode == 2
    line = done.stderr.strip()
    assert len(line.splitlines()) == 1
    assert 'database "stead_no_such_database" does not exist' in line
    assert "Check the user, password and database name" in line
