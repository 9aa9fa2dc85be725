"""The browser surface: what keeps web pages from driving the API (`BrowserGuard`).

A server on loopback needs no API key, so any page a user opens could otherwise reach it:
by a cross-site request (a form or `fetch` to http://127.0.0.1:4300) or by DNS rebinding (a
name of the attacker's that resolves to 127.0.0.1, so the browser thinks it is the page's own
origin). The guard answers, before any route runs:

- a Host that is not one of the server's own names: 421 (DNS rebinding). The names are the
  address it listens on, the loopback names when it listens on loopback (or on every address),
  and `--allowed-host` / STEAD_ALLOWED_HOSTS; "*" accepts any. GET /health is exempt (load
  balancers probe it by IP; it tells nothing).
- a state-changing request (POST, PUT, PATCH, DELETE) without `Content-Type: application/json`:
  415. A browser sends such a request cross-site only after a CORS preflight, which fails.
- a state-changing request whose `Origin` is not the server's own origin: 403.
- a CORS preflight (OPTIONS with Access-Control-Request-Method): 403. The API never sends
  an Access-Control-Allow-* header: no other origin may read or write it.

There are no HTML forms yet, so no CSRF token is needed: the rules above refuse every request
a foreign page can make. When the web UI adds forms, the rule is a same-origin form carrying a
CSRF token (checked on every state-changing request the form sends), not a relaxed guard.
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.types import ASGIApp, Receive, Scope, Send

from stead.server.errors import error_response

# The names of a server listening on loopback; the default of create_app.
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "[::1]")
WILDCARD_ADDRESSES = frozenset({"0.0.0.0", "::", "[::]", ""})
STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
DEFAULT_PORTS = {"http": "80", "https": "443"}
EXEMPT = frozenset({"/health"})  # GET only


def host_name(value: str) -> tuple[str, str]:
    """A Host header (or an origin's host part) as (name, port): lower case, IPv6 in brackets,
    no trailing dot; port "" when absent.

    >>> host_name("LocalHost.:4300"), host_name("[::1]"), host_name("::1")
    (('localhost', '4300'), ('[::1]', ''), ('[::1]', ''))
    """
    value = value.strip().lower()
    if value.startswith("["):
        name, _, rest = value.partition("]")
        return name + "]", rest[1:] if rest.startswith(":") else ""
    if value.count(":") > 1:  # a bare IPv6 address, as people write it in an option
        return f"[{value}]", ""
    name, colon, port = value.rpartition(":")
    if not colon or not port.isdigit():
        name, port = value, ""
    return name.rstrip("."), port


def server_hosts(listen_host: str, extra: Iterable[str] = ()) -> tuple[str, ...]:
    """The host names a server listening on `listen_host` answers to: that address, the
    loopback names if it is loopback or every address (0.0.0.0, ::), and `extra`.

    >>> server_hosts("127.0.0.1", ["stead.internal"])
    ('127.0.0.1', 'localhost', '[::1]', 'stead.internal')
    """
    import ipaddress
    import socket

    names = [] if listen_host.strip() in WILDCARD_ADDRESSES else [host_name(listen_host)[0]]
    bare = listen_host.strip().strip("[]").lower()
    try:
        loopback = bare == "localhost" or ipaddress.ip_address(bare).is_loopback
    except ValueError:
        loopback = False
    if loopback or listen_host.strip() in WILDCARD_ADDRESSES:
        names += LOOPBACK_HOSTS
    if listen_host.strip() in WILDCARD_ADDRESSES:
        names.append(socket.gethostname().lower())
    names += [h for h in (e.strip() for e in extra) if h]
    seen: dict[str, None] = {}
    for name in names:
        seen[name if name == "*" else host_name(name)[0]] = None
    return tuple(seen)


class BrowserGuard:
    """ASGI middleware enforcing the rules of the module docstring. `allowed_hosts`: host
    names without port (see `server_hosts`); "*" among them accepts any Host.

    Example: `app.add_middleware(BrowserGuard, allowed_hosts=server_hosts("127.0.0.1"))`.
    """

    def __init__(self, app: ASGIApp, allowed_hosts: Iterable[str] = LOOPBACK_HOSTS) -> None:
        self.app = app
        names = list(allowed_hosts)
        self.any_host = "*" in names
        self.hosts = frozenset(host_name(h)[0] for h in names if h != "*")
        self.shown = ", ".join(sorted(self.hosts)) or "(none)"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        host = origin = content_type = None
        preflight = False
        for key, value in scope["headers"]:
            if key == b"host":
                host = value.decode("latin-1")
            elif key == b"origin":
                origin = value.decode("latin-1")
            elif key == b"content-type":
                content_type = value.decode("latin-1")
            elif key == b"access-control-request-method":
                preflight = True
        refusal = self._refusal(scope["method"], scope["path"], host, origin, content_type,
                                preflight)
        if refusal is None:
            await self.app(scope, receive, send)
        else:
            await error_response(*refusal)(scope, receive, send)

    def _refusal(self, method: str, path: str, host: str | None, origin: str | None,
                 content_type: str | None, preflight: bool) -> tuple[int, str, str] | None:
        """(status, type, message) of the answer refusing this request, or None."""
        name, port = host_name(host) if host is not None else ("", "")
        if (host is not None and not self.any_host and name not in self.hosts
                and not (method == "GET" and path in EXEMPT)):
            return (421, "MisdirectedRequest",
                    f"this server does not answer to the host name {name[:100]!r}; it "
                    f"answers to {self.shown}. To add a name, start it with "
                    "`stead server start --allowed-host NAME` (or set "
                    "STEAD_ALLOWED_HOSTS=NAME,...)")
        if method == "OPTIONS" and preflight:
            return (403, "Forbidden", "this API grants no cross-origin (CORS) access: call "
                                      "it from a program, or from a page of its own origin")
        if method not in STATE_CHANGING:
            return None
        if origin is not None and not _same_origin(origin, name, port):
            return (403, "Forbidden",
                    f"requests from the web page origin {origin[:100]!r} are refused: only "
                    "pages of this server's own origin may change anything")
        media = (content_type or "").partition(";")[0].strip().lower()
        if media != "application/json":
            return (415, "UnsupportedMediaType",
                    f"{method} requests must send 'Content-Type: application/json' (with a "
                    f"JSON body, or none), not {media or 'no content type'!r}")
        return None


def _same_origin(origin: str, host: str, port: str) -> bool:
    """Whether `origin` ("scheme://name[:port]") names the host `host`:`port` of the request
    (ports compared with the origin's scheme's default filled in); "null" never does."""
    scheme, sep, rest = origin.strip().partition("://")
    if not sep or not host:
        return False
    default = DEFAULT_PORTS.get(scheme.lower(), "")
    name, origin_port = host_name(rest)
    return name == host and (origin_port or default) == (port or default)
