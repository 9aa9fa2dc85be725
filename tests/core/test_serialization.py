"""Every supported type round-trips; unsupported ones fail clearly. Hypothesis explores shapes."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import math
import uuid
from decimal import Decimal
from pathlib import Path, PurePosixPath

import pydantic
import pytest
from hypothesis import given
from hypothesis import strategies as st

from stead.core.serialization import decode, encode
from stead.errors import SerializationError


class Color(enum.Enum):
    RED = "red"
    BLUE = 2


@dataclasses.dataclass(frozen=True)
class Point:
    x: int
    y: float
    tags: tuple[str, ...] = ()


@dataclasses.dataclass
class WithDerived:
    a: int
    b: int = dataclasses.field(init=False, default=0)

    def __post_init__(self) -> None:
        self.b = self.a * 2


class Order(pydantic.BaseModel):
    id: int
    placed: dt.datetime
    lines: list[Point]


EXAMPLES = [
    None, True, 0, -1, 2**63, -(2**70), 1.5, math.inf, -math.inf, "", "héllo ☃",
    [1, [2, [3]]], {"a": 1}, {1: "int key"}, {(1, 2): "tuple key"}, {"$t": "looks like a tag"},
    (1, "a"), (), {1, 2, 3}, frozenset({"x"}), b"\x00\xff", bytearray(b"ab"),
    dt.datetime(2026, 11, 22, 18, 46, tzinfo=dt.UTC), dt.datetime(2026, 1, 1, 0, 0),
    dt.date(2026, 3, 29), dt.time(2, 30, 1), dt.timedelta(days=2, seconds=5, microseconds=7),
    Decimal("1.10"), uuid.UUID(int=7), Path("/tmp/x"), PurePosixPath("a/b"), Color.RED,
    Color.BLUE, Point(1, 2.5, ("a",)), WithDerived(3),
    Order(id=1, placed=dt.datetime(2026, 11, 22, tzinfo=dt.UTC), lines=[Point(1, 1.0)]),
]


@pytest.mark.parametrize("value", EXAMPLES, ids=lambda v: type(v).__name__)
def test_supported_values_round_trip_with_their_type(value) -> None:
    back = decode(encode(value))
    assert back == value and type(back) is type(value)


def test_nan_round_trips() -> None:
    assert math.isnan(decode(encode(math.nan)))


json_scalars = st.none() | st.booleans() | st.integers() | st.text() | st.floats(
    allow_nan=False)
hashables = st.recursive(
    json_scalars | st.binary() | st.dates() | st.decimals(allow_nan=False) | st.uuids(),
    lambda inner: st.tuples(inner, inner) | st.frozensets(inner, max_size=3), max_leaves=8)
values = st.recursive(
    hashables | st.datetimes(timezones=st.none() | st.just(dt.UTC)) | st.timedeltas(),
    lambda inner: (st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4)
                   | st.dictionaries(hashables, inner, max_size=3)
                   | st.sets(hashables, max_size=3)
                   | st.builds(Point, st.integers(), st.floats(allow_nan=False),
                               st.lists(st.text(), max_size=2).map(tuple))),
    max_leaves=20)


@given(values)
def test_any_nesting_of_supported_values_round_trips(value) -> None:
    assert decode(encode(value)) == value


@given(hashables)
def test_encoding_is_deterministic_for_sets(value) -> None:
    assert encode({value, "other"}) == encode({"other", value})


def test_unsupported_value_names_its_type_and_the_way_out() -> None:
    with pytest.raises(SerializationError,
                       match=r"builtins\.object cannot be stored.*serializer='pickle'"):
        encode({"ok": 1, "bad": [object()]})


def test_pickled_values_stay_opaque_unless_allowed() -> None:
    text = encode(Unsupported(3), pickle_ok=True)
    assert repr(decode(text)).startswith("<pickled value")
    assert decode(text, pickle_ok=True).v == 3


class Unsupported:
    def __init__(self, v: int) -> None:
        self.v = v
