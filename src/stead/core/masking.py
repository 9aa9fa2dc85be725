"""Keeping secret values out of what Stead records and shows.

Two sources of secrets are known to the engine:
- values returned by `stead.secret()` in this process (`remember`), kept in memory only: any
  recorded text (step parameters and results, a run's parameters, result and error, log
  lines) that contains one has it replaced by MASK;
- values of pydantic's `SecretStr`/`SecretBytes` (in parameters or results): recorded as a
  tagged `{"$t": "secret"}` placeholder showing MASK, with a reference to the secret's name
  when the value came from `stead.secret()`, so a resume can fetch it again.

The rules on resume (`resolve_params`): a placeholder with a reference is replaced by the
secret read again (as SecretStr, SecretBytes or str, whichever was passed); one without is
SecretUnavailable, naming the parameter: its value was never recorded, so it must be given again
(`Flow.resume(run_id, params={...})`).

Cost when no secret was revealed: `active()` is one truthiness test of a list.
"""

from __future__ import annotations

from typing import Any

import orjson

from stead.errors import SecretUnavailable

MASK = "**********"
MIN_MASKED_LEN = 4  # shorter values are not searched for in free text (they would hit anything)
TAG = "$t"
_revealed: dict[str, tuple[str, str]] = {}  # plaintext -> (namespace, name)
# What recorded text is searched for (raw and JSON-escaped forms), longest first. Mutated in
# place only: hot paths import this list once and test its truthiness.
PATTERNS: list[str] = []


def remember(value: str, name: str, namespace: str) -> None:
    """Note that `value` is the secret `namespace`/`name`, to mask it from now on."""
    if value in _revealed:
        return
    _revealed[value] = (namespace, name)
    if len(value) < MIN_MASKED_LEN:
        return
    import json

    forms = {value, orjson.dumps(value).decode()[1:-1], json.dumps(value)[1:-1]}
    PATTERNS[:] = sorted(set(PATTERNS) | forms, key=len, reverse=True)


def active() -> bool:
    """Whether any secret is known in this process (the cheap test of the hot paths)."""
    return bool(PATTERNS)


def mask_text(text: str) -> str:
    """`text` with every known secret value replaced by MASK.

    Example:
        >>> remember("hunter2-pw", "DB_PASSWORD", "default")
        >>> mask_text('{"dsn": "postgres://app:hunter2-pw@db"}')
        '{"dsn": "postgres://app:**********@db"}'
    """
    for pattern in PATTERNS:
        if pattern in text:
            text = text.replace(pattern, MASK)
    return text


class SecretParam:
    """A recorded secret parameter as decoded: its kind ("SecretStr", "SecretBytes" or
    "str"), and the secret it came from (namespace, name) if known. Shown as MASK."""

    __slots__ = ("kind", "ref")

    def __init__(self, kind: str, ref: tuple[str, str] | None) -> None:
        self.kind, self.ref = kind, ref

    def __repr__(self) -> str:
        return f"{self.kind}('{MASK}')" if self.kind != "str" else repr(MASK)


def is_secret_type(cls: type) -> bool:
    return cls.__name__ in ("SecretStr", "SecretBytes") and cls.__module__.startswith("pydantic")


def encode_secret(value: Any) -> dict[str, Any]:
    """The recorded form of a SecretStr/SecretBytes or a SecretParam (serialization.py)."""
    if isinstance(value, SecretParam):
        kind, ref = value.kind, value.ref
    else:
        kind = type(value).__name__
        ref = _revealed.get(_plain(value))
    data: dict[str, Any] = {TAG: "secret", "k": kind, "v": MASK}
    if ref is not None:
        data["ref"] = list(ref)
    return data


def decode_secret(data: dict[str, Any], pickle_ok: bool) -> SecretParam:
    ref = data.get("ref")
    return SecretParam(str(data.get("k", "SecretStr")), tuple(ref) if ref else None)


def declared_secrets(parameters: Any) -> frozenset[str]:
    """The names of parameters annotated SecretStr or SecretBytes (also inside Optional or
    as a string annotation), from an inspect.Signature's parameters; once per decoration."""
    names = set()
    for name, p in parameters.items():
        text = p.annotation if isinstance(p.annotation, str) else repr(p.annotation)
        if "SecretStr" in text or "SecretBytes" in text:
            names.add(name)
    return frozenset(names)


def protect_params(params: dict[str, Any], declared: frozenset[str]) -> dict[str, Any]:
    """A flow's parameters as recorded. A parameter annotated as secret (`declared`) given
    plain text, or plain text equal to a secret revealed here, becomes a placeholder that
    refers to the secret when it came from `stead.secret()` (resumable) and is only masked
    otherwise; text containing a revealed secret is masked."""
    out = dict(params)
    for name, value in params.items():
        cls = type(value)
        if cls is not str and cls is not bytes:
            continue
        plain = value if cls is str else value.decode(errors="replace")
        ref = _revealed.get(plain)
        if name in declared or ref is not None:
            out[name] = SecretParam(cls.__name__, ref)
        elif PATTERNS and mask_text(plain) != plain:
            out[name] = SecretParam(cls.__name__, None)
    return out


def check_enqueueable(params: dict[str, Any], what: str) -> None:
    """Refuse to enqueue a run with a secret value that would not be recorded: its worker
    gets its parameters from the record only."""
    for name, value in params.items():
        if isinstance(value, SecretParam):
            ref = value.ref
        elif is_secret_type(type(value)):
            ref = _revealed.get(_plain(value))
        else:
            continue
        if ref is None:
            raise SecretUnavailable(
                f"{what}: parameter {name!r} holds a secret value, which is never recorded, "
                "so a worker could not receive it. Store it with `stead secrets set NAME` "
                "and pass stead.secret(NAME) (recorded as a reference), or pass the secret's "
                "name and call stead.secret() inside the flow.")


def _plain(value: Any) -> str:
    """The text of a SecretStr/SecretBytes (bytes decoded, undecodable bytes replaced)."""
    plain = value.get_secret_value()
    return plain.decode(errors="replace") if isinstance(plain, bytes) else str(plain)


def has_secret_params(params: dict[str, Any]) -> bool:
    return any(isinstance(v, SecretParam) for v in params.values())


def resolve_params(params: dict[str, Any], store: Any, flow_name: str,
                   run_id: str) -> dict[str, Any]:
    """Recorded parameters with their secret placeholders replaced by the secrets read again
    (through `store.reveal_secret`); SecretUnavailable for a value that was not recorded."""
    if not has_secret_params(params):
        return params
    out = dict(params)
    for name, value in params.items():
        if not isinstance(value, SecretParam):
            continue
        if value.ref is None:
            raise SecretUnavailable(
                f"parameter {name!r} of run {run_id} (flow '{flow_name}') held a secret value "
                "that was masked, not recorded, so the resume cannot supply it. Resume with "
                f"the value again: {flow_name}.resume({run_id!r}, params={{{name!r}: ...}}); "
                "or pass it from stead.secret(NAME) when starting a run, which records a "
                "reference instead.")
        namespace, secret_name = value.ref
        plain = store.reveal_secret(secret_name, namespace)
        remember(plain, secret_name, namespace)
        out[name] = _typed(value.kind, plain)
    return out


def _typed(kind: str, plain: str) -> Any:
    if kind == "str":
        return plain
    if kind == "bytes":
        return plain.encode()
    import pydantic

    return pydantic.SecretBytes(plain.encode()) if kind == "SecretBytes" else pydantic.SecretStr(
        plain)
