"""A Python client of the Stead server's REST API (docs/openapi.json): list and inspect runs,
run deployments, cancel runs, send runs messages and input and read their status, from
anywhere with the server's URL and an API key.

Answers are the API's JSON objects (dicts). Errors raise `ApiError`, which carries the HTTP
status and the error body's type and message. Not imported by `import stead`.

Example:
    >>> from stead.client import Client
    >>> api = Client("https://stead.example.com", api_key="stead_...")
    >>> run = api.run_deployment("nightly", {"day": "2026-11-21"})
    >>> api.run(run["id"])["state"]
    'Pending'
    >>> [r["id"] for r in api.runs(state="Failed", deployment="nightly")]
    >>> api.cancel(run["id"])["state"]
    'Cancelled'
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx

from stead.errors import SteadError
from stead.settings import get_settings


class ApiError(SteadError):
    """The server answered with an error: `status`, and the error body's `type` and message."""

    def __init__(self, status: int, kind: str, message: str) -> None:
        super().__init__(f"{message} (HTTP {status}, {kind})")
        self.status = status
        self.type = kind


class Client:
    """The REST API of one Stead server. `url` defaults to http://STEAD_SERVER_HOST:PORT and
    `api_key` to STEAD_API_KEY."""

    def __init__(self, url: str | None = None, api_key: str | None = None,
                 timeout: float = 30.0) -> None:
        settings = get_settings()
        self.url = (url or f"http://{settings.server_host}:{settings.server_port}").rstrip("/")
        key = api_key if api_key is not None else settings.api_key
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._http.request(method, path, **kwargs)
        if response.is_success:
            return response.json()
        try:
            error = response.json()["error"]
            kind, message = str(error["type"]), str(error["message"])
        except (ValueError, KeyError, TypeError):
            kind, message = "HTTPError", response.text[:200]
        raise ApiError(response.status_code, kind, message)

    # -- runs ------------------------------------------------------------------------------
    def runs(self, *, state: str | list[str] | None = None, flow: str | None = None,
             deployment: str | None = None, queue: str | None = None, tag: str | None = None,
             created_after: float | None = None, created_before: float | None = None,
             page_size: int = 100) -> Iterator[dict[str, Any]]:
        """Every matching run, newest first, fetched page by page as you iterate."""
        params: dict[str, Any] = {"state": state, "flow": flow, "deployment": deployment,
                                  "queue": queue, "tag": tag, "created_after": created_after,
                                  "created_before": created_before, "limit": page_size}
        params = {k: v for k, v in params.items() if v is not None}
        while True:
            page = self._request("GET", "/api/v1/runs", params=params)
            yield from page["items"]
            if not page.get("next_cursor"):
                return
            params["cursor"] = page["next_cursor"]

    def run(self, run_id: str) -> dict[str, Any]:
        return self._request("GET", f"/api/v1/runs/{run_id}")  # type: ignore[no-any-return]

    def steps(self, run_id: str) -> list[dict[str, Any]]:
        return self._request("GET", f"/api/v1/runs/{run_id}/steps")["items"]  # type: ignore[no-any-return]

    def history(self, run_id: str) -> list[dict[str, Any]]:
        return self._request("GET", f"/api/v1/runs/{run_id}/history")["items"]  # type: ignore[no-any-return]

    def logs(self, run_id: str, after_id: int = 0) -> list[dict[str, Any]]:
        """Every log line of the run recorded so far after `after_id`."""
        lines: list[dict[str, Any]] = []
        while True:
            page = self._request("GET", f"/api/v1/runs/{run_id}/logs",
                                 params={"after_id": after_id, "limit": 1000})
            lines += page["items"]
            if not page["items"]:
                return lines
            after_id = page["next_after_id"]

    def cancel(self, run_id: str) -> dict[str, Any]:
        """Cancel a run (see `stead runs cancel`); returns the run."""
        # No body, but the JSON content type: the server refuses any other (server/guard.py).
        return self._request("POST", f"/api/v1/runs/{run_id}/cancel",  # type: ignore[no-any-return]
                             headers={"Content-Type": "application/json"})

    # -- messages, input and status (durable waits) -----------------------------------------
    def send_message(self, run_id: str, topic: str, payload: Any,
                     idempotency_key: str | None = None,
                     expects_reply: bool = False) -> dict[str, Any]:
        """Send `payload` (any JSON value) to the run on `topic`; the flow takes it with
        `stead.receive(topic)`. Returns the message; with an `idempotency_key` sent before,
        the first message (nothing new is stored). With `expects_reply`, a request: poll
        `get_message` for its `reply`. ApiError 404 (no such run), 409 (the run has ended),
        422 (a bad topic or payload).

        Example:
            >>> api.send_message(run_id, "payment", {"ref": "tx-81"}, "tx-81")["state"]
            'pending'
        """
        body: dict[str, Any] = {"topic": topic, "payload": payload}
        if expects_reply:
            body["expects_reply"] = True
        if idempotency_key is not None:
            body["idempotency_key"] = idempotency_key
        return self._request("POST", f"/api/v1/runs/{run_id}/messages",  # type: ignore[no-any-return]
                             json=body)

    def send_input(self, run_id: str, value: Any,
                   idempotency_key: str | None = None) -> dict[str, Any]:
        """Answer a run waiting in `stead.wait_for_input(Model, ...)` with `value` (a dict
        of the model's fields). Input that does not fit the model's schema raises ApiError
        422 (type InvalidInput) and the run keeps waiting; ApiError 409 when the run does
        not wait for input.

        Example:
            >>> api.send_input(run_id, {"approved": True, "approver": "ana"})["topic"]
            'stead.input'
        """
        body: dict[str, Any] = {"value": value}
        if idempotency_key is not None:
            body["idempotency_key"] = idempotency_key
        return self._request("POST", f"/api/v1/runs/{run_id}/input",  # type: ignore[no-any-return]
                             json=body)

    def get_status(self, run_id: str, key: str | None = None) -> Any:
        """What the run published with `stead.set_status`: with `key`, that value (ApiError
        404 when it is not set); without, a dict of every key and value.

        Example:
            >>> api.get_status(run_id, "stage")
            'approved'
            >>> api.get_status(run_id)
            {'stage': 'approved', 'progress': 0.5}
        """
        if key is not None:
            path = f"/api/v1/runs/{run_id}/status/{quote(key, safe='')}"
            return self._request("GET", path)["value"]
        items = self._request("GET", f"/api/v1/runs/{run_id}/status")["items"]
        return {item["key"]: item["value"] for item in items}

    def list_messages(self, run_id: str, topic: str | None = None,
                      limit: int = 100) -> list[dict[str, Any]]:
        """The messages sent to the run (of `topic`, or all), in send order, with their
        state (pending, consumed, rejected) and replies.

        Example:
            >>> [m["state"] for m in api.list_messages(run_id, topic="payment")]
            ['consumed', 'pending']
        """
        params: dict[str, Any] = {"limit": limit}
        if topic is not None:
            params["topic"] = topic
        return self._request("GET", f"/api/v1/runs/{run_id}/messages",  # type: ignore[no-any-return]
                             params=params)["items"]

    def get_message(self, run_id: str, message_id: int) -> dict[str, Any]:
        """One message of the run as it is now (a request's sender polls its `reply`).

        Example:
            >>> api.get_message(run_id, 7)["reply"]
            {'accepted': True}
        """
        return self._request(  # type: ignore[no-any-return]
            "GET", f"/api/v1/runs/{run_id}/messages/{message_id}")

    # -- deployments -------------------------------------------------------------------------
    def deployments(self) -> list[dict[str, Any]]:
        return self._request("GET", "/api/v1/deployments")["items"]  # type: ignore[no-any-return]

    def run_deployment(self, name: str, parameters: dict[str, Any] | None = None,
                       run_id: str | None = None) -> dict[str, Any]:
        """Create a run of a deployment; an ApiError (422) names a bad parameter."""
        body: dict[str, Any] = {"parameters": parameters or {}}
        if run_id is not None:
            body["run_id"] = run_id
        return self._request("POST", f"/api/v1/deployments/{name}/runs",  # type: ignore[no-any-return]
                             json=body)

    # -- the rest ------------------------------------------------------------------------------
    def queues(self) -> list[dict[str, Any]]:
        return self._request("GET", "/api/v1/queues")["items"]  # type: ignore[no-any-return]

    def workers(self) -> list[dict[str, Any]]:
        return self._request("GET", "/api/v1/workers")["items"]  # type: ignore[no-any-return]

    def limits(self) -> list[dict[str, Any]]:
        return self._request("GET", "/api/v1/limits")["items"]  # type: ignore[no-any-return]
