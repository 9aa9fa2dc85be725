"""Variables: named JSON values for configuration that changes without a deploy. The rules of
a valid name, value and tags, the SQL both backends share (conventions in store/leases.py),
the verbs and their protocol.

Every write goes through `set_variable`, which checks what it stores (a remote caller sends
the value's JSON text over the wire): the database only ever holds valid names, JSON text of
at most VALUE_MAX_BYTES, and a JSON list of tags.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any, Protocol

from stead.errors import InvalidVariable, VariableExists
from stead.store.sql import Dialect

DEFAULT_NAMESPACE = "default"
NAME_MAX = 255  # characters, as Prefect
NAME_PATTERN = re.compile(r"[a-z0-9_-]+")
VALUE_MAX_BYTES = 64 * 1024  # of the value's JSON text (UTF-8); Prefect allows 5,000 chars
TAGS_MAX = 50
TAG_MAX = 255
NAME_RULE = "1 to 255 lowercase letters (a-z), digits, '_' and '-'"


@dataclass(slots=True)
class VariableRecord:
    """A stored variable. `value_json` is its value as JSON text; `value` decodes it.

    Example:
        >>> VariableRecord("default", "retries", "3", ["etl"], 1.0, 1.0).value
        3
    """

    namespace: str
    name: str
    value_json: str
    tags: list[str]
    created_at: float
    updated_at: float

    @property
    def value(self) -> Any:
        return json.loads(self.value_json)


class VariableStore(Protocol):
    """The variables part of the store interface, implemented by every backend (SQLite,
    PostgreSQL, and the HTTP client of remote processes).

    Example:
        >>> store.set_variable("retries", "default", "3", ["etl"], time.time())
        >>> store.get_variable("retries", "default").value
        3
    """

    def set_variable(self, name: str, namespace: str, value_json: str,
                     tags: list[str] | None, now: float, overwrite: bool = False
                     ) -> VariableRecord:
        """Create a variable, or (with `overwrite`) replace its value, keeping created_at;
        `tags` None keeps the tags it has (none for a new one). VariableExists if it exists
        and not `overwrite`; InvalidVariable if the name, JSON text or tags are not valid."""
        ...

    def get_variable(self, name: str, namespace: str) -> VariableRecord | None:
        """The variable, or None."""
        ...

    def list_variables(self, namespace: str | None = None, prefix: str | None = None,
                       limit: int | None = None) -> list[VariableRecord]:
        """The variables of `namespace` (None: every namespace) whose name starts with
        `prefix`, ordered by namespace, name; at most `limit` (None: all)."""
        ...

    def delete_variable(self, name: str, namespace: str) -> bool:
        """Delete a variable; whether it existed."""
        ...


# -- the rules ------------------------------------------------------------------------------
def check_name(name: Any) -> str:
    """`name` if it is a valid variable name, else InvalidVariable saying why.

    >>> check_name("db_host")
    'db_host'
    """
    if not isinstance(name, str):
        raise InvalidVariable(f"a variable's name is a str, not {type(name).__name__}")
    if len(name) > NAME_MAX or NAME_PATTERN.fullmatch(name) is None:
        shown = name if len(name) <= 60 else name[:60] + "..."
        suggestion = re.sub(r"[ .]", "_", name.lower())
        hint = (f" (e.g. {suggestion!r})" if suggestion != name and len(suggestion) <= 60
                and NAME_PATTERN.fullmatch(suggestion) else "")
        raise InvalidVariable(f"{shown!r} is not a variable name: a name is {NAME_RULE}"
                              f"{hint}")
    return name


def _refuse_constant(text: str) -> Any:
    raise InvalidVariable(f"{text} is not a JSON value: use a number, or null")


def check_value_json(text: Any) -> str:
    """`text` if it is the JSON text of a value Stead stores, else InvalidVariable."""
    if not isinstance(text, str):
        raise InvalidVariable(f"a variable's value is stored as JSON text, not "
                              f"{type(text).__name__}")
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError:
        raise InvalidVariable("the value is not valid Unicode (a lone surrogate): a JSON "
                              "string holds text") from None
    if size > VALUE_MAX_BYTES:
        raise InvalidVariable(f"the value is {size} bytes of JSON; a variable holds at most "
                              f"{VALUE_MAX_BYTES}: keep large data in a file or a table, and "
                              "its location in a variable")
    try:
        json.loads(text, parse_constant=_refuse_constant)
    except ValueError as exc:  # json.JSONDecodeError and InvalidVariable are ValueErrors
        if isinstance(exc, InvalidVariable):
            raise
        raise InvalidVariable(f"the value is not JSON text: {exc}") from None
    if "\x00" in text:
        raise InvalidVariable("the value contains a NUL character, which no stored text can "
                              "contain")
    return text


def check_tags(tags: Any) -> list[str] | None:
    """The tags as stored: a list of distinct non-empty strings, in the order given."""
    if tags is None:
        return None
    if isinstance(tags, str) or not isinstance(tags, list | tuple | set | frozenset):
        raise InvalidVariable(f"tags are a list of strings, not {type(tags).__name__}")
    out: list[str] = []
    for tag in tags:
        if not isinstance(tag, str) or not tag or len(tag) > TAG_MAX or "\x00" in tag:
            raise InvalidVariable(f"tag {tag!r} is not valid: a tag is a string of 1 to "
                                  f"{TAG_MAX} characters")
        if tag not in out:
            out.append(tag)
    if len(out) > TAGS_MAX:
        raise InvalidVariable(f"a variable has at most {TAGS_MAX} tags, not {len(out)}")
    return out


def _check_json_value(value: Any, path: str) -> None:
    kind = type(value)
    if value is None or kind in (str, bool, int):
        return
    if kind is float:
        if not math.isfinite(value):
            raise InvalidVariable(f"the value{path} is {value}, which JSON cannot hold")
        return
    if kind is list:
        for i, item in enumerate(value):
            _check_json_value(item, f"{path}[{i}]")
        return
    if kind is dict:
        for key, item in value.items():
            if type(key) is not str:
                raise InvalidVariable(f"the value{path} has the key {key!r}: JSON object "
                                      "keys are strings")
            _check_json_value(item, f"{path}[{key!r}]")
        return
    raise InvalidVariable(
        f"the value{path} is a {kind.__name__}; a variable holds JSON: str, int, float, bool, "
        "None, and lists and dicts (with str keys) of those")


def value_to_json(value: Any) -> str:
    """The JSON text of a variable's value; InvalidVariable for anything that is not JSON.

    >>> value_to_json({"hosts": ["a", "b"], "port": 5432})
    '{"hosts": ["a", "b"], "port": 5432}'
    """
    _check_json_value(value, "")
    try:
        text = json.dumps(value, ensure_ascii=False, allow_nan=False)
    except RecursionError:
        raise InvalidVariable("the value is nested too deeply to store") from None
    return check_value_json(text)


# -- SQL -------------------------------------------------------------------------------------
COLUMNS = "namespace, name, value_json, tags, created_at, updated_at"


def _record(row: Any) -> VariableRecord:
    namespace, name, value_json, tags, created_at, updated_at = row
    return VariableRecord(str(namespace), str(name), str(value_json), json.loads(tags),
                          float(created_at), float(updated_at))


def set_variable(conn: Any, d: Dialect, name: str, namespace: str, value_json: str,
                 tags: list[str] | None, now: float, overwrite: bool) -> VariableRecord:
    check_name(name)
    check_value_json(value_json)
    tags = check_tags(tags)
    tags_json = json.dumps(tags if tags is not None else [])
    if not overwrite:
        conflict = "DO NOTHING"
    elif tags is None:
        conflict = ("DO UPDATE SET value_json = excluded.value_json, "
                    "updated_at = excluded.updated_at")
    else:
        conflict = ("DO UPDATE SET value_json = excluded.value_json, tags = excluded.tags, "
                    "updated_at = excluded.updated_at")
    cur = conn.execute(
        f"INSERT INTO variables ({COLUMNS}) VALUES ({d.marks(6)}) "
        f"ON CONFLICT (namespace, name) {conflict}",
        (namespace, name, value_json, tags_json, now, now))
    if not cur.rowcount:
        where = "" if namespace == DEFAULT_NAMESPACE else f" --namespace {namespace}"
        raise VariableExists(f"variable {name!r} already exists in namespace {namespace!r}; "
                             "replace it with overwrite=True (`stead variables set "
                             f"{name} VALUE --overwrite{where}`)")
    found = get_variable(conn, d, name, namespace)
    assert found is not None  # written in this transaction
    return found


def get_variable(conn: Any, d: Dialect, name: str, namespace: str) -> VariableRecord | None:
    row = conn.execute(f"SELECT {COLUMNS} FROM variables WHERE namespace = {d.p} AND "
                       f"name = {d.p}", (namespace, name)).fetchone()
    return None if row is None else _record(row)


def list_variables(conn: Any, d: Dialect, namespace: str | None, prefix: str | None,
                   limit: int | None) -> list[VariableRecord]:
    where, args = [], []  # type: ignore[var-annotated]
    if namespace is not None:
        where.append(f"namespace = {d.p}")
        args.append(namespace)
    if prefix:  # compared as text, so '_' and '%' in a prefix are not wildcards
        where.append(f"substr(name, 1, {len(prefix)}) = {d.p}")
        args.append(prefix)
    sql = (f"SELECT {COLUMNS} FROM variables" + (" WHERE " + " AND ".join(where) if where
                                                  else "") + " ORDER BY namespace, name")
    if limit is not None:
        sql += f" LIMIT {d.p}"
        args.append(max(0, limit))
    return [_record(row) for row in conn.execute(sql, args).fetchall()]


def delete_variable(conn: Any, d: Dialect, name: str, namespace: str) -> bool:
    cur = conn.execute(f"DELETE FROM variables WHERE namespace = {d.p} AND name = {d.p}",
                       (namespace, name))
    return bool(cur.rowcount)


class VariableVerbs:
    """The variable verbs over a backend's `_write`/`_read` (see store/verbs.py)."""

    def _write(self, fn: Any, *args: Any) -> Any:
        raise NotImplementedError

    def _read(self, fn: Any, *args: Any) -> Any:
        raise NotImplementedError

    def set_variable(self, name: str, namespace: str, value_json: str,
                     tags: list[str] | None, now: float, overwrite: bool = False
                     ) -> VariableRecord:
        return self._write(set_variable, name, namespace,  # type: ignore[no-any-return]
                           value_json, tags, now, overwrite)

    def get_variable(self, name: str, namespace: str) -> VariableRecord | None:
        return self._read(get_variable, name, namespace)  # type: ignore[no-any-return]

    def list_variables(self, namespace: str | None = None, prefix: str | None = None,
                       limit: int | None = None) -> list[VariableRecord]:
        return self._read(list_variables, namespace,  # type: ignore[no-any-return]
                          prefix, limit)

    def delete_variable(self, name: str, namespace: str) -> bool:
        return self._write(delete_variable, name, namespace)  # type: ignore[no-any-return]
