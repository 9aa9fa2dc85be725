"""Turning parameters and results into stored text and back, without configuration.

Supported as-is: JSON values (None, bool, int, float, str, list, dict), tuples, sets,
frozensets, dicts with non-string keys, bytes, datetime/date/time/timedelta (a ZoneInfo zone
comes back as that zone, DST folds kept), Decimal, UUID,
Path, Enum members, dataclasses and pydantic models. pydantic's SecretStr and SecretBytes are
recorded masked, never their value (core/masking.py). Non-JSON values are written as tagged
objects ``{"$t": tag, ...}`` so they come back as the same type in a fresh process.
Anything else raises SerializationError, unless the task chose ``serializer="pickle"``
(opt-in: unpickling runs code, so never point Stead at a database you do not trust).
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import importlib
import math
import sys
from collections.abc import Callable
from enum import Enum
from typing import Any

import orjson

from stead.core import masking
from stead.errors import SerializationError

TAG = "$t"
_SCALARS = (str, int, float, bool, type(None))
_loads = orjson.loads
_INT_MIN, _INT_MAX = -(2**63), 2**64 - 1  # what orjson writes natively


# What to do about an unstorable value depends on where it was: the pickle option is a task's.
TASK_ADVICE = ("Return JSON values, dataclasses, pydantic models, datetimes or bytes, or opt "
               "in to pickle with @task(serializer='pickle') (unsafe if the database is not "
               "trusted).")
PARAMETER_ADVICE = (
    "Flow parameters must be storable values (JSON values, dataclasses, pydantic models, "
    "datetimes, bytes, Path...): pass what identifies a connection, client or file (a URL, a "
    "path, a key) and open it inside the flow. Pickle does not apply to flow parameters.")
FLOW_RESULT_ADVICE = (
    "Return a storable value from the flow (JSON values, dataclasses, pydantic models, "
    "datetimes or bytes); pickle is a task option (@task(serializer='pickle')) and does not "
    "apply to a flow's result.")


def _dumps(value: Any) -> str:
    # orjson, not the json module: ~0.3 us instead of ~4 us per small value on the hot path.
    return orjson.dumps(value).decode()
_module_aliases: dict[str, Any] = {}
_alias_of_module: dict[str, str] = {}  # the loaded module's real name -> recorded name
_class_cache: dict[str, Any] = {}


def register_module_alias(name: str, module: Any) -> None:
    """Treat `module` as the one recorded under `name` (a script loaded again as __main__).

    Classes recorded under `name` are looked up in `module`, and classes of `module` are
    recorded under `name`, so values keep one class path however the script was loaded.
    """
    _module_aliases[name] = module
    _alias_of_module[module.__name__] = name
    _class_cache.clear()


def recorded_module_name(module_name: str) -> str:
    """The module name to record for code from `module_name` (see register_module_alias)."""
    return _alias_of_module.get(module_name, module_name)


def class_path(cls: type) -> str:
    return f"{_alias_of_module.get(cls.__module__, cls.__module__)}:{cls.__qualname__}"


def _import_class(path: str) -> Any:
    cached = _class_cache.get(path)
    if cached is not None:
        return cached
    module_name, _, qualname = path.partition(":")
    candidates = []
    if module_name in _module_aliases:
        candidates.append(_module_aliases[module_name])
    try:
        candidates.append(importlib.import_module(module_name))
    except ImportError:
        pass
    for module in candidates:
        obj: Any = module
        try:
            for part in qualname.split("."):
                obj = getattr(obj, part)
        except AttributeError:
            continue
        _class_cache[path] = obj
        return obj
    raise SerializationError(
        f"cannot rebuild a stored value of type {path}: the class is not importable here. "
        "Make sure the module that defines it is on sys.path (run from the project folder)."
    )


def _encode_obj(value: Any, pickle_ok: bool) -> Any:
    cls = type(value)
    if cls in _SCALARS:
        if cls is float and not math.isfinite(value):
            return {TAG: "float", "v": repr(value)}
        if cls is int and not _INT_MIN <= value <= _INT_MAX:
            return {TAG: "int", "v": str(value)}
        return value
    if cls is list:
        return [_encode_obj(v, pickle_ok) for v in value]
    if cls is dict:
        if TAG not in value and all(type(k) is str for k in value):
            return {k: _encode_obj(v, pickle_ok) for k, v in value.items()}
        return {TAG: "dict", "v": [[_encode_obj(k, pickle_ok), _encode_obj(v, pickle_ok)]
                                   for k, v in value.items()]}
    if cls is tuple:
        return {TAG: "tuple", "v": [_encode_obj(v, pickle_ok) for v in value]}
    if cls is set or cls is frozenset:
        items = sorted((_encode_obj(v, pickle_ok) for v in value), key=_dumps)
        return {TAG: cls.__name__, "v": items}
    if cls is bytes or cls is bytearray:
        return {TAG: cls.__name__, "v": base64.b64encode(value).decode("ascii")}
    if cls is dt.datetime or cls is dt.time:
        return _encode_clock(value)
    if cls is dt.date:
        return {TAG: "date", "v": value.isoformat()}
    if cls is dt.timedelta:
        return {TAG: "timedelta", "v": [value.days, value.seconds, value.microseconds]}
    module = cls.__module__
    if module == "decimal" and cls.__name__ == "Decimal":
        return {TAG: "decimal", "v": str(value)}
    if module == "uuid" and cls.__name__ == "UUID":
        return {TAG: "uuid", "v": str(value)}
    if module.startswith("pathlib") and "pathlib" in sys.modules and isinstance(
            value, sys.modules["pathlib"].PurePath):
        return {TAG: "path", "c": class_path(cls), "v": str(value)}
    if isinstance(value, Enum):
        return {TAG: "enum", "c": class_path(cls), "v": _encode_obj(value.value, pickle_ok)}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {f.name: _encode_obj(getattr(value, f.name), pickle_ok)
                  for f in dataclasses.fields(value)}
        return {TAG: "dataclass", "c": class_path(cls), "v": fields}
    if "pydantic" in sys.modules and _is_pydantic_model(value):
        return {TAG: "pydantic", "c": class_path(cls), "v": value.model_dump(mode="json")}
    if cls is masking.SecretParam or masking.is_secret_type(cls):  # recorded as a mask
        return masking.encode_secret(value)
    if pickle_ok:
        import pickle

        return {TAG: "pickle", "v": base64.b64encode(pickle.dumps(value)).decode("ascii")}
    raise _unstorable(cls)


class _Unstorable(SerializationError):
    """Raised deep in the walk; `encode` adds the advice that fits where the value was."""

    def __init__(self, type_name: str) -> None:
        super().__init__(f"a value of type {type_name} cannot be stored")
        self.type_name = type_name


def _unstorable(cls: type) -> _Unstorable:
    return _Unstorable(f"{cls.__module__}.{cls.__qualname__}")


def _encode_clock(value: dt.datetime | dt.time) -> dict[str, Any]:
    """A datetime or time: ISO text (with its UTC offset), plus its IANA zone name ("z") when
    its tzinfo is a ZoneInfo, and "f": 1 when it is the second of a repeated wall time (DST
    fold). A reader that ignores "z" still gets the right instant as a fixed offset."""
    tagged: dict[str, Any] = {TAG: "datetime" if type(value) is dt.datetime else "time",
                              "v": value.isoformat()}
    tz = value.tzinfo
    if tz is not None and type(tz).__name__ == "ZoneInfo" and type(tz).__module__ == "zoneinfo":
        key = tz.key  # type: ignore[attr-defined]
        if key is not None:  # a ZoneInfo read from a file has no name: kept as an offset
            tagged["z"] = key
    if value.fold:
        tagged["f"] = 1
    return tagged


def _decode_clock(v: dict[str, Any], p: bool) -> dt.datetime | dt.time:
    parse = dt.datetime.fromisoformat if v[TAG] == "datetime" else dt.time.fromisoformat
    value = parse(v["v"])
    zone, fold = v.get("z"), v.get("f", 0)
    if zone is not None:  # the same wall time in its zone (also a time in a DST gap)
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            return value.replace(tzinfo=ZoneInfo(zone), fold=fold)
        except (ZoneInfoNotFoundError, ValueError):  # no such zone here (no tzdata?): the
            pass  # recorded UTC offset still gives the right instant
    return value.replace(fold=fold) if fold else value


def _is_pydantic_model(value: Any) -> bool:
    from pydantic import BaseModel

    return isinstance(value, BaseModel)


def _decode_obj(value: Any, pickle_ok: bool) -> Any:
    cls = type(value)
    if cls is list:
        return [_decode_obj(v, pickle_ok) for v in value]
    if cls is not dict:
        return value
    tag = value.get(TAG)
    if tag is None:
        return {k: _decode_obj(v, pickle_ok) for k, v in value.items()}
    decoder = _DECODERS.get(tag)
    if decoder is None:
        raise SerializationError(
            f"stored value has unknown type tag {tag!r}; it was written by a newer Stead"
        )
    return decoder(value, pickle_ok)


def _dataclass(v: dict[str, Any], p: bool) -> Any:
    cls = _import_class(v["c"])
    data = {k: _decode_obj(x, p) for k, x in v["v"].items()}
    init = {f.name: data[f.name] for f in dataclasses.fields(cls) if f.init and f.name in data}
    obj = cls(**init)
    for f in dataclasses.fields(cls):
        if not f.init and f.name in data:
            object.__setattr__(obj, f.name, data[f.name])
    return obj


def _pickle(v: dict[str, Any], p: bool) -> Any:
    if not p:
        return PickledValue(v["v"])
    import pickle

    return pickle.loads(base64.b64decode(v["v"]))


class PickledValue:
    """A pickled value shown without unpickling it (the CLI never runs stored code)."""

    def __init__(self, data: str) -> None:
        self.data = data

    def __repr__(self) -> str:
        return f"<pickled value, {len(self.data) * 3 // 4} bytes>"


_DECODERS: dict[str, Callable[[dict[str, Any], bool], Any]] = {
    "float": lambda v, p: float(v["v"]),
    "int": lambda v, p: int(v["v"]),
    "dict": lambda v, p: {_hashable(_decode_obj(k, p)): _decode_obj(x, p) for k, x in v["v"]},
    "tuple": lambda v, p: tuple(_decode_obj(x, p) for x in v["v"]),
    "set": lambda v, p: {_hashable(_decode_obj(x, p)) for x in v["v"]},
    "frozenset": lambda v, p: frozenset(_hashable(_decode_obj(x, p)) for x in v["v"]),
    "bytes": lambda v, p: base64.b64decode(v["v"]),
    "bytearray": lambda v, p: bytearray(base64.b64decode(v["v"])),
    "datetime": _decode_clock,
    "date": lambda v, p: dt.date.fromisoformat(v["v"]),
    "time": _decode_clock,
    "timedelta": lambda v, p: dt.timedelta(*v["v"]),
    "decimal": lambda v, p: importlib.import_module("decimal").Decimal(v["v"]),
    "uuid": lambda v, p: importlib.import_module("uuid").UUID(v["v"]),
    "path": lambda v, p: _import_class(v["c"])(v["v"]),
    "enum": lambda v, p: _import_class(v["c"])(_decode_obj(v["v"], p)),
    "dataclass": _dataclass,
    "pydantic": lambda v, p: _import_class(v["c"]).model_validate(v["v"]),
    "pickle": _pickle,
    "secret": masking.decode_secret,  # a masked secret (core/masking.py), never its value
}


def _hashable(value: Any) -> Any:
    return tuple(value) if type(value) is list else value


def encode(value: Any, *, pickle_ok: bool = False, advice: str = TASK_ADVICE) -> str:
    """Encode `value` as JSON text; raise SerializationError for unsupported types, with
    `advice` (what to do instead: TASK_ADVICE, PARAMETER_ADVICE or FLOW_RESULT_ADVICE).

    Example:
        >>> encode({"day": dt.date(2026, 11, 21)})
        '{"day":{"$t":"date","v":"2026-11-21"}}'
    """
    cls = type(value)
    if cls is int and _INT_MIN <= value <= _INT_MAX:
        return str(value)
    try:
        if cls is str or cls is bool or value is None:
            return _dumps(value)
        return _dumps(_encode_obj(value, pickle_ok))
    except _Unstorable as exc:
        raise SerializationError(f"{exc}. {advice}") from None
    except orjson.JSONEncodeError as exc:  # e.g. text with a lone surrogate: not UTF-8
        raise SerializationError(f"cannot store {_short(value)}: {exc}") from None


def encode_arguments(values: dict[str, Any]) -> str:
    """Encode a dict of call arguments; flat dicts of plain scalars skip the tagging walk."""
    for v in values.values():
        cls = type(v)
        if cls is str or cls is bool or v is None:
            continue
        if cls is int and _INT_MIN <= v <= _INT_MAX:
            continue
        if cls is float and math.isfinite(v):
            continue
        return encode(values)
    try:
        return orjson.dumps(values).decode()
    except orjson.JSONEncodeError:  # text that is not valid UTF-8: say which value
        return encode(values)


def canonical(value: Any) -> str:
    """A canonical text of `value` (sorted keys): equal values give equal text everywhere."""
    return orjson.dumps(_sorted_pairs(_encode_obj(value, False)),
                        option=orjson.OPT_SORT_KEYS).decode()


def _sorted_pairs(value: Any) -> Any:
    """Order the pairs of tagged dicts (non-string keys) by key, for canonical text."""
    if type(value) is list:
        return [_sorted_pairs(v) for v in value]
    if type(value) is not dict:
        return value
    if value.get(TAG) == "dict":
        pairs = [[_sorted_pairs(k), _sorted_pairs(v)] for k, v in value["v"]]
        return {TAG: "dict", "v": sorted(pairs, key=lambda kv: _dumps(kv[0]))}
    return {k: _sorted_pairs(v) for k, v in value.items()}


def decode(text: str, *, pickle_ok: bool = False) -> Any:
    """Rebuild a value written by `encode`. Pickled values stay opaque unless pickle_ok."""
    return _decode_obj(_loads(text), pickle_ok)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
