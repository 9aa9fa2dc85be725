"""The lean route of the store verbs (server/store_rpc.py `StoreRoute`) and the lean client
(store/http.py): the route answers what the FastAPI route answered, byte for byte, with the
same keys, roles, guards and audit rows, without going through FastAPI's routing; the client
keeps one connection, survives the server closing it while idle, and needs no httpx."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stead.server.apikeys import new_api_key
from stead.server.app import create_app
from stead.server.store_rpc import StoreRoute
from stead.store import wire
from stead.store.audit import AuditFilter, audit_log
from stead.store.base import Fence, RunRecord, StepRecord, Store
from stead.store.http import HttpStore

pytestmark = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)


def _serve(app: Any) -> tuple[str, Callable[[], None]]:
    """`app` served by uvicorn on a free loopback port, in a thread of this process."""
    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the server did not start"
        time.sleep(0.01)

    def stop() -> None:
        server.should_exit = True
        thread.join(10)

    return f"http://127.0.0.1:{port}", stop


def _without_fast_route(app: Any) -> Any:
    """The same app with the store verbs left to the FastAPI route (as before StoreRoute)."""
    app.user_middleware = [m for m in app.user_middleware if m.cls is not StoreRoute]
    return app


class CountingRouter:
    """Wraps the FastAPI router: how many HTTP requests reached it."""

    def __init__(self, app: Any) -> None:
        self.app, self.calls = app, 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.calls += scope["type"] == "http"
        await self.app(scope, receive, send)


@pytest.fixture(autouse=True)
def run_1(db: Store) -> None:
    db.create_run(RunRecord(id="run-1", flow_name="f", state="Pending", params="{}",
                            created_at=time.time(), queue="etl"))


@pytest.fixture
def keys(db: Store) -> dict[str, str]:
    made = {}
    for name, role in [("admin", "admin"), ("reader", "reader"), ("worker", "worker"),
                       ("webhook", "webhook"), ("revoked", "operator")]:
        key, record = new_api_key(name, time.time(), role=role,
                                  namespaces=("*",) if role == "admin" else ("default",))
        db.create_api_key(record)
        if name == "revoked":
            db.revoke_api_key(record.id, time.time())
        made[name] = key
    made["unknown"] = "stead_" + "x" * 40
    return made


@pytest.fixture
def both(db: Store) -> Iterator[dict[str, str]]:
    """Two servers over the test's database, both requiring keys: `fast` (create_app as it
    is) and `routed` (the FastAPI route only)."""
    fast, stop_fast = _serve(create_app(db, require_auth=True))
    routed, stop_routed = _serve(_without_fast_route(create_app(db, require_auth=True)))
    yield {"fast": fast, "routed": routed}
    stop_fast()
    stop_routed()


def _answer(base: str, verb: str, body: bytes, headers: dict[str, str]
            ) -> tuple[int, Any, str | None]:
    """The status, the body and the WWW-Authenticate header of a store call's answer."""
    response = httpx.post(f"{base}/api/v1/store/{verb}", content=body, headers=headers,
                          timeout=30)
    try:
        content: Any = response.json()
    except ValueError:
        content = response.text
    return response.status_code, content, response.headers.get("www-authenticate")


STEP = StepRecord(run_id="run-1", key="1", name="step", kind="task", state="Completed",
                  attempts=1, started_at=1.0, ended_at=2.0, result="1")
CASES: list[tuple[str, str, bytes, dict[str, str]]] = [
    # (who, verb, body, extra headers)
    ("admin", "get_run", wire.dumps({"args": ["run-1"]}), {}),
    ("admin", "get_run", wire.dumps({"args": ["no-such-run"]}), {}),
    ("admin", "list_queues", b"", {}),
    ("admin", "get_run", b"{not json", {}),
    ("admin", "get_run", wire.dumps({"args": [1, 2, 3]}), {}),
    ("admin", "get_run", wire.dumps({"args": [], "kwargs": {"nope": 1}}), {}),
    ("admin", "get_run", wire.dumps({"oops": []}), {}),
    ("admin", "no_such_verb", b"{}", {}),
    ("admin", "create_api_key", b"{}", {}),  # local only: not a store verb
    ("admin", "get_run", b'{"args": ["run-1"]}', {"Content-Type": "text/plain"}),
    ("admin", "get_run", b'{"args": ["run-1"]}', {"Origin": "https://evil.example"}),
    ("admin", "get_run", b'{"args": ["run-1"]}', {"Host": "evil.example"}),
    ("reader", "get_run", wire.dumps({"args": ["run-1"]}), {}),
    ("reader", "cancel_run", wire.dumps({"args": ["run-1", 1.0, "no"]}), {}),
    ("reader", "record_step", wire.dumps({"args": [STEP, None, None]}), {}),
    ("worker", "record_step", wire.dumps({"args": [STEP, None, Fence("run-1", 9)]}), {}),
    ("worker", "get_run", wire.dumps({"args": ["run-1"]}), {}),
    ("webhook", "list_queues", b"{}", {}),
    ("revoked", "list_queues", b"{}", {}),
    ("unknown", "list_queues", b"{}", {}),
    (None, "list_queues", b"{}", {}),
    ("basic", "list_queues", b"{}", {}),  # not a Bearer key: no key at all
]


