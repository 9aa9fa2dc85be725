"""Cheap checks of a store verb's arguments against its signature, for calls that arrive over
the wire (server/store_rpc.py): the type hints of the `Store` protocol's methods and the field
types of the records (store/base.py), checked with plain `type()` tests, compiled once per
verb. A call that passes reaches the backend with the types it was written for; one that does
not is refused with a message naming the argument (`check_call`).

The values checked are what store/wire.py decodes: JSON scalars, lists, dicts, tuples and
records. Text must not contain NUL (PostgreSQL refuses it) and integers must fit in 64 bits
(both databases' integers).
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import operator
import types
import typing
from collections.abc import Callable
from typing import Any

from stead.store.wire import PARTS

# A compiled check: the problem with a value, or None when it is fine. The problem starts
# with the path inside the value (".limit must be an int, got str", "[3] must be ...", or
# " must be ..." for the value itself), so paths are only built for a refused call.
Check = Callable[[Any], "str | None"]
INT_MIN, INT_MAX = -(2 ** 63), 2 ** 63 - 1
NONE_TYPE = type(None)


def check_call(verb: str, args: list[Any], kwargs: dict[str, Any]) -> str | None:
    """What is wrong with calling the store verb `verb` with these arguments, or None.

    >>> check_call("list_runs", [base.RunFilter(limit="10")], {})
    'list_runs: argument flt.limit must be an int, got str'
    >>> check_call("get_run", ["run-1"], {}) is None
    True
    """
    signature, checks = _verb(verb)
    try:
        bound = signature.bind(None, *args, **kwargs)  # None: the store itself
    except TypeError as exc:
        return f"{verb}: {exc}"
    for name, value in bound.arguments.items():
        check = checks.get(name)
        if check is not None:
            problem = check(value)
            if problem is not None:
                return f"{verb}: argument {name}{problem}"
    return None


@functools.cache
def _verb(verb: str) -> tuple[inspect.Signature, dict[str, Check]]:
    method = getattr(next(p for p in PARTS if verb in vars(p)), verb)
    hints = typing.get_type_hints(method)
    hints.pop("return", None)
    return inspect.signature(method), {name: _compile(hint) for name, hint in hints.items()}


def describe(hint: Any) -> str:
    """A type hint in words: "an int", "a list of StepRecord", "a str or None"."""
    origin, params = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(describe(p) for p in params)
    if hint is NONE_TYPE:
        return "None"
    if hint is float:
        return "a number"
    if origin is list:
        return f"a list of {_plain(params[0])}"
    if origin is dict:
        return f"an object of {_plain(params[1])}"
    if origin is tuple:
        if len(params) == 2 and params[1] is Ellipsis:
            return f"a tuple of {_plain(params[0])}"
        return f"a tuple ({', '.join(_plain(p) for p in params)})"
    name = getattr(hint, "__name__", str(hint))
    return f"{'an' if name[0].lower() in 'aeiou' else 'a'} {name}"


def _plain(hint: Any) -> str:
    words = describe(hint)
    return words.split(" ", 1)[1] if words.startswith(("a ", "an ")) else words


def _got(value: Any) -> str:
    return "None" if value is None else type(value).__name__


def _compile(hint: Any) -> Check:
    """The check of one type hint."""
    if hint is Any:
        return lambda value: None
    exact = _exact_types(hint)
    if exact is not None:  # scalars and unions of scalars: one set lookup
        words = describe(hint)

        def scalar(value: Any) -> str | None:
            kind = type(value)
            if kind not in exact:
                return f" must be {words}, got {_got(value)}"
            return _scalar_problem(kind, value)
        return scalar
    origin, params = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        options = [_compile(p) for p in params if p is not NONE_TYPE]
        nullable, words = NONE_TYPE in params, describe(hint)
        if len(options) == 1:  # X | None, the common union: no list of problems
            only = options[0]

            def optional(value: Any) -> str | None:
                if value is None and nullable:
                    return None
                problem = only(value)
                if problem is None or not problem.startswith(" must be"):
                    return problem
                return f" must be {words}, got {_got(value)}"
            return optional

        def union(value: Any) -> str | None:
            if value is None and nullable:
                return None
            problems = [check(value) for check in options]
            if None in problems:
                return None
            # The value has the type of an option but something inside it is wrong: say what.
            deeper = [p for p in problems if p and not p.startswith(" must be")]
            return deeper[0] if deeper else f" must be {words}, got {_got(value)}"
        return union
    if origin is list:
        return _sequence(list, _compile(params[0]), describe(hint))
    if origin is tuple:
        if len(params) == 2 and params[1] is Ellipsis:
            return _sequence(tuple, _compile(params[0]), describe(hint))
        return _fixed_tuple([_compile(p) for p in params], describe(hint))
    if origin is dict:
        return _mapping(_compile(params[0]), _compile(params[1]))
    if dataclasses.is_dataclass(hint):
        return _record(hint)
    raise TypeError(f"store/validate.py cannot check the type {hint!r}: teach it")


SCALARS: dict[Any, tuple[type, ...]] = {str: (str,), int: (int,), float: (float, int),
                                        bool: (bool,), NONE_TYPE: (NONE_TYPE,)}


def _exact_types(hint: Any) -> frozenset[type] | None:
    """The exact types a scalar hint (or a union of scalars) accepts; None otherwise. `bool`
    is not an int here, and an int is a number (float)."""
    if hint in SCALARS:
        return frozenset(SCALARS[hint])
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        parts = [_exact_types(p) for p in typing.get_args(hint)]
        if all(p is not None for p in parts):
            return frozenset().union(*parts)  # type: ignore[arg-type]
    return None


def _scalar_problem(kind: type, value: Any) -> str | None:
    if kind is str:
        if "\x00" in value:
            return " contains a NUL character, which no stored text can contain"
    elif kind is int and not INT_MIN <= value <= INT_MAX:
        return " is an int out of the 64-bit range"
    return None


def _sequence(kind: type, item: Check, words: str) -> Check:
    def sequence(value: Any) -> str | None:
        if type(value) is not kind:
            return f" must be {words}, got {_got(value)}"
        for element in value:
            problem = item(element)
            if problem is not None:
                return f"[{value.index(element)}]{problem}"
        return None
    return sequence


def _fixed_tuple(items: list[Check], words: str) -> Check:
    size = len(items)

    def fixed(value: Any) -> str | None:
        if type(value) is not tuple or len(value) != size:
            got = f"{len(value)} items" if type(value) is tuple else _got(value)
            return f" must be {words}, got {got}"
        for i in range(size):
            problem = items[i](value[i])
            if problem is not None:
                return f"[{i}]{problem}"
        return None
    return fixed


def _mapping(key: Check, item: Check) -> Check:
    def mapping(value: Any) -> str | None:
        if type(value) is not dict:
            return f" must be an object, got {_got(value)}"
        for k, v in value.items():
            problem = key(k)
            if problem is not None:
                return f" key {k[:100]!r}{problem}"
            problem = item(v)
            if problem is not None:
                return f"[{k[:100]!r}]{problem}"
        return None
    return mapping


MAX_SIGNATURES = 64  # per record class; beyond, calls take the field-by-field path


def _getter(signature: tuple[type, ...], kind: type) -> Callable[[Any], Any] | None:
    """A function of a record's scalar values giving a tuple of those of type `kind`."""
    where = [i for i, t in enumerate(signature) if t is kind]
    if not where:
        return None
    if len(where) == 1:
        i = where[0]
        return lambda values: (values[i],)
    return operator.itemgetter(*where)


