"""Flows that tests deploy (imported by module name `deployed_flows`)."""

from datetime import date
from enum import Enum

from pydantic import BaseModel

from stead import flow


class Region(Enum):
    EU = "eu"
    US = "us"


class Window(BaseModel):
    start: int
    end: int


@flow
def report(day: date, region: Region = Region.EU, limit: int = 10,
           window: Window | None = None) -> str:
    """Says what it received, with the types, so tests see the values were typed."""
    span = f"{window.start}-{window.end}" if window else "-"
    return f"{type(day).__name__} {day.isoformat()} {region.value} {limit} {span}"


@flow
def tidy() -> str:
    return "tidied"