def _headers(who: str | None, keys: dict[str, str], extra: dict[str, str]
             ) -> dict[str, str]:
    headers = {"Content-Type": "application/json"}
    if who == "basic":
        headers["Authorization"] = "Basic dXNlcjpwYXNz"
    elif who is not None:
        headers["Authorization"] = f"Bearer {keys[who]}"
    return {**headers, **extra}


def test_the_fast_route_answers_what_the_fastapi_route_answered(
        both: dict[str, str], keys: dict[str, str], db: Store) -> None:
    for who, verb, body, extra in CASES:
        headers = _headers(who, keys, extra)
        fast = _answer(both["fast"], verb, body, headers)
        routed = _answer(both["routed"], verb, body, headers)
        assert fast == routed, (who, verb, body, extra)
    # The answers above include each kind of refusal, so the comparison means something.
    statuses = {_answer(both["fast"], v, b, _headers(w, keys, e))[0] for w, v, b, e in CASES}
    assert {200, 400, 401, 403, 404, 415, 421} <= statuses


def test_oversized_bodies_are_refused_alike(both: dict[str, str], keys: dict[str, str]
                                            ) -> None:
    headers = _headers("admin", keys, {})
    big = b'{"args": ["' + b"x" * (65 * 1024 * 1024) + b'"]}'

    def streamed() -> Iterator[bytes]:  # no Content-Length: counted as it comes
        for start in range(0, len(big), 1 << 20):
            yield big[start:start + (1 << 20)]

    for base in (both["fast"], both["routed"]):
        declared = httpx.post(f"{base}/api/v1/store/get_run", content=big, headers=headers,
                              timeout=60)
        assert declared.status_code == 413, declared.text
        chunked = httpx.post(f"{base}/api/v1/store/get_run", content=streamed(),
                             headers=headers, timeout=60)
        assert chunked.status_code == 413, chunked.text
        assert chunked.json()["error"]["type"] == "BodyTooLarge"


def test_the_audit_log_records_the_fast_route_as_the_fastapi_route(
        both: dict[str, str], keys: dict[str, str], db: Store) -> None:
    def rows_for(base: str) -> list[tuple[Any, ...]]:
        since = time.time()
        for who, verb, body, extra in CASES:
            _answer(base, verb, body, _headers(who, keys, extra))
        created = wire.dumps({"args": [RunRecord(
            id=f"made-{base[-5:]}", flow_name="f", state="Pending", params="{}",
            created_at=time.time(), queue="etl")]})
        _answer(base, "create_run", created, _headers("admin", keys, {}))
        deadline = time.monotonic() + 10
        while True:  # the rows are written by the audit thread, in batches
            rows = audit_log(db).list_audit(AuditFilter(since=since, limit=500))
            if len(rows) >= 15 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        time.sleep(1.0)  # and the last batch
        rows = audit_log(db).list_audit(AuditFilter(since=since, limit=500))
        return sorted(((r.key_name, r.role, r.method, r.action,
                        r.target if not (r.target or "").startswith("made-") else "made",
                        r.outcome, r.detail) for r in rows), key=repr)

    fast = rows_for(both["fast"])
    routed = rows_for(both["routed"])
    assert fast == routed
    assert ("admin", "admin", "POST", "store.create_run", "made", 200, None) in fast
    assert any(r[5] == 401 for r in fast) and any(r[5] == 403 for r in fast)


def test_store_verbs_do_not_go_through_fastapis_routing(db: Store) -> None:
    app = create_app(db, require_auth=False)
    counter = CountingRouter(app.router)
    app.router = counter  # type: ignore[assignment]
    base, stop = _serve(app)
    try:
        store = HttpStore(base, timeout=30)
        for _ in range(20):
            assert store.get_run("run-1").id == "run-1"
        assert counter.calls == 0
        httpx.get(f"{base}/api/v1/runs")  # every other request still goes to FastAPI
        assert counter.calls == 1
        store.close()
    finally:
        stop()


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(verb=st.sampled_from(sorted(wire.VERBS)) | st.text(max_size=20),
       body=st.binary(max_size=200) | st.recursive(
           st.none() | st.booleans() | st.integers() | st.text(max_size=10),
           lambda inner: st.lists(inner, max_size=4)
           | st.dictionaries(st.sampled_from(["args", "kwargs", "__tuple__", "__record__",
                                              "run_id", "x"]), inner, max_size=3),
           max_leaves=10).map(lambda v: json.dumps(v).encode()))
