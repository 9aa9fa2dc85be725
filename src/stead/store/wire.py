"""The wire form of store verbs for remote workers and flows: arguments, results and errors of
`Store` verbs as JSON, so a process that only has the server's URL and an API key can use the
engine unchanged (`store/http.py` on the client, `server/store_rpc.py` on the server).

Records (the dataclasses of store/base.py) travel as objects tagged with their class name;
tuples as tagged lists; errors as their class name in stead.errors and their message.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import orjson

from stead import errors
from stead.store import base, secrets

# The parts of the store interface: base.Store, and the protocols of parts in modules of their
# own. Their members are the verbs; their modules' dataclasses are the records.
PARTS: tuple[type, ...] = (base.Store, secrets.SecretStore)
RECORDS: dict[str, type] = {
    name: cls for module in (base, secrets) for name, cls in vars(module).items()
    if isinstance(cls, type) and dataclasses.is_dataclass(cls)
}
# The verbs a remote process (a worker, a flow, the CLI) may call: what executing, enqueueing,
# deploying, inspecting and cancelling runs need. Not API keys (a worker's key must not make
# or revoke keys) and not pruning (it deletes result files, which live where it runs): those
# are done where the database is (tests/worker/test_remote.py checks a key cannot reach them).
# Nor the audit log (store/audit.py): a key must not write, read or prune it as a store verb
# (admins read it with GET /api/v1/audit). Its verbs are not on base.Store, so VERBS leaves
# them out anyway; they are listed here to say so (tests/server/test_audit.py checks it).
LOCAL_ONLY = frozenset({"close", "create_api_key", "list_api_keys", "find_api_key",
                        "revoke_api_key", "touch_api_key", "lease_holder_key", "prune_runs",
                        "count_prunable", "results_in_use", "record_audit", "list_audit",
                        "prune_audit",
                        # Secrets: a remote process gets a value from `reveal_secret` (the
                        # server decrypts) and may list names; ciphertexts and changes stay
                        # where the database and the key are.
                        "set_secret", "get_secret", "delete_secret", "rotate_secrets"})
VERBS = frozenset(name for part in PARTS for name, value in vars(part).items()
                  if callable(value) and not name.startswith("_") and name not in LOCAL_ONLY)


def _to_wire(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {f.name: _to_wire(getattr(value, f.name)) for f in dataclasses.fields(value)}
        return {"__record__": type(value).__name__, **fields}
    if isinstance(value, tuple):
        return {"__tuple__": [_to_wire(v) for v in value]}
    if isinstance(value, list):
        return [_to_wire(v) for v in value]
    if isinstance(value, dict):
        return {k: _to_wire(v) for k, v in value.items()}
    return value


def _from_wire(value: Any) -> Any:
    if isinstance(value, list):
        return [_from_wire(v) for v in value]
    if isinstance(value, dict):
        if "__tuple__" in value:
            return tuple(_from_wire(v) for v in value["__tuple__"])
        name = value.get("__record__")
        if name is not None:
            cls = RECORDS.get(name)
            if cls is None:
                raise errors.StoreError(f"unknown record type {name!r} on the wire: are the "
                                        "server and this process the same Stead version?")
            fields = {k: _from_wire(v) for k, v in value.items() if k != "__record__"}
            return cls(**fields)
        return {k: _from_wire(v) for k, v in value.items()}
    return value


def dumps(value: Any) -> bytes:
    return orjson.dumps(_to_wire(value))


def loads(data: bytes) -> Any:
    return _from_wire(orjson.loads(data))


def error_to_wire(exc: BaseException) -> dict[str, Any]:
    """The body of a failed verb: the error's class (in stead.errors) and what it says."""
    body: dict[str, Any] = {"type": type(exc).__name__, "message": str(exc)}
    if isinstance(exc, errors.LeaseLost):
        body["lease"] = [exc.run_id, exc.epoch, exc.current]
    return {"error": body}


def error_from_wire(body: dict[str, Any]) -> BaseException:
    """The exception a failed verb raised on the server, raised again here."""
    error = body.get("error") or {}
    name, message = str(error.get("type", "StoreError")), str(error.get("message", ""))
    if name == "LeaseLost" and error.get("lease"):
        run_id, epoch, current = error["lease"]
        return errors.LeaseLost(run_id, epoch, current)
    cls = getattr(errors, name, None)
    if isinstance(cls, type) and issubclass(cls, errors.SteadError):
        return cls(message)
    return errors.StoreError(f"the server failed: {name}: {message}")
