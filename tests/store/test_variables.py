"""Variables on every backend (SQLite, PostgreSQL, remote through a real server): the store
verbs' contract, the rules of names and values, and `Variable` inside and outside flows."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stead import flow
from stead.errors import InvalidVariable, VariableExists
from stead.settings import reset_settings
from stead.store.base import Store
from stead.store.variables import VALUE_MAX_BYTES, value_to_json
from stead.variables import Variable

TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=20)  # no lone surrogate
JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False) | TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=12)
NAMES = st.from_regex(r"[a-z0-9_-]{1,40}", fullmatch=True)


def test_a_variable_round_trips_and_overwrite_is_explicit(store: Store) -> None:
    first = store.set_variable("batch_size", "default", "500", ["etl"], 100.0)
    assert (first.name, first.value, first.tags) == ("batch_size", 500, ["etl"])
    assert (first.created_at, first.updated_at) == (100.0, 100.0)
    with pytest.raises(VariableExists, match="--overwrite"):
        store.set_variable("batch_size", "default", "1", None, 101.0)
    assert store.get_variable("batch_size", "default").value == 500  # unchanged
    # Replacing keeps created_at and, with tags None, the tags; given tags replace them.
    again = store.set_variable("batch_size", "default", "1000", None, 102.0, overwrite=True)
    assert (again.value, again.tags, again.created_at, again.updated_at) == (
        1000, ["etl"], 100.0, 102.0)
    cleared = store.set_variable("batch_size", "default", "1000", [], 103.0, overwrite=True)
    assert cleared.tags == []
    assert store.get_variable("batch_size", "default") == cleared
    assert store.delete_variable("batch_size", "default") is True
    assert store.delete_variable("batch_size", "default") is False
    assert store.get_variable("batch_size", "default") is None


def test_namespaces_prefixes_and_limits(store: Store) -> None:
    for ns, name in [("default", "a_b"), ("default", "axb"), ("default", "a_c"),
                     ("team-a", "a_b"), ("team-a", "zed")]:
        store.set_variable(name, ns, json.dumps(f"{ns}/{name}"), None, 1.0)
    everything = store.list_variables(None)
    assert [(v.namespace, v.name) for v in everything] == [
        ("default", "a_b"), ("default", "a_c"), ("default", "axb"), ("team-a", "a_b"),
        ("team-a", "zed")]
    assert store.get_variable("a_b", "team-a").value == "team-a/a_b"
    # "_" in a prefix is a character, not a wildcard: axb does not start with "a_".
    assert [v.name for v in store.list_variables("default", "a_")] == ["a_b", "a_c"]
    assert [v.name for v in store.list_variables("team-a")] == ["a_b", "zed"]
    assert [v.name for v in store.list_variables("default", None, 2)] == ["a_b", "a_c"]
    assert store.list_variables("nobody") == []
    assert store.delete_variable("a_b", "team-a") is True
    assert store.get_variable("a_b", "default") is not None  # the other namespace's stays


@pytest.mark.parametrize("name", ["", "Upper", "has space", "dot.ted", "x" * 256, "ünï",
                                  "a/b"])
def test_the_store_refuses_names_that_are_not_names(store: Store, name: str) -> None:
    with pytest.raises(InvalidVariable, match="lowercase letters"):
        store.set_variable(name, "default", "1", None, 1.0)
    assert store.list_variables(None) == []


@pytest.mark.parametrize("text", ["NaN", "{'a': 1}", "", "[1,", "Infinity", "undefined"])
def test_the_store_refuses_text_that_is_not_json(store: Store, text: str) -> None:
    """What a remote caller sends as value_json is checked where the database is."""
    with pytest.raises(InvalidVariable):
        store.set_variable("x", "default", text, None, 1.0)
    assert store.get_variable("x", "default") is None


def test_values_and_tags_have_limits(store: Store) -> None:
    just = json.dumps("x" * (VALUE_MAX_BYTES - 2))
    assert store.set_variable("big", "default", just, None, 1.0).value == "x" * (
        VALUE_MAX_BYTES - 2)
    with pytest.raises(InvalidVariable, match="at most 65536"):
        store.set_variable("bigger", "default", json.dumps("x" * VALUE_MAX_BYTES), None, 1.0)
    with pytest.raises(InvalidVariable, match="tag"):
        store.set_variable("t", "default", "1", [""], 1.0)
    with pytest.raises(InvalidVariable, match="at most 50 tags"):
        store.set_variable("t", "default", "1", [f"t{i}" for i in range(51)], 1.0)
    assert store.set_variable("t", "default", "1", ["a", "b", "a"], 1.0).tags == ["a", "b"]


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=NAMES, value=JSON)
def test_any_json_value_comes_back_equal(store: Store, name: str, value: Any) -> None:
    stored = store.set_variable(name, "default", value_to_json(value), None, 1.0,
                                overwrite=True)
    assert stored.value == value
    assert store.get_variable(name, "default").value == value


@settings(max_examples=200, deadline=None)
@given(name=st.text(max_size=300))
def test_a_name_is_valid_exactly_when_it_follows_the_rule(name: str) -> None:
    from stead.store.variables import check_name

    rule = 1 <= len(name) <= 255 and all(c in "abcdefghijklmnopqrstuvwxyz0123456789_-"
                                         for c in name)
    if rule:
        assert check_name(name) == name
    else:
        with pytest.raises(InvalidVariable):
            check_name(name)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), (1, 2), {1: "a"}, {1, 2},
                                   b"bytes", object(), "\ud800", [{"deep": float("-inf")}]])
def test_values_that_are_not_json_are_refused_with_what_they_are(value: Any) -> None:
    with pytest.raises(InvalidVariable, match="JSON"):
        Variable.set("x", value)


# -- the Python API ----------------------------------------------------------------------------
def test_variable_api_outside_flows(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    assert Variable.get("retries") is None and Variable.get("retries", 3) == 3
    made = Variable.set("retries", 5, tags=("etl",))
    assert made == Variable("retries", 5, ["etl"], "default")
    with pytest.raises(ValueError, match="already exists"):  # as Prefect: a ValueError
        Variable.set("retries", 6)
    assert Variable.set("retries", 6, overwrite=True).value == 6
    # Prefect's positional order: name, value, tags, overwrite.
    assert Variable.set("retries", 6, ["etl", "prod"], True).tags == ["etl", "prod"]
    assert Variable.get("retries") == 6
    assert [v.name for v in Variable.list()] == ["retries"]
    # STEAD_NAMESPACE chooses the namespace, as it does for runs.
    monkeypatch.setenv("STEAD_NAMESPACE", "team-a")
    reset_settings()
    assert Variable.get("retries") is None
    Variable.set("retries", {"max": 2})
    assert Variable.get("retries") == {"max": 2}
    assert Variable.get("retries", namespace="default") == 6
    assert Variable.unset("retries") is True and Variable.unset("retries") is False
    assert Variable.get("retries", namespace="default") == 6


def test_async_variants(store: Store) -> None:
    import asyncio

    async def main() -> tuple[Any, ...]:
        await Variable.aset("mode", "fast")
        listed = await Variable.alist()
        return (await Variable.aget("mode"), [v.name for v in listed],
                await Variable.aunset("mode"), await Variable.aget("mode", "slow"))

    assert asyncio.run(main()) == ("fast", ["mode"], True, "slow")


def test_a_resumed_run_reads_what_its_first_execution_read(store: Store) -> None:
    """Reading a variable in a flow is a recorded step: changing the variable between a
    crash and the resume does not change the path the run takes."""
    Variable.set("threshold", 10)
    seen: list[Any] = []
    crash = {"on": True}

    @flow
    def check() -> str:
        threshold = Variable.get("threshold")
        seen.append(threshold)
        if crash["on"]:
            raise KeyboardInterrupt  # the process dies here
        return "big" if threshold > 5 else "small"

    with pytest.raises(KeyboardInterrupt):
        check.with_options(run_id="check-1")()
    Variable.set("threshold", 1, overwrite=True)  # an operator changes it meanwhile
    crash["on"] = False
    assert check.resume("check-1") == "big"
    assert seen == [10, 10]
    steps = store.load_steps("check-1").values()
    assert [(s.kind, s.name) for s in steps] == [("variable", "Variable.get('threshold')")]
    assert check() == "small"  # a new run reads the new value


def test_a_resumed_run_does_not_write_again(store: Store) -> None:
    """`Variable.set` without overwrite does not fail on resume because the run itself made
    the variable; `unset` answers what it answered the first time."""
    crash = {"on": True}

    @flow
    def claim() -> tuple[Any, bool]:
        made = Variable.set("owner", "claim-1")
        gone = Variable.unset("stale")
        if crash["on"]:
            raise KeyboardInterrupt
        return made.value, gone

    Variable.set("stale", True)
    with pytest.raises(KeyboardInterrupt):
        claim.with_options(run_id="claim-1")()
    crash["on"] = False
    assert claim.resume("claim-1") == ("claim-1", True)
    assert Variable.get("owner") == "claim-1"


def test_a_failed_write_in_a_flow_is_recorded_and_replayed(store: Store) -> None:
    """A flow that catches VariableExists takes the same path on resume."""
    Variable.set("lock", "someone-else")
    calls = {"n": 0}
    crash = {"on": True}

    @flow
    def take() -> str:
        try:
            Variable.set("lock", "me")
            got = "mine"
        except VariableExists:
            got = "taken"
        calls["n"] += 1
        if crash["on"]:
            raise KeyboardInterrupt
        return got

    with pytest.raises(KeyboardInterrupt):
        take.with_options(run_id="take-1")()
    Variable.unset("lock")  # free now, but the run already saw it taken
    crash["on"] = False
    assert take.resume("take-1") == "taken"
    assert Variable.get("lock") is None and calls["n"] == 2


def test_the_run_namespace_is_the_default_inside_a_run(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    Variable.set("region", "eu", namespace="team-a")
    Variable.set("region", "us")
    monkeypatch.setenv("STEAD_NAMESPACE", "team-a")
    reset_settings()

    @flow
    def where() -> str:
        return Variable.get("region")

    assert where() == "eu"


def test_in_async_flows_and_in_tasks(store: Store) -> None:
    import asyncio

    from stead import task

    Variable.set("base", 7)

    @task
    def add(i: int) -> int:
        return Variable.get("base") + i  # inside the task's body: a step of the task

    @flow
    def mapped() -> list[int]:
        return [f.result() for f in add.map(range(3))]

    @flow
    async def reads() -> int:
        return await Variable.aget("base")

    assert mapped.with_options(run_id="mapped-1")() == [7, 8, 9]
    assert asyncio.run(reads.with_options(run_id="async-1")()) == 7
    assert [s.name for s in store.load_steps("async-1").values()] == ["Variable.get('base')"]
    inner = [s for s in store.load_steps("mapped-1").values() if s.kind == "variable"]
    assert sorted(s.key for s in inner) == ["1.1", "2.1", "3.1"]