def test_any_call_of_a_reader_is_answered_alike(both: dict[str, str], keys: dict[str, str],
                                                verb: str, body: bytes) -> None:
    # A reader changes nothing, so both servers see the same database for every example.
    if "/" in verb or "?" in verb or "#" in verb or "%" in verb or not verb.isprintable():
        verb = "get_run"
    headers = _headers("reader", keys, {})
    assert (_answer(both["fast"], verb, body, headers)
            == _answer(both["routed"], verb, body, headers))


class Relay:
    """A TCP relay in front of a server: how many connections it accepted, and the size of
    each chunk it read from its clients."""

    def __init__(self, port: int) -> None:
        self.port, self.accepted, self.segments = port, 0, []
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen()
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _relay(self, src: socket.socket, dst: socket.socket, count: bool) -> None:
        try:
            while chunk := src.recv(1 << 16):
                if count:
                    self.segments.append(len(chunk))
                dst.sendall(chunk)
        except OSError:
            pass
        dst.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            self.accepted += 1
            upstream = socket.create_connection(("127.0.0.1", self.port))
            for args in ((client, upstream, True), (upstream, client, False)):
                threading.Thread(target=self._relay, args=args, daemon=True).start()

    def close(self) -> None:
        self.listener.close()


@pytest.fixture
def relay(db: Store) -> Iterator[Relay]:
    base, stop = _serve(create_app(db, require_auth=False))
    relay = Relay(int(base.rsplit(":", 1)[1]))
    yield relay
    relay.close()
    stop()


def test_one_connection_and_one_write_per_request(relay: Relay) -> None:
    """Every call goes over the same kept connection, headers and body in one segment."""
    store = HttpStore(relay.url, timeout=30)
    for _ in range(30):
        store.get_run("run-1")
        time.sleep(0.002)  # one request at a time reaches the relay
    assert relay.accepted == 1
    assert len(relay.segments) == 30  # httpx wrote headers and body apart: up to 60
    store.close()


def test_a_forked_child_opens_its_own_connection(relay: Relay) -> None:
    import os

    store = HttpStore(relay.url, timeout=30)
    store.get_run("run-1")
    pid = os.fork()
    if pid == 0:  # the child: its parent's socket must not carry its requests
        try:
            code = 0 if store.get_run("run-1").id == "run-1" else 1
        except BaseException:
            code = 2
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert store.get_run("run-1").id == "run-1"  # the parent's connection still works
    assert relay.accepted == 2
    store.close()


def test_a_connection_closed_while_idle_is_not_an_outage(db: Store) -> None:
    """uvicorn closes idle keep-alive connections after 5 s: the next call opens a new one
    at once, without the backoff (and the worker's outage signal) of an unreachable server."""
    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(db, require_auth=False),
                                           host="127.0.0.1", port=port, log_level="warning",
                                           timeout_keep_alive=1))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    try:
        store = HttpStore(f"http://127.0.0.1:{port}", timeout=30)
        store.get_run("run-1")
        time.sleep(1.5)  # the server has closed our connection
        store.get_run("run-1")
        assert store.unreachable_at == float("-inf")
        store.close()
    finally:
        server.should_exit = True
        thread.join(10)


def test_remote_mode_needs_no_httpx(db: Store, tmp_path: Path) -> None:
    base, stop = _serve(create_app(db, require_auth=False))
    script = (
        "import sys; sys.modules['httpx'] = None\n"  # import httpx now fails
        "from stead.store.http import HttpStore\n"
        f"print(HttpStore({base!r}, timeout=30).get_run('run-1').state)\n")
    try:
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                              timeout=60, env=_env_without_proxies())
    finally:
        stop()
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "Pending"


def _env_without_proxies() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}


def test_an_http_proxy_in_the_environment_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    """Through a proxy the requests go through httpx (which follows the proxy settings);
    a host NO_PROXY names, or no proxy at all, is reached directly."""
    from stead.store.http import DirectTransport, ProxyTransport, transport_for

    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    assert isinstance(transport_for("http://stead.internal:4300", {}, 5), DirectTransport)
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    assert isinstance(transport_for("https://stead.internal", {}, 5), ProxyTransport)
    assert isinstance(transport_for("http://stead.internal", {}, 5), DirectTransport)
    monkeypatch.setenv("ALL_PROXY", "http://proxy.internal:3128")
    assert isinstance(transport_for("http://stead.internal", {}, 5), ProxyTransport)
    monkeypatch.setenv("NO_PROXY", "stead.internal")
    assert isinstance(transport_for("http://stead.internal:4300", {}, 5), DirectTransport)
