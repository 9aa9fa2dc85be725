"""The wire form of store verbs for remote workers and flows: arguments, results and errors of
`Store` verbs as JSON, so a process that only has the server's URL and an API key can use the
engine unchanged (`store/http.py` on the client, `server/store_rpc.py` on the server).

Records (the dataclasses of the store's parts: store/parts/, secrets.py, variables.py,
waits.py) travel
as objects tagged with their class name; tuples as tagged lists; errors as their class name in
stead.errors and their message.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import orjson

from stead import errors
from stead.store import base, secrets, variables, waits
from stead.store.parts import deployments, keys, limits, queues, retention, runs

# The parts of the store interface: those `base.Store` is made of (store/parts/), `Store`
# itself (its own verb: close), and the protocols of parts in modules of their own. Their
# members are the verbs; their modules' dataclasses are the records.
PARTS: tuple[type, ...] = (*base.STORE_PARTS, base.Store, secrets.SecretStore,
                           variables.VariableStore)
RECORDS: dict[str, type] = {
    name: cls for module in (runs, queues, limits, deployments, retention, keys, secrets,
                             variables, waits)
    for name, cls in vars(module).items()
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


# Values orjson writes as they are (exact types: a subclass, e.g. an enum, takes the long way).
_PLAIN = frozenset({str, int, float, bool, type(None)})
# Per record class, the names of its fields: a record's wire form is built from these instead
# of dataclasses.fields() on every call (one checkpoint is a record of 17 fields).
_NAMES: dict[type, tuple[str, ...]] = {
    cls: tuple(f.name for f in dataclasses.fields(cls)) for cls in RECORDS.values()}


def _to_wire(value: Any) -> Any:
    cls = type(value)
    if cls in _PLAIN:
        return value
    names = _NAMES.get(cls)
    if names is not None:
        out: dict[str, Any] = {"__record__": cls.__name__}
        for name in names:
            field = getattr(value, name)
            out[name] = field if type(field) in _PLAIN else _to_wire(field)
        return out
    if cls is list:
        return [v if type(v) in _PLAIN else _to_wire(v) for v in value]
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


# Per record class: the names of its fields, and those without a default (required).
FIELDS: dict[type, tuple[frozenset[str], frozenset[str]]] = {
    cls: (frozenset(f.name for f in dataclasses.fields(cls)),
          frozenset(f.name for f in dataclasses.fields(cls)
                    if f.default is dataclasses.MISSING
                    and f.default_factory is dataclasses.MISSING))
    for cls in RECORDS.values()
}


def _from_wire(value: Any) -> Any:
    if type(value) in _PLAIN:
        return value
    if isinstance(value, list):
        return [v if type(v) in _PLAIN else _from_wire(v) for v in value]
    if isinstance(value, dict):
        if "__tuple__" in value:
            items = value["__tuple__"]
            if len(value) != 1 or not isinstance(items, list):
                raise errors.WireFormatError("a tuple on the wire is {\"__tuple__\": [...]} "
                                             "and nothing else")
            return tuple(_from_wire(v) for v in items)
        if "__record__" in value:
            return _record(value)
        return {k: _from_wire(v) for k, v in value.items()}
    return value


def _record(value: dict[str, Any]) -> Any:
    name = value["__record__"]
    cls = RECORDS.get(name) if isinstance(name, str) else None
    if cls is None:
        raise errors.WireFormatError(f"unknown record type {str(name)[:100]!r} on the wire: "
                                     "are the server and this process the same Stead "
                                     "version?")
    names, required = FIELDS[cls]
    # The decoded object is ours (fresh from orjson): its own dict becomes the arguments.
    del value["__record__"]
    given = value.keys()
    if not given <= names:
        unknown = ", ".join(sorted(repr(k[:100]) for k in given - names)[:5])
        raise errors.WireFormatError(f"{name} has no field {unknown}")
    if not required <= given:
        raise errors.WireFormatError(f"{name} is missing its field "
                                     f"{', '.join(sorted(repr(k) for k in required - given))}")
    for k, v in value.items():
        if type(v) not in _PLAIN:
            value[k] = _from_wire(v)
    return cls(**value)


def dumps(value: Any) -> bytes:
    """The wire form of `value` (records, tuples, lists, dicts, JSON scalars).

    >>> dumps(base.Fence("r1", 2))
    b'{"__record__":"Fence","run_id":"r1","epoch":2}'
    """
    return orjson.dumps(_to_wire(value))


def loads(data: bytes) -> Any:
    """The value `data` (made by `dumps`) stands for; WireFormatError if it is not JSON or
    names records (or their fields) this version does not know.

    >>> loads(b'{"__tuple__": [1, "a"]}')
    (1, 'a')
    """
    try:
        decoded = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise errors.WireFormatError(f"not JSON (UTF-8): {exc}") from None
    return _from_wire(decoded)


def loads_call(data: bytes) -> tuple[list[Any], dict[str, Any]]:
    """The positional and keyword arguments of a store call's body
    ({"args": [...], "kwargs": {...}}, both optional; an empty body is no arguments);
    WireFormatError if the body is anything else.

    >>> loads_call(b'{"args": ["run-1"]}')
    (['run-1'], {})
    """
    if not data:
        return [], {}
    call = loads(data)
    if not isinstance(call, dict):
        raise errors.WireFormatError(f"the body must be an object {{\"args\": [...], "
                                     f"\"kwargs\": {{...}}}}, not {_kind(call)}")
    unknown = call.keys() - {"args", "kwargs"}
    if unknown:
        shown = ", ".join(sorted(repr(k[:100]) for k in unknown)[:5])
        raise errors.WireFormatError(f"the body has only \"args\" and \"kwargs\", not {shown}")
    args, kwargs = call.get("args", []), call.get("kwargs", {})
    if not isinstance(args, list):
        raise errors.WireFormatError(f"\"args\" must be a list, not {_kind(args)}")
    if not isinstance(kwargs, dict):
        raise errors.WireFormatError(f"\"kwargs\" must be an object, not {_kind(kwargs)}")
    return args, kwargs


def _kind(value: Any) -> str:
    return "null" if value is None else f"a {type(value).__name__}"


def error_to_wire(exc: BaseException) -> dict[str, Any]:
    """The body of a failed verb: the error's class (in stead.errors) and what it says."""
    body: dict[str, Any] = {"type": type(exc).__name__, "message": str(exc)}
    if isinstance(exc, errors.LeaseLost):
        body["lease"] = [exc.run_id, exc.epoch, exc.current]
    elif isinstance(exc, errors.InvalidInput):
        body["input"] = {"run_id": exc.run_id, "field": exc.field, "reason": exc.reason}
    return {"error": body}


def error_from_wire(body: dict[str, Any]) -> BaseException:
    """The exception a failed verb raised on the server, raised again here."""
    error = body.get("error") or {}
    name, message = str(error.get("type", "StoreError")), str(error.get("message", ""))
    if name == "LeaseLost" and error.get("lease"):
        run_id, epoch, current = error["lease"]
        return errors.LeaseLost(run_id, epoch, current)
    if name == "InvalidInput" and isinstance(error.get("input"), dict):
        given = error["input"]
        return errors.InvalidInput(message, **{k: str(given.get(k, "")) for k in (
            "run_id", "field", "reason")})
    cls = getattr(errors, name, None)
    if isinstance(cls, type) and issubclass(cls, errors.SteadError):
        return cls(message)
    return errors.StoreError(f"the server failed: {name}: {message}")