def _field_problem(names: list[str], exacts: list[frozenset[type]], values: Any,
                   words: dict[str, str]) -> str | None:
    """The message for the first wrong scalar field of a record (the slow path)."""
    for field, exact, v in zip(names, exacts, values, strict=True):
        if type(v) not in exact:
            return f".{field} must be {words[field]}, got {_got(v)}"
        problem = _scalar_problem(type(v), v)
        if problem is not None:
            return f".{field}{problem}"
    return None


@functools.cache
def _record(cls: type) -> Check:
    """The check of a record: its exact class, then each field. Scalar fields (most of them)
    are checked in one pass over the values; the others by their compiled check."""
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    scalar = [(n, _exact_types(hints[n])) for n in names if _exact_types(hints[n])]
    other = [(n, _compile(hints[n])) for n in names if not _exact_types(hints[n])]
    scalar_names = [n for n, _ in scalar]
    get = operator.attrgetter(*scalar_names) if len(scalar_names) > 1 else None
    # (a record of a single scalar field reads it with getattr, below)
    exacts = [e for _, e in scalar]
    words = {n: describe(hints[n]) for n in names}
    name = cls.__name__

    # The type signatures (the type of each scalar field) already seen to be right, and for
    # each the getters of its text and int values: most calls then cost one C-level pass.
    seen: dict[tuple[type, ...], tuple[Callable[[Any], Any] | None, ...]] = {}

    def record(value: Any) -> str | None:
        if type(value) is not cls:
            return f" must be a {name}, got {_got(value)}"
        values = get(value) if get is not None else [getattr(value, n) for n in scalar_names]
        signature = tuple(map(type, values))
        plan = seen.get(signature)
        if plan is None:
            problem = _field_problem(scalar_names, exacts, values, words)
            if problem is not None:
                return problem
            if len(seen) < MAX_SIGNATURES:
                seen[signature] = (_getter(signature, str), _getter(signature, int))
        else:
            texts, ints = plan
            if texts is not None and "\x00" in "".join(texts(values)):
                return _field_problem(scalar_names, exacts, values, words)
            if ints is not None:
                numbers = ints(values)
                if min(numbers) < INT_MIN or max(numbers) > INT_MAX:
                    return _field_problem(scalar_names, exacts, values, words)
        for field, check in other:
            problem = check(getattr(value, field))
            if problem is not None:
                return f".{field}{problem}"
        return None
    return record
