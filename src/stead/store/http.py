"""The store of a remote process: every verb is one HTTP request to a Stead server, which runs
it on its database (`server/store_rpc.py`). A worker or a flow on another machine needs only
the server's URL and an API key; its code and its result files stay on its side.

    STEAD_DATABASE_URL=https://stead.example.com  STEAD_API_KEY=stead_...  stead worker start

A remote flow makes one request per checkpoint, so the request is kept lean: one keep-alive
HTTP/1.1 connection per thread, headers and body in one write (made without per-request URL
or header objects), the answer read by the standard library's http.client; a connection the
server closed while it was idle is replaced before it is used. Through an HTTP proxy
(HTTP_PROXY, HTTPS_PROXY, ALL_PROXY and NO_PROXY, as httpx reads them) requests go through
httpx instead. Concurrent steps are already batched by the engine's group commit (one
`record_steps` request per batch). Requests that fail to reach the server are retried with
backoff for up to STEAD_STORE_RETRY_SECONDS, as the PostgreSQL store does; the verbs are
idempotent (upserts, compare-and-set) so a retry is safe.
"""

from __future__ import annotations

import http.client
import os
import select
import socket
import ssl
import threading
import time
import urllib.request
import weakref
from typing import Any
from urllib.parse import urlsplit

import orjson

from stead.errors import ConfigError, StoreError
from stead.settings import get_settings
from stead.store import wire
from stead.store.waits import after_park

RETRY_CAP_S = 0.5  # the longest pause between two attempts of a request during an outage
PATH = "/api/v1/store/"


class Unreachable(Exception):
    """A request that did not get an answer from the server (connection refused, reset,
    timed out, or an answer that is not HTTP)."""


class DirectTransport:
    """POSTs over one keep-alive HTTP/1.1 connection per thread: the request (headers made
    once, but Content-Length) in one write, the answer read by http.client's parser.

    Example:
        >>> direct = DirectTransport("http://127.0.0.1:4300", {}, 60.0)
        >>> direct.post("/api/v1/store/list_queues", b"{}")  # doctest: +SKIP
        (200, b'[]')
    """

    def __init__(self, url: str, headers: dict[str, str], timeout: float) -> None:
        parts = urlsplit(url)
        self.https = parts.scheme == "https"
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or (443 if self.https else 80)
        self.prefix = parts.path.rstrip("/")  # a server behind a path, e.g. https://h/stead
        self.timeout = timeout
        netloc = parts.netloc.rpartition("@")[2]
        default = ":443" if self.https else ":80"
        lines = [f"Host: {netloc.removesuffix(default)}", "Accept-Encoding: identity",
                 *(f"{k}: {v}" for k, v in headers.items())]
        self._head = ("\r\n".join(lines) + "\r\nContent-Length: ").encode("latin-1")
        self._context = ssl.create_default_context() if self.https else None
        self._local = threading.local()
        _TRANSPORTS.add(self)

    def _forget_after_fork(self) -> None:
        """In a forked child: its parent's connections are not its own to talk over."""
        self._local = threading.local()

    def _socket(self) -> tuple[socket.socket, bool]:
        """This thread's connection, and whether it is new."""
        sock: socket.socket | None = getattr(self._local, "sock", None)
        if sock is not None and _closed_by_peer(sock):
            self._drop()  # the server closed it while idle (its keep-alive timeout)
            sock = None
        if sock is not None:
            return sock, False
        try:
            sock = socket.create_connection((self.host, self.port), self.timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self._context is not None:
                sock = self._context.wrap_socket(sock, server_hostname=self.host)
        except OSError as exc:
            raise Unreachable(str(exc) or type(exc).__name__) from exc
        self._local.sock = sock
        return sock, True

    def _drop(self) -> None:
        sock = getattr(self._local, "sock", None)
        self._local.sock = None
        if sock is not None:
            sock.close()

    def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        """The status and body of the answer to POST `path`; Unreachable if none came."""
        request = b"POST %s HTTP/1.1\r\n%s%d\r\n\r\n%s" % (
            (self.prefix + path).encode("latin-1"), self._head, len(body), body)
        for attempt in (1, 2):
            sock, fresh = self._socket()
            try:
                sock.sendall(request)
                response = http.client.HTTPResponse(sock, method="POST")
                response.begin()
                content = response.read()
            except (OSError, http.client.HTTPException) as exc:
                self._drop()
                # A kept connection can die between our check and our write: try once more
                # on a new one before calling the server unreachable.
                if fresh or attempt == 2 or not isinstance(
                        exc, (ConnectionError, http.client.RemoteDisconnected)):
                    raise Unreachable(str(exc) or type(exc).__name__) from exc
                continue
            if response.will_close:
                self._drop()
            return response.status, content
        raise AssertionError("not reached")  # pragma: no cover

    def close(self) -> None:
        self._drop()
        self._local = threading.local()


_TRANSPORTS: weakref.WeakSet[DirectTransport] = weakref.WeakSet()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=lambda: [t._forget_after_fork() for t in _TRANSPORTS])


