"""The store of a remote process: every verb is one HTTP request to a Stead server, which runs
it on its database (`server/store_rpc.py`). A worker or a flow on another machine needs only
the server's URL and an API key; its code and its result files stay on its side.

    STEAD_DATABASE_URL=https://stead.example.com  STEAD_API_KEY=stead_...  stead worker start

Requests reuse one keep-alive connection per thread. Concurrent steps are already batched
by the engine's group commit (one `record_steps` request per batch). Requests that fail to
reach the server are retried with backoff for up to STEAD_STORE_RETRY_SECONDS, as the PostgreSQL
store does; the verbs are idempotent (upserts, compare-and-set) so a retry is safe.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from stead.errors import ConfigError, StoreError
from stead.settings import get_settings
from stead.store import wire

RETRY_CAP_S = 0.5  # the longest pause between two attempts of a request during an outage


class HttpStore:
    """Store implementation over a Stead server's HTTP API. Create with
    `HttpStore("https://host:4300", api_key="stead_...")`."""

    def __init__(self, url: str, api_key: str | None = None, timeout: float = 60.0) -> None:
        try:
            import httpx
        except ImportError:
            raise ConfigError("remote mode needs httpx: pip install httpx") from None
        self.url = url.rstrip("/")
        self._httpx = httpx
        self._headers = {"Content-Type": "application/json"}
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"
        self._timeout = timeout
        self._local = threading.local()
        self._retry_for = get_settings().store_retry_seconds
        self.unreachable_at = float("-inf")  # see Store.unreachable_at

    def _client(self) -> Any:
        client = getattr(self._local, "client", None)
        if client is None:
            client = self._local.client = self._httpx.Client(
                base_url=self.url, headers=self._headers, timeout=self._timeout)
        return client

    def _call(self, verb: str, *args: Any, **kwargs: Any) -> Any:
        body = wire.dumps({"args": list(args), "kwargs": kwargs})
        deadline = time.monotonic() + self._retry_for
        delay = 0.05
        while True:
            try:
                response = self._client().post(f"/api/v1/store/{verb}", content=body)
                break
            except self._httpx.TransportError as exc:
                self.unreachable_at = time.monotonic()
                if time.monotonic() + delay > deadline:
                    raise StoreError(f"the Stead server at {self.url} has been unreachable "
                                     f"for {self._retry_for:g} s (STEAD_STORE_RETRY_SECONDS):"
                                     f" {exc}") from exc
                time.sleep(delay)
                delay = min(delay * 2, RETRY_CAP_S)
        if response.status_code == 200:
            return wire.loads(response.content)
        if response.status_code == 401:
            raise StoreError(f"the Stead server at {self.url} refused the API key "
                             "(STEAD_API_KEY): missing, unknown or revoked")
        try:
            raise wire.error_from_wire(response.json())
        except ValueError:
            raise StoreError(f"the Stead server at {self.url} answered {response.status_code}"
                             f": {response.text[:200]}") from None

    def close(self) -> None:
        client = getattr(self._local, "client", None)
        if client is not None:
            client.close()
        self._local = threading.local()

    # Verbs that change an argument in place on a local store do the same here.
    def transition_run(self, run: Any, state: str, at: float, message: str | None = None,
                       expected: tuple[str, ...] | None = None, fence: Any = None,
                       take_over: bool = False) -> None:
        self._call("transition_run", run, state, at, message, expected=expected, fence=fence,
                   take_over=take_over)
        run.state = state
        if take_over:
            run.lease_epoch += 1

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
