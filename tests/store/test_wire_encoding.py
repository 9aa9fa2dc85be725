"""The fast wire encoder (store/wire.py `dumps`) writes exactly what the plain recursive one
it replaced wrote, for every record type, nested in the containers verbs pass."""

from __future__ import annotations

import dataclasses
import enum
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from stead.store import wire


def reference(value: Any) -> Any:
    """The encoder as it was: a dataclass check, then tuple, list and dict, on every value."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {f.name: reference(getattr(value, f.name)) for f in dataclasses.fields(value)}
        return {"__record__": type(value).__name__, **fields}
    if isinstance(value, tuple):
        return {"__tuple__": [reference(v) for v in value]}
    if isinstance(value, list):
        return [reference(v) for v in value]
    if isinstance(value, dict):
        return {k: reference(v) for k, v in value.items()}
    return value


class Colour(enum.StrEnum):  # a str subclass: must not take the plain-value shortcut wrong
    RED = "red"


@dataclasses.dataclass
class Foreign:  # a dataclass that is no store record
    x: Any


scalars = (st.none() | st.booleans() | st.integers(-(2 ** 63), 2 ** 63 - 1)
           | st.floats(allow_nan=False) | st.text(max_size=8) | st.just(Colour.RED))
records = st.one_of(*(st.from_type(cls) for cls in wire.RECORDS.values()))
values = st.recursive(
    scalars | records,
    lambda inner: st.lists(inner, max_size=3) | st.tuples(inner, inner)
    | st.dictionaries(st.text(max_size=5), inner, max_size=3) | st.builds(Foreign, inner),
    max_leaves=8)


@settings(max_examples=400, deadline=None)
@given(values)
def test_dumps_writes_what_the_reference_encoder_wrote(value: Any) -> None:
    assert outcome(wire.dumps, value) == outcome(lambda v: orjson.dumps(reference(v)), value)


def outcome(encode: Any, value: Any) -> bytes | str:
    """The bytes written, or the error (an integer beyond 64 bits fails both alike)."""
    try:
        return encode(value)  # type: ignore[no-any-return]
    except TypeError as exc:
        return f"TypeError: {exc}"
