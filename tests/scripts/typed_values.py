"""Values of every supported result type, importable by both the test and the scripts."""

import dataclasses
import datetime as dt
import enum
import uuid
from decimal import Decimal
from pathlib import Path

import pydantic


class Level(enum.Enum):
    LOW = 1
    HIGH = "high"


@dataclasses.dataclass
class Row:
    id: int
    name: str
    when: dt.date


class Batch(pydantic.BaseModel):
    rows: list[Row]
    created: dt.datetime


def examples() -> list:
    return [
        {"json": [1, 2.5, "three", None, True, {"nested": []}]},
        (1, "tuple"),
        {3, 1, 2},
        frozenset({"a"}),
        b"\x00bytes\xff",
        dt.datetime(2026, 11, 22, 18, 46, 5, 123456, tzinfo=dt.UTC),
        dt.date(2026, 11, 22),
        dt.timedelta(hours=25, microseconds=3),
        Decimal("12.50"),
        uuid.UUID("12345678-1234-5678-1234-567812345678"),
        Path("/data/in.csv"),
        Level.HIGH,
        Row(1, "first", dt.date(2026, 1, 1)),
        Batch(rows=[Row(2, "second", dt.date(2026, 2, 2))],
              created=dt.datetime(2026, 11, 22, tzinfo=dt.UTC)),
        {1: "int keys", (2, 3): "tuple keys"},
        2**80,
    ]
