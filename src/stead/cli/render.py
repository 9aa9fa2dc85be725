"""Formatting helpers for the commands: times, durations, ids, states, stored values, errors."""

from __future__ import annotations

import json
import reprlib
import time
from dataclasses import dataclass
from typing import Any

from rich import box
from rich.table import Table
from rich.text import Text

from stead.cli.common import OPTIONS
from stead.core.process import owner_is_alive
from stead.core.runtime import result_files
from stead.core.serialization import decode
from stead.errors import SteadError
from stead.store.base import RunRecord, StepRecord
from stead.store.waits import WaitRecord

FINAL_STATES = frozenset({"Completed", "Cached", "Failed", "Cancelled"})
LIVE_STATES = frozenset({"Running", "Retrying", "Pending", "Cancelling"})
STATE_STYLES = {
    "Completed": "green", "Cached": "green", "Running": "cyan", "Retrying": "yellow",
    "Pending": "blue", "Scheduled": "blue", "Late": "yellow", "Paused": "magenta",
    "Failed": "bold red", "Crashed": "red", "Cancelling": "magenta", "Cancelled": "dim",
}
_repr = reprlib.Repr()
_repr.maxstring, _repr.maxother, _repr.maxlist, _repr.maxdict = 60, 60, 8, 8
_repr.maxlevel = 3


class PlainTable(Table):
    """A table whose string cells are plain text: stored names, values and messages may
    contain square brackets, which Rich would otherwise read as markup."""

    def add_row(self, *renderables: Any, **kwargs: Any) -> None:
        super().add_row(*(Text(r) if isinstance(r, str) else r for r in renderables), **kwargs)


def kv_grid() -> Table:
    """Two columns, label and value, for a run's header."""
    table = PlainTable.grid(padding=(0, 2))
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    return table


def table(title: str | None = None) -> Table:
    """A compact table: one space between columns, a rule under the header."""
    return PlainTable(title=title, title_justify="left", title_style="bold",
                      box=box.SIMPLE_HEAD, padding=(0, 1), collapse_padding=True, pad_edge=False)


# -- times ---------------------------------------------------------------------------------
def fmt_time(at: float | None, *, date: bool = True, ms: bool = False) -> str:
    """Local time: ``2026-11-22 18:47:01`` (or only the time of day, optionally with ms)."""
    if at is None:
        return "-"
    text = time.strftime("%Y-%m-%d %H:%M:%S" if date else "%H:%M:%S", time.localtime(at))
    return text + f".{int(at % 1 * 1000):03d}" if ms else text