def _closed_by_peer(sock: Any) -> bool:
    """Whether an idle kept connection has something to read: the server's close (or junk),
    either way not a connection to send the next request on."""
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)


class ProxyTransport:
    """POSTs through httpx, which follows the proxy settings of the environment."""

    def __init__(self, url: str, headers: dict[str, str], timeout: float) -> None:
        try:
            import httpx
        except ImportError:
            raise ConfigError("remote mode through an HTTP proxy needs httpx: "
                              "pip install httpx") from None
        self._httpx = httpx
        self.url, self.headers, self.timeout = url, headers, timeout
        self._local = threading.local()

    def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        client = getattr(self._local, "client", None)
        if client is None:
            client = self._local.client = self._httpx.Client(
                base_url=self.url, headers=self.headers, timeout=self.timeout)
        try:
            response = client.post(path, content=body)
        except self._httpx.TransportError as exc:
            raise Unreachable(str(exc) or type(exc).__name__) from exc
        return response.status_code, response.content

    def close(self) -> None:
        client = getattr(self._local, "client", None)
        if client is not None:
            client.close()
        self._local = threading.local()


def transport_for(url: str, headers: dict[str, str], timeout: float
                  ) -> DirectTransport | ProxyTransport:
    """The transport for `url`: through httpx when the environment names a proxy for it,
    else direct."""
    parts = urlsplit(url)
    proxies = urllib.request.getproxies_environment()
    proxy = proxies.get(parts.scheme) or proxies.get("all")
    if proxy and not urllib.request.proxy_bypass_environment(parts.netloc, proxies):
        return ProxyTransport(url, headers, timeout)
    return DirectTransport(url, headers, timeout)


class HttpStore:
    """Store implementation over a Stead server's HTTP API. Create with
    `HttpStore("https://host:4300", api_key="stead_...")`."""

    def __init__(self, url: str, api_key: str | None = None, timeout: float = 60.0) -> None:
        self.url = url.rstrip("/")
        headers = {"Content-Type": "application/json"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        self._transport = transport_for(self.url, headers, timeout)
        self._retry_for = get_settings().store_retry_seconds
        self.unreachable_at = float("-inf")  # see Store.unreachable_at

    def _call(self, verb: str, *args: Any, **kwargs: Any) -> Any:
        body = wire.dumps({"args": list(args), "kwargs": kwargs})
        deadline = time.monotonic() + self._retry_for
        delay = 0.05
        while True:
            try:
                status, content = self._transport.post(PATH + verb, body)
                break
            except Unreachable as exc:
                self.unreachable_at = time.monotonic()
                if time.monotonic() + delay > deadline:
                    raise StoreError(f"the Stead server at {self.url} has been unreachable "
                                     f"for {self._retry_for:g} s (STEAD_STORE_RETRY_SECONDS):"
                                     f" {exc}") from exc
                time.sleep(delay)
                delay = min(delay * 2, RETRY_CAP_S)
        if status == 200:
            return wire.loads(content)
        if status == 401:
            raise StoreError(f"the Stead server at {self.url} refused the API key "
                             "(STEAD_API_KEY): missing, unknown or revoked")
        try:
            answer = orjson.loads(content)
        except orjson.JSONDecodeError:
            answer = None
        if not isinstance(answer, dict):
            raise StoreError(f"the Stead server at {self.url} answered {status}"
                             f": {content[:200].decode('utf-8', 'replace')}")
        raise wire.error_from_wire(answer)

    def close(self) -> None:
        self._transport.close()

    # Verbs that change an argument in place on a local store do the same here.
    def transition_run(self, run: Any, state: str, at: float, message: str | None = None,
                       expected: tuple[str, ...] | None = None, fence: Any = None,
                       take_over: bool = False) -> None:
        self._call("transition_run", run, state, at, message, expected=expected, fence=fence,
                   take_over=take_over)
        run.state = state
        if take_over:
            run.lease_epoch += 1

    def park_run(self, run: Any, wait: Any, now: float, fence: Any = None) -> str:
        state: str = self._call("park_run", run, wait, now, fence=fence)
        after_park(run, state)
        return state

    def heartbeat(self, worker: Any, held: list[Any], now: float, lease_s: float) -> Any:
        still = self._call("heartbeat", worker, held, now, lease_s)
        worker.heartbeat_at = now
        return still

    def __getattr__(self, verb: str) -> Any:
        if verb not in wire.VERBS:
            hint = (" (it is done where the database is, not through a Stead server)"
                    if verb in wire.LOCAL_ONLY else "")
            raise AttributeError(f"HttpStore has no verb {verb!r}{hint}")

        def call(*args: Any, **kwargs: Any) -> Any:
            return self._call(verb, *args, **kwargs)

        call.__name__ = verb
        return call
