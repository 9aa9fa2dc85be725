"""Fuzzing the wire form of store verbs (store/wire.py, server/store_rpc.py) with Hypothesis:
arbitrary JSON and arbitrary bytes never make the decoder raise anything but its
WireFormatError, nor a store call answer anything but a success or a clean 4xx (never a 500),
against a real SQLite store; and every record survives `loads(dumps(x))`."""

from __future__ import annotations

import dataclasses
import json
import typing
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stead.errors import WireFormatError
from stead.server.store_rpc import run_verb
from stead.store import open_store, wire
from stead.store.base import Store

FUZZ = settings(max_examples=300, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])
VERBS = sorted(wire.VERBS)
INT64 = st.integers(-(2 ** 63), 2 ** 63 - 1)
TEXT = st.text(max_size=20)

def to_json(value: Any) -> bytes:
    """JSON text as any client may send it (integers of any size, escaped lone surrogates)."""
    return json.dumps(value).encode()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2 ** 64), 2 ** 64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False) | TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=12)


def wire_like() -> st.SearchStrategy[Any]:
    """JSON that looks like the wire form: records (known and not, with good, unknown and
    missing fields), tuples, and plain values."""
    record = st.builds(
        lambda name, fields: {"__record__": name, **fields},
        st.sampled_from([*wire.RECORDS, "Nope", ""]) | json_values,
        st.dictionaries(st.sampled_from(["id", "run_id", "epoch", "limit", "state", "key",
                                         "name", "flow_name", "after", "bogus"]),
                        json_values, max_size=5))
    tuple_ = st.builds(lambda items: {"__tuple__": items}, json_values)
    return st.recursive(json_values | record | tuple_,
                        lambda inner: st.lists(inner, max_size=4), max_leaves=8)


bodies = st.one_of(
    st.binary(max_size=200),
    json_values.map(to_json),
    st.builds(lambda args, kwargs: to_json({"args": args, "kwargs": kwargs}),
              st.lists(wire_like(), max_size=6),
              st.dictionaries(st.sampled_from(["fence", "message", "count", "limit", "x"]),
                              wire_like(), max_size=3)),
)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> typing.Iterator[Store]:
    path: Path = tmp_path_factory.mktemp("fuzz") / "stead.db"
    s = open_store(f"sqlite:///{path}")
    yield s
    s.close()


@FUZZ
@given(st.binary(max_size=300) | json_values.map(to_json) | wire_like().map(to_json))
def test_loads_raises_only_its_own_error(data: bytes) -> None:
    try:
        wire.loads(data)
        wire.loads_call(data)
    except WireFormatError:
        pass


@FUZZ
@given(verb=st.sampled_from(VERBS), body=bodies)
def test_any_body_to_any_verb_answers_a_success_or_a_clean_4xx(store: Store, verb: str,
                                                               body: bytes) -> None:
    answer = run_verb(store, verb, body)
    assert answer.status_code == 200 or 400 <= answer.status_code < 500, (
        verb, body, answer.status_code, answer.body)
    decoded = json.loads(answer.body)
    if answer.status_code != 200:
        assert set(decoded["error"]) >= {"type", "message"}
        assert "Traceback" not in decoded["error"]["message"]


def _strategy(hint: Any) -> st.SearchStrategy[Any]:
    """Values of a record field's type hint (as store/base.py writes them)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is type(None):
        return st.none()
    if hint is str:
        return TEXT
    if hint is int:
        return INT64
    if hint is float:
        return st.floats(allow_nan=False, allow_infinity=False)
    if hint is bool:
        return st.booleans()
    if origin in (typing.Union, __import__("types").UnionType):
        return st.one_of([_strategy(a) for a in args])
    if origin is list:
        return st.lists(_strategy(args[0]), max_size=3)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return st.lists(_strategy(args[0]), max_size=3).map(tuple)
        return st.tuples(*[_strategy(a) for a in args])
    if origin is dict:
        return st.dictionaries(_strategy(args[0]), _strategy(args[1]), max_size=3)
    raise AssertionError(f"no strategy for {hint!r}")


def records() -> st.SearchStrategy[Any]:
    options = []
    for cls in wire.RECORDS.values():
        hints = typing.get_type_hints(cls)
        fields = {f.name: _strategy(hints[f.name]) for f in dataclasses.fields(cls)}
        options.append(st.builds(cls, **fields))
    return st.one_of(options)


@FUZZ
@given(records())
def test_every_record_survives_the_round_trip(record: Any) -> None:
    assert wire.loads(wire.dumps(record)) == record
    assert wire.loads(wire.dumps([record, (record, None)])) == [record, (record, None)]


@FUZZ
@given(verb=st.sampled_from(VERBS), args=st.lists(records() | TEXT | INT64, max_size=5))
def test_records_as_arguments_never_make_a_500(store: Store, verb: str, args: list[Any]) -> None:
    answer = run_verb(store, verb, wire.dumps({"args": args}))
    assert answer.status_code == 200 or 400 <= answer.status_code < 500, (
        verb, args, answer.status_code, answer.body)
