"""A flow call's arguments checked against the flow's annotations, by a deployment's rules.

A deployment turns its run's parameters into the annotated types with pydantic, in lax mode
(deployments/params.py); a direct call (``etl("2026-11-21")``) goes through the same pydantic
validation, so a flow gets the same values however it is started, and a wrong argument is a
`ParameterError` naming the parameter before any run is recorded:

    >>> @flow
    ... def etl(day: date, limit: int = 10): ...
    >>> etl("2026-11-21", limit="5")        # day=date(2026, 11, 21), limit=5, as deployed
    >>> etl("tomorrow")
    ParameterError: flow 'etl': parameter 'day' expects date, got 'tomorrow' (str): Input
    should be a valid date or datetime, input is too short

What is checked: parameters annotated with a type that pydantic knows (or any class, by
isinstance); not *args/**kwargs, not defaults, not parameters annotated Any or not at all.
Cheap on the hot path: an argument that already is an instance of its plain-class
annotation (``int``, ``str``, ``date``, a dataclass, a pydantic model...) is taken as it is,
without importing pydantic; pydantic is imported only for the others, with one cached
`TypeAdapter` per parameter. Annotations pydantic cannot handle, or that cannot be resolved,
are not checked (such a flow cannot be deployed either).
"""

from __future__ import annotations

import inspect
import typing
from typing import Any

from stead.errors import ParameterError

_ANY = object()  # a parameter that is not checked


class ParameterTypes:
    """The annotations of one flow's parameters, resolved at its first call."""

    __slots__ = ("_adapters", "_defaults", "_flow_name", "_fn", "_hints", "_plain")

    def __init__(self, fn: Any, flow_name: str) -> None:
        self._fn, self._flow_name = fn, flow_name
        self._hints: dict[str, Any] | None = None  # resolved at the first check
        self._plain: dict[str, type | None] = {}  # a plain class: isinstance is enough
        self._defaults: dict[str, Any] = {}
        self._adapters: dict[str, Any] = {}

    def check(self, arguments: dict[str, Any]) -> None:
        """Validate `arguments` (a BoundArguments' dict) in place, coercing like pydantic."""
        hints = self._hints
        if hints is None:
            hints = self._resolve()
        if not hints:
            return
        plain, defaults = self._plain, self._defaults
        for name, value in arguments.items():
            hint = hints.get(name, _ANY)
            if hint is _ANY or value is defaults.get(name, _ANY):
                continue
            cls = plain[name]
            if cls is not None and (isinstance(value, cls) if cls not in _EXACT
                                    else type(value) is cls):
                continue
            arguments[name] = self._validate(name, hint, value)

    def _resolve(self) -> dict[str, Any]:
        try:
            found = typing.get_type_hints(self._fn, include_extras=True)
        except Exception:  # unresolvable forward references: nothing is checked
            found = {}
        hints: dict[str, Any] = {}
        for name, p in inspect.signature(self._fn).parameters.items():
            hint = found.get(name, _ANY)
            if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) or hint is _ANY or hint is Any:
                continue
            hints[name] = hint
            self._plain[name] = _plain_class(hint)
            if p.default is not p.empty:
                self._defaults[name] = p.default
        self._hints = hints
        return hints

    def _validate(self, name: str, hint: Any, value: Any) -> Any:
        adapter = self._adapters.get(name)
        if adapter is None:
            adapter = self._adapters[name] = _adapter(hint)
        if adapter is False:  # pydantic cannot check this annotation
            return value
        from pydantic import ValidationError

        try:
            return adapter.validate_python(value)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join([name, *(str(p) for p in first["loc"])])
            shown = repr(value)
            if len(shown) > 80:
                shown = shown[:77] + "..."
            raise ParameterError(
                f"flow '{self._flow_name}': parameter {where!r} expects {_type_name(hint)}, "
                f"got {shown} ({type(value).__name__}): {first['msg']}") from None


# Checked by exact type: pydantic turns 5 into 5.0 for a float, and True is an int.
_EXACT = frozenset({float, bool, int})


def _plain_class(hint: Any) -> type | None:
    """The class to check with isinstance, when the annotation is a plain class (not a
    generic alias, union or Annotated)."""
    if not isinstance(hint, type) or typing.get_origin(hint) is not None:
        return None
    return hint


def _adapter(hint: Any) -> Any:
    from pydantic import ConfigDict, TypeAdapter

    try:
        return TypeAdapter(hint, config=ConfigDict(arbitrary_types_allowed=True))
    except Exception:  # e.g. an annotation pydantic has no schema for; a model has a config
        try:
            return TypeAdapter(hint)
        except Exception:
            return False


def _type_name(hint: Any) -> str:
    if isinstance(hint, type) and typing.get_origin(hint) is None:
        return hint.__qualname__
    return repr(hint).replace("typing.", "")
