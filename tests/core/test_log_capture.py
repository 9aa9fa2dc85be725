"""`extra=` fields of log calls are kept, and standard-library loggers can be captured."""

from __future__ import annotations

import datetime as dt
import json
import logging

import pytest

from stead import flow, get_logger, task
from stead.core.runlog import split_fields
from stead.errors import ConfigError
from stead.settings import reset_settings
from stead.store.base import RunFilter


def logs_of(store, flow_name: str) -> list[tuple[str | None, int, str]]:
    [run] = [r for r in store.list_runs(RunFilter()) if r.flow_name == flow_name]
    return [(g.step_key, g.level, g.message) for g in store.read_logs(run.id)]


def test_extra_fields_are_stored_with_the_line_and_can_be_split_off(store) -> None:
    when = dt.datetime(2026, 11, 21, 3, 0, tzinfo=dt.UTC)

    @flow
    def extras() -> None:
        get_logger().info("loaded %d rows", 3, extra={"table": "orders", "n": 3, "at": when})
        get_logger().info("plain line")
        try:
            raise ValueError("bad row 7")
        except ValueError:
            get_logger().exception("parse failed", extra={"row": 7})

    extras()
    [(_, _, loaded), (_, _, plain), (_, level, failed)] = logs_of(store, "extras")
    assert loaded == ('loaded 3 rows  {"table": "orders", "n": 3, "at": '
                      + json.dumps(repr(when)) + "}")  # not JSON: its repr
    assert split_fields(loaded) == ("loaded 3 rows",
                                    {"table": "orders", "n": 3, "at": repr(when)})
    assert split_fields(plain) == ("plain line", {})
    message, fields = split_fields(failed)
    assert fields == {"row": 7} and level == logging.ERROR
    assert message.startswith("parse failed\nTraceback") and "ValueError: bad row 7" in message


def test_loggers_named_in_stead_loggers_are_recorded_inside_runs_only(
        store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STEAD_LOGGERS", "capture_env_lib, capture_env_other")
    reset_settings()
    lib = logging.getLogger("capture_env_lib.client")  # a child of a captured logger
    ignored = logging.getLogger("capture_env_unlisted")

    @task
    def fetch() -> int:
        lib.info("GET /orders", extra={"status": 200})
        ignored.warning("not captured")
        return 1

    @flow
    def uses_lib() -> int:
        lib.warning("in the flow body")
        return fetch()

    assert uses_lib() == 1
    lib.warning("outside any run: not stored")
    assert logs_of(store, "uses_lib") == [
        (None, logging.WARNING, "in the flow body"),
        ("1", logging.INFO, 'GET /orders  {"status": 200}')]
    assert len(store.list_runs(RunFilter())) == 1


def test_a_flows_log_loggers_are_recorded_in_its_runs_not_in_other_flows(store) -> None:
    lib = logging.getLogger("capture_opt_lib")
    both = logging.getLogger("capture_opt_lib.inner")

    @flow(log_loggers=["capture_opt_lib", "capture_opt_lib.inner"])
    def wants_lib() -> None:
        lib.info("from lib")
        both.info("seen by two captured loggers, stored once")

    @flow
    def does_not() -> None:
        lib.info("not for this flow")

    wants_lib()
    does_not()
    assert logs_of(store, "wants_lib") == [
        (None, logging.INFO, "from lib"),
        (None, logging.INFO, "seen by two captured loggers, stored once")]
    assert logs_of(store, "does_not") == []
    assert wants_lib.with_options(run_id="again").log_loggers == wants_lib.log_loggers


def test_log_loggers_must_be_a_list_of_names() -> None:
    with pytest.raises(ConfigError, match=r"log_loggers must be a list of logger names"):
        flow(log_loggers="mylib")(lambda: None)
