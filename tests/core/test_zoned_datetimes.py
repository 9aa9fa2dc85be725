"""Datetimes and times with a ZoneInfo zone come back in that zone, DST folds included."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from stead import flow, task
from stead.core.serialization import decode, encode

BERLIN = ZoneInfo("Europe/Berlin")


def same_clock(a: dt.datetime | dt.time, b: dt.datetime | dt.time) -> bool:
    """Same type, wall time, fold, zone and offset (== alone ignores fold and zone)."""
    return (type(a) is type(b) and a.replace(tzinfo=None) == b.replace(tzinfo=None)
            and a.fold == b.fold and a.tzinfo == b.tzinfo and a.utcoffset() == b.utcoffset())


@settings(max_examples=300, deadline=None)
@given(st.datetimes(timezones=st.timezones(), allow_imaginary=True))
def test_any_zoned_datetime_round_trips_with_its_zone(value: dt.datetime) -> None:
    back = decode(encode(value))
    assert same_clock(back, value), (value, back)
    assert back == value


@settings(max_examples=100, deadline=None)
@given(st.times(timezones=st.timezones()), st.booleans())
def test_any_zoned_time_round_trips_with_its_zone(value: dt.time, fold: bool) -> None:
    value = value.replace(fold=int(fold))
    back = decode(encode({"at": value}))["at"]
    assert same_clock(back, value), (value, back)


def test_the_repeated_and_the_missing_hour_of_a_dst_change() -> None:
    first = dt.datetime(2026, 10, 25, 2, 30, tzinfo=BERLIN)  # 02:30 CEST, then 02:30 CET
    second = first.replace(fold=1)
    gap = dt.datetime(2026, 3, 29, 2, 30, tzinfo=BERLIN)  # does not exist on that day
    for value in (first, second, gap, dt.datetime(2026, 10, 25, 2, 30, fold=1)):
        assert same_clock(decode(encode(value)), value)
    assert decode(encode(second)).utcoffset() == dt.timedelta(hours=1)
    assert decode(encode(first)).utcoffset() == dt.timedelta(hours=2)


def test_a_reader_that_ignores_the_zone_still_gets_the_instant() -> None:
    # What a Stead before zone names (or a machine without tzdata) reads.
    value = dt.datetime(2026, 10, 25, 2, 30, fold=1, tzinfo=BERLIN)
    text = encode(value)
    fixed = decode(text.replace('"z":"Europe/Berlin"', '"z":"No/Such_Zone"'))
    # (== between zones is False for a time in a repeated hour, PEP 495: compare instants)
    assert fixed.timestamp() == value.timestamp()
    assert fixed.utcoffset() == dt.timedelta(hours=1)


def test_a_recorded_result_comes_back_in_its_zone(store) -> None:
    @task
    def meeting() -> dt.datetime:
        return dt.datetime(2026, 10, 25, 2, 30, fold=1, tzinfo=ZoneInfo("Europe/Berlin"))

    @flow
    def plan(zone: ZoneInfo | str, at: dt.datetime) -> dict[str, dt.datetime]:
        return {"meeting": meeting(), "at": at}

    at = dt.datetime(2026, 3, 29, 1, 59, tzinfo=ZoneInfo("America/New_York"))
    fresh = plan.with_options(run_id="zoned")("x", at)
    replayed = plan.with_options(run_id="zoned")("x", at)  # the recorded result, decoded
    for key in ("meeting", "at"):
        assert same_clock(replayed[key], fresh[key])
    assert replayed["meeting"].tzinfo == ZoneInfo("Europe/Berlin")
