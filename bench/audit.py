"""What the audit log costs the API: requests per second with and without `AuditRecorder`.

Run: python bench/audit.py [--seconds 5] [--pg URL]

A server (uvicorn, one process, the app of `create_app`) on loopback over a fresh SQLite
file (and a fresh PostgreSQL database with --pg), once as shipped and once with the audit
middleware taken out; one client, one keep-alive connection, one request at a time:

- POST /api/v1/runs/{id}/cancel of an already Cancelled run (a state-changing route: audited)
- POST /api/v1/store/set_queue (a store verb that changes something: audited)
- POST /api/v1/store/append_logs with no lines (execution traffic: not audited by default)
- the same with STEAD_AUDIT_EXECUTION=1 (audited)
- GET /api/v1/runs?limit=1 (a read: passes through)
Machines here are noisy: rerun to see the spread. Since that noise is larger than the
middleware's cost, the cost is also measured alone: microseconds per request of a trivial
ASGI app called directly (no network, no FastAPI), bare and behind `AuditRecorder` writing
to the SQLite file (its writer thread included).
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

CASES = [
    ("POST /runs/{id}/cancel (audited)", "POST", "/api/v1/runs/done/cancel", b""),
    ("POST /store/set_queue (audited)", "POST", "/api/v1/store/set_queue",
     b'{"args": ["bench", 4]}'),
    ("POST /store/append_logs (execution)", "POST", "/api/v1/store/append_logs",
     b'{"args": [[]]}'),
    ("GET /runs?limit=1 (read)", "GET", "/api/v1/runs?limit=1", b""),
]


def serve(url: str, port: int, audited: bool) -> None:
    """The server process: create_app over `url`, with or without the audit middleware."""
    import uvicorn

    from stead.server.app import create_app
    from stead.server.audit import AuditRecorder
    from stead.store import open_store

    app = create_app(open_store(url), require_auth=False)
    if not audited:
        app.user_middleware = [m for m in app.user_middleware if m.cls is not AuditRecorder]
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def measure(url: str, audited: bool, execution: bool, seconds: float) -> dict[str, float]:
    port = free_port()
    env = {**os.environ, "STEAD_AUDIT_EXECUTION": "1" if execution else "0"}
    proc = subprocess.Popen([sys.executable, __file__, "--serve", url, str(port),
                             "1" if audited else "0"], env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        rates = {}
        with httpx.Client(base_url=base, timeout=30) as http:
            for name, method, path, body in CASES:
                for _ in range(50):  # warm up
                    http.request(method, path, content=body)
                n, start = 0, time.perf_counter()
                while time.perf_counter() - start < seconds:
                    answer = http.request(method, path, content=body)
                    assert answer.status_code == 200, (path, answer.text)
                    n += 1
                rates[name] = n / (time.perf_counter() - start)
        return rates
    finally:
        proc.terminate()
        proc.wait(15)


def prepare(url: str) -> None:
    from stead.core.runtime import store_for
    from stead.store.base import RunRecord

    store = store_for(url)
    store.create_run(RunRecord(id="done", flow_name="bench", state="Cancelled",
                               created_at=time.time(), ended_at=time.time()))


def audit_rows(url: str) -> int:
    from stead.core.runtime import store_for
    from stead.store.audit import count_audit_before

    store = store_for(url)
    return int(store._read(count_audit_before, float("inf")))  # type: ignore[attr-defined]


def middleware_cost(url: str, n: int = 20_000) -> dict[str, float]:
    """Microseconds per request: a trivial ASGI app, bare and behind AuditRecorder."""
    import asyncio

    from stead.server.audit import AuditRecorder
    from stead.store import open_store

    async def bare(scope: dict, receive: object, send: object) -> None:  # type: ignore[type-arg]
        await send({"type": "http.response.start", "status": 200, "headers": []})  # type: ignore[operator]
        await send({"type": "http.response.body", "body": b"{}"})  # type: ignore[operator]

    async def receive() -> dict:  # type: ignore[type-arg]
        return {"type": "http.request", "body": b'{"args": ["q", 1]}', "more_body": False}

    async def send(message: dict) -> None:  # type: ignore[type-arg]
        pass

    store = open_store(url)
    recorder = AuditRecorder(bare, store=store)  # type: ignore[arg-type]
    cases = {"bare app": (bare, "/api/v1/store/set_queue"),
             "audited verb (row)": (recorder, "/api/v1/store/set_queue"),
             "execution verb (no row)": (recorder, "/api/v1/store/append_logs"),
             "read verb (no row)": (recorder, "/api/v1/store/get_run")}

    async def run(app: object, path: str) -> float:
        scope = {"type": "http", "method": "POST", "path": path, "headers": [],
                 "client": ("127.0.0.1", 5555)}
        start = time.perf_counter()
        for _ in range(n):
            await app(dict(scope), receive, send)  # type: ignore[operator]
        return (time.perf_counter() - start) / n * 1e6

    out = {name: asyncio.run(run(app, path)) for name, (app, path) in cases.items()}
    recorder.writer.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--pg", help="a PostgreSQL URL to a fresh, empty database")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="stead-bench-audit-"))
    urls = [f"sqlite:///{folder / 'bench.db'}"] + ([args.pg] if args.pg else [])
    for url in urls:
        prepare(url)
        kind = url.split(":", 1)[0]
        results = {label: measure(url, audited, execution, args.seconds)
                   for label, audited, execution in (("without audit", False, False),
                                                     ("with audit", True, False),
                                                     ("STEAD_AUDIT_EXECUTION=1", True, True))}
        print(f"\n{kind}: requests/s, one client, keep-alive ({audit_rows(url)} audit rows "
              "written)")
        print(f"{'request':40} " + " ".join(f"{label:>24}" for label in results))
        for name, *_ in CASES:
            base = results["without audit"][name]
            cells = [f"{r[name]:10.0f} ({r[name] / base - 1:+.1%})" for r in results.values()]
            print(f"{name:40} " + " ".join(f"{c:>24}" for c in cells))
        print(f"\n{kind}: the middleware alone, microseconds per request (event loop thread)")
        for name, us in middleware_cost(url).items():
            print(f"{name:40} {us:8.1f}")


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--serve":
        serve(sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1")
    else:
        main()
