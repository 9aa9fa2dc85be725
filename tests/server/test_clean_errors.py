"""Malformed input and failures answer clean errors over real HTTP: a store verb called with
arguments of the wrong type or shape is a 400 naming the argument (never a 500), an
unexpected exception is a logged 500 that says nothing more, and no message tells where the
database is (its file, its folder, a PostgreSQL URL or password) or carries a traceback."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from stead.errors import StoreError
from stead.server.errors import clean_message, database_locations
from stead.server.store_rpc import run_verb
from stead.store import open_store
from stead.store.base import RunFilter, Store
from stead.store.http import HttpStore
from tests.conftest import serve_in_thread


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Store]]:
    """A real server in this process over a real SQLite file under tmp_path."""
    store = open_store(f"sqlite:///{tmp_path / 'private-folder' / 'stead.db'}")
    url, stop = serve_in_thread(store, require_auth=False)
    try:
        yield url, store
    finally:
        stop()
        store.close()


def call(url: str, verb: str, body: bytes) -> httpx.Response:
    return httpx.post(f"{url}/api/v1/store/{verb}", content=body,
                      headers={"Content-Type": "application/json"}, timeout=30)


def bad_request(response: httpx.Response) -> str:
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "BadRequest"
    return str(error["message"])


FILTER = '{"__record__": "RunFilter", %s}'
RUN = '{"__record__": "RunRecord", "id": "r1", "flow_name": "f", "state": "Pending"%s}'


def test_wrong_typed_store_arguments_are_400_naming_them(served: tuple[str, Store]) -> None:
    url, store = served
    cases = {
        ("list_runs", '{"args": [%s]}' % (FILTER % '"limit": "10"')):
            "list_runs: argument flt.limit must be an int, got str",
        ("list_runs", '{"args": [%s]}' % (FILTER % '"limit": true')):
            "list_runs: argument flt.limit must be an int, got bool",
        ("list_runs", '{"args": [%s]}' % (FILTER % '"state": ["Running"]')):
            "list_runs: argument flt.state must be a str or a tuple of str or None, got list",
        ("list_runs", '{"args": [%s]}' % (FILTER % '"limit": 18446744073709551615')):
            "list_runs: argument flt.limit is an int out of the 64-bit range",
        ("create_run", '{"args": [%s]}' % (RUN % ', "attempts": "many"')):
            "create_run: argument run.attempts must be an int, got str",
        ("create_run", '{"args": [%s]}' % (RUN % ', "params": {"x": 1}')):
            "create_run: argument run.params must be a str, got dict",
        ("get_run", '{"args": ["a\\u0000b"]}'):
            "get_run: argument run_id contains a NUL character",
        ("get_run", '{"args": [1]}'): "get_run: argument run_id must be a str, got int",
        ("get_run", '{"args": []}'): "get_run: missing a required argument: 'run_id'",
        ("get_run", '{"args": ["a", "b"]}'): "get_run: too many positional arguments",
        ("set_queue", '{"args": ["q"], "kwargs": {"concurrency_limit": 3, "limit": 3}}'):
            "set_queue: got an unexpected keyword argument 'limit'",
        ("record_steps", '{"args": [[{"__tuple__": [{"__record__": "StepRecord", "run_id": '
                         '"r", "key": "1", "name": "t", "kind": "task", "state": '
                         '"Completed", "attempts": 1.5}, null]}]]}'):
            "record_steps: argument batch[0][0].attempts must be an int, got float",
    }
    for (verb, body), message in cases.items():
        assert bad_request(call(url, verb, body.encode())).startswith(message), (verb, body)
    shapes = {
        b"[1, 2]": "the body must be an object",
        b'{"args": "run-1"}': '"args" must be a list, not a str',
        b'{"kwargs": [["run_id", "x"]]}': '"kwargs" must be an object, not a list',
        b'{"args": [], "arg": ["x"]}': "not 'arg'",
        b'{"args": [{"__record__": "Nope"}]}': "unknown record type 'Nope'",
        b'{"args": [{"__record__": 7}]}': "unknown record type '7'",
        b'{"args": [%s]}' % (FILTER % '"limt": 3').encode(): "RunFilter has no field 'limt'",
        b'{"args": [{"__record__": "Fence", "run_id": "r"}]}':
            "Fence is missing its field 'epoch'",
        b'{"args": [{"__tuple__": "ab"}]}': "a tuple on the wire is",
        b"{not json": "not JSON",
        b'"\xff"': "not JSON",
    }
    for body, message in shapes.items():
        assert message in bad_request(call(url, "get_run", body)), body
    assert store.list_runs(RunFilter()) == []  # nothing reached the database
    # The remote store raises the server's refusal as a StoreError saying what was wrong.
    remote = HttpStore(url)
    try:
        with pytest.raises(StoreError, match=r"flt\.limit must be an int"):
            remote.list_runs(RunFilter(limit="10"))  # type: ignore[arg-type]
    finally:
        remote.close()


def test_unexpected_exceptions_are_a_logged_500_saying_nothing(
        caplog: pytest.LogCaptureFixture) -> None:
    class Broken:  # a store verb with a bug (not a stand-in for a store's behaviour)
        url = "sqlite:////srv/secret/stead.db"

        def list_limits(self) -> None:
            raise KeyError("/srv/secret/stead.db: internal detail")

    with caplog.at_level(logging.ERROR, logger="stead.server"):
        answer = run_verb(Broken(), "list_limits", b"")
    assert answer.status_code == 500
    assert b"secret" not in answer.body and b"Traceback" not in answer.body
    assert b"the server's log has the details" in answer.body
    assert "internal detail" in caplog.text and "Traceback" in caplog.text


def test_no_error_message_says_where_the_database_is(served: tuple[str, Store]) -> None:
    url, store = served
    path = Path(store.url.removeprefix("sqlite:///"))
    store.list_runs(RunFilter())
    store.close()  # every connection goes: the next ones open the damaged file
    with open(path, "wb") as damaged:
        damaged.write(b"not a database " * 1000)
    for name in ("stead.db-wal", "stead.db-shm"):
        (path.parent / name).unlink(missing_ok=True)
    # The store itself says which file (for the person at the server's console)...
    with pytest.raises(StoreError, match=str(path)):
        store.list_runs(RunFilter())
    store.close()
    answers = [httpx.get(f"{url}/api/v1/runs", timeout=30),
               httpx.get(f"{url}/ready", timeout=30),
               call(url, "list_runs", b'{"args": [{"__record__": "RunFilter"}]}')]
    for answer in answers:
        assert answer.status_code == 503, answer.text
        error = answer.json()["error"]
        # ... the API's clients hear what happened, not where.
        assert "file is not a database" in error["message"], error
        for secret in (str(path), str(path.parent), "private-folder", "Traceback"):
            assert secret not in answer.text, (secret, answer.text)
    assert answers[0].json()["error"]["message"].startswith("the Stead database cannot be used")


def test_database_locations_are_scrubbed_from_messages() -> None:
    url = "postgresql://stead:hunter2@db.internal:5432/runs"
    message = ("cannot connect to PostgreSQL at postgresql://stead@db.internal:5432/runs: "
               "password 'hunter2' refused (postgresql://stead:hunter2@db.internal:5432/runs)"
               "\nTraceback (most recent call last):\n  File \"/srv/app.py\", line 1")
    cleaned = clean_message(message, database_locations(url))
    assert cleaned == ("cannot connect to PostgreSQL at the database: password 'the "
                       "database' refused (the database)")
    sqlite = database_locations("sqlite:////home/ada/.stead/stead.db")
    assert clean_message("free space on the disk holding /home/ada/.stead, then retry "
                         "/home/ada/.stead/stead.db", sqlite) == (
        "free space on the disk holding the database's folder, then retry the database")
    assert clean_message("is /x the same?", database_locations("sqlite:///x.db")) == (
        "is /x the same?")
    assert os.sep == "/"  # the paths above are POSIX ones