def fmt_duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 0:
        seconds = 0.0
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h {minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d {hours:02d}h"


def span(started: float | None, ended: float | None, live: bool = False) -> str:
    """The duration between two times; a live item without an end counts up to now (``…``)."""
    if started is None:
        return "-"
    if ended is None:
        return fmt_duration(time.time() - started) + "…" if live else "-"
    return fmt_duration(ended - started)


# -- ids and steps -------------------------------------------------------------------------
# Run ids are shown whole, everywhere: custom ids such as "nightly-2026-11-21" share long
# prefixes, so any cut can name several runs. In tables an id column is as wide as its
# longest id, so Rich narrows the wrapping columns (names, times) first; only on a screen too
# narrow for the rest it folds (the id goes on in the next line), never losing a character.
# (`no_wrap=True` would crop: Rich cuts a no-wrap cell at the column width, fold or not.)
def add_id_column(tbl: Table, name: str, ids: list[str], justify: str = "left") -> None:
    """Add a column of run ids to `tbl` that shows every id whole (see above)."""
    tbl.add_column(name, justify=justify, width=max(len(name), *map(len, ids)),  # type: ignore[arg-type]
                   overflow="fold")


def step_order(key: str) -> tuple[int, ...]:
    """Sort key for dotted step positions: "2" < "2.1" < "10"."""
    try:
        return tuple(int(part) for part in key.split("."))
    except ValueError:
        return (1 << 62,)


def step_history(step: StepRecord) -> list[tuple[str, float | None, str | None]]:
    """The step's (state, at, message) changes; derived from its times when not stored."""
    if step.history and step.history != "[]":
        try:
            return [(entry[0], entry[1], entry[2]) for entry in json.loads(step.history)]
        except (ValueError, TypeError, IndexError):
            pass
    changes: list[tuple[str, float | None, str | None]] = [("Running", step.started_at, None)]
    if step.state != "Running":
        changes.append((step.state, step.ended_at, None))
    return changes


# -- states --------------------------------------------------------------------------------
@dataclass(slots=True)
class RunStatus:
    state: str
    alive: bool | None  # is the owner process alive (live states only); None: unknown or n/a

    @property
    def gone(self) -> bool:
        """A live-looking run whose process is dead: it crashed without recording it."""
        return self.state in LIVE_STATES and self.alive is False

    def label(self, *, short: bool) -> str:
        if not self.gone:
            return self.state
        return "Crashed?" if short else f"{self.state} (process gone)"

    def text(self, *, short: bool = True) -> Text:
        style = "bold red" if self.gone else STATE_STYLES.get(self.state, "")
        return Text(self.label(short=short), style=style)


def run_status(run: RunRecord) -> RunStatus:
    if run.state not in LIVE_STATES or not run.owner:  # e.g. a Pending run no process took yet
        return RunStatus(run.state, None)
    return RunStatus(run.state, owner_is_alive(run.owner))


def state_text(state: str) -> Text:
    return Text(state, style=STATE_STYLES.get(state, ""))


# -- values and errors ---------------------------------------------------------------------
def clip(text: str, limit: int) -> str:
    text = " ".join(text.split()) if "\n" in text else text
    return text if len(text) <= limit else text[:limit - 1] + "…"


def short_repr(value: Any, limit: int = 80) -> str:
    return clip(_repr.repr(value), limit)


class _Shown:
    """A stand-in whose repr is fixed: how a value of a class not importable here looks."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


def preview(data: Any) -> Any:
    """Rebuild decoded JSON for display only: classes become look-alikes, never imported."""
    if isinstance(data, list):
        return [preview(v) for v in data]
    if not isinstance(data, dict):
        return data
    tag = data.get("$t")
    if tag is None:
        return {k: preview(v) for k, v in data.items()}
    name = str(data.get("c", "?")).rpartition(":")[2]
    if tag in ("dataclass", "pydantic") and isinstance(data.get("v"), dict):
        fields = ", ".join(f"{k}={preview(v)!r}" for k, v in data["v"].items())
        return _Shown(f"{name}({fields})")
    if tag in ("enum", "path"):
        return _Shown(f"{name}({preview(data.get('v'))!r})")
    try:
        return decode(json.dumps(data))
    except Exception:
        return _Shown(json.dumps(data))


def value_summary(text: str | None, ref: str | None = None, limit: int = 80) -> str:
    """A short repr of a stored (encoded) value; never unpickles.

    Values whose class cannot be imported here are shown as their stored JSON.
    """
    try:
        raw = result_files(OPTIONS.opened_url).load(text, ref)
    except SteadError as exc:
        return f"<result unavailable: {exc}>"
    try:
        value = decode(raw)
    except Exception:  # class not importable here (e.g. defined in a script): a look-alike
        try:
            value = preview(json.loads(raw))
        except ValueError:
            return clip(raw, limit)
    return short_repr(value, limit)


def params_summary(text: str | None, limit: int = 200) -> str:
    if not text or text == "{}":
        return "(none)"
    try:
        data = json.loads(text)
    except ValueError:
        return clip(text, limit)
    if isinstance(data, dict) and set(data) == {"$repr"}:  # stored as a repr (too large)
        return clip(str(data["$repr"]), limit)
    try:
        values = decode(text)
    except Exception:
        values = preview(data)
    if isinstance(values, dict):
        return clip(", ".join(f"{k}={_repr.repr(v)}" for k, v in values.items()), limit)
    return clip(_repr.repr(values), limit)


def parse_error(error: str | None) -> dict[str, Any] | None:
    """The stored error JSON as a dict (type, message, traceback, step, attempts)."""
    if not error:
        return None
    try:
        data = json.loads(error)
    except ValueError:
        return {"type": "?", "message": error}
    return data if isinstance(data, dict) else {"type": "?", "message": str(data)}


def error_type(data: dict[str, Any]) -> str:
    name = str(data.get("type") or "?")
    return name.removeprefix("builtins.")


def error_summary(data: dict[str, Any] | None, limit: int = 100) -> str:
    if not data:
        return "no error recorded"
    return clip(f"{error_type(data)}: {data.get('message', '')}", limit)


# -- waits ---------------------------------------------------------------------------------
def _at(at: float, now: float, *, seconds: bool = False) -> str:
    """A wake-up time, as short as it stays clear: ``10:00`` today, ``12-07 10:00`` this
    year, ``2027-01-05 10:00`` later; with seconds (``10:00:05``) when asked or when it is
    less than ten minutes away."""
    when, today = time.localtime(at), time.localtime(now)
    clock = "%H:%M:%S" if seconds or abs(at - now) < 600 else "%H:%M"
    if when[:3] == today[:3]:
        return time.strftime(clock, when)
    if when.tm_year == today.tm_year:
        return time.strftime(f"%m-%d {clock}", when)
    return time.strftime(f"%Y-%m-%d {clock}", when)


def wait_detail(wait: WaitRecord) -> dict[str, Any]:
    """The wait's `detail` JSON as a dict ({} when it holds none, or something else)."""
    try:
        detail = json.loads(wait.detail or "{}")
    except ValueError:
        return {}
    return detail if isinstance(detail, dict) else {}


def wait_text(wait: WaitRecord, now: float) -> str:
    """What a run waits for, in one line (`runs ls`, `runs show`).

    >>> wait_text(WaitRecord("r1", "message", "3", topic="payment"), time.time())
    "message 'payment'"
    """
    until = f" (until {_at(wait.wake_at, now)})" if wait.wake_at is not None else ""
    if wait.kind == "timer":
        return f"sleep until {_at(wait.wake_at, now)}" if wait.wake_at is not None else "sleep"
    if wait.kind == "retry":
        return (f"retry at {_at(wait.wake_at, now, seconds=True)}" if wait.wake_at is not None
                else "retry")
    if wait.kind == "message":
        return f"message {wait.topic!r}{until}"
    if wait.kind == "input":
        description = str(wait_detail(wait).get("description") or "")
        return f"input: {clip(description, 60)}{until}" if description else f"input{until}"
    if wait.kind == "child":
        return f"child {wait.topic}"
    return f"{wait.kind}{until}"


def _field_type(spec: dict[str, Any]) -> str:
    if "enum" in spec:
        return "one of " + ", ".join(json.dumps(v) for v in spec["enum"])
    if "$ref" in spec:
        return str(spec["$ref"]).rpartition("/")[2]
    if isinstance(spec.get("anyOf"), list):
        return " or ".join(_field_type(s) for s in spec["anyOf"] if isinstance(s, dict))
    kind = spec.get("type", "any")
    if kind == "array" and isinstance(spec.get("items"), dict):
        return f"list of {_field_type(spec['items'])}"
    return " or ".join(kind) if isinstance(kind, list) else str(kind)


def input_fields(wait: WaitRecord) -> list[str]:
    """The fields of the form an input wait asks for, from its JSON Schema, one a line:
    ``approved: boolean (required)``, ``note: string = ""``.

    >>> input_fields(WaitRecord("r1", "input", "4", detail=json.dumps({"schema": {
    ...     "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}})))
    ['ok: boolean (required)']
    """
    schema = wait_detail(wait).get("schema")
    if not isinstance(schema, dict):
        return []
    properties = schema.get("properties")
    if not isinstance(properties, dict):
        return [f"(a value of type {_field_type(schema)})"]
    required = schema.get("required") or []
    lines = []
    for name, spec in properties.items():
        spec = spec if isinstance(spec, dict) else {}
        line = f"{name}: {_field_type(spec)}"
        if name in required:
            line += " (required)"
        elif "default" in spec:
            line += f" = {json.dumps(spec['default'])}"
        if spec.get("description"):
            line += f"  {spec['description']}"
        lines.append(line)
    return lines
