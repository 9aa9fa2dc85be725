"""A deployment's parameters: a JSON Schema made from the flow's signature at deploy time,
checked when a run is created (where the flow's code may not be importable), and values
turned into the annotated types where the flow runs.

pydantic makes the schema and the typed values (annotations, including pydantic models);
jsonschema checks a run's parameters against the stored schema with messages that name the
parameter. Both are imported only here, never by `import stead`.
"""

from __future__ import annotations

import inspect
import json
import typing
from typing import Any

from stead.errors import ConfigError, ParameterError


def _fields(fn: Any) -> dict[str, tuple[Any, Any]]:
    try:
        hints = typing.get_type_hints(fn, include_extras=True)
    except Exception:  # unresolvable forward references: fall back to Any
        hints = {}
    fields: dict[str, tuple[Any, Any]] = {}
    for name, p in inspect.signature(fn).parameters.items():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            raise ConfigError(f"{fn.__qualname__}: a deployed flow cannot take *{name} or "
                              f"**{name}; name each parameter")
        fields[name] = (hints.get(name, Any), ... if p.default is p.empty else p.default)
    return fields


def _model(fn: Any) -> Any:
    from pydantic import ConfigDict, create_model

    return create_model(f"{fn.__name__}_parameters",  # type: ignore[call-overload]
                        __config__=ConfigDict(extra="forbid", arbitrary_types_allowed=True),
                        **_fields(fn))


def parameter_schema(fn: Any) -> dict[str, Any]:
    """The JSON Schema of `fn`'s parameters (names, types from annotations, defaults).

    Example:
        >>> def etl(day: date, limit: int = 10): ...
        >>> parameter_schema(etl)["required"]
        ['day']
    """
    try:
        return dict(_model(fn).model_json_schema())
    except Exception as exc:
        raise ConfigError(f"{fn.__qualname__}: its parameters cannot be described for a "
                          f"deployment ({exc}); use JSON-like types, dates, enums or pydantic "
                          "models in the annotations") from None


def check_parameters(schema: dict[str, Any], params: dict[str, Any], what: str) -> None:
    """Raise ParameterError naming the first parameter that does not fit `schema`."""
    from jsonschema import Draft202012Validator, FormatChecker

    validator = Draft202012Validator(schema, format_checker=FormatChecker())
    errors = sorted(validator.iter_errors(params), key=lambda e: list(e.absolute_path))
    if not errors:
        return
    error = errors[0]
    path = ".".join(str(p) for p in error.absolute_path)
    if error.validator == "required":
        missing = [n for n in schema.get("required", []) if n not in params]
        raise ParameterError(f"{what}: parameter {missing[0]!r} is required and has no "
                             "default; pass it with --param NAME=VALUE")
    if error.validator == "additionalProperties":
        known = ", ".join(schema.get("properties", {})) or "none"
        extra = sorted(set(params) - set(schema.get("properties", {})))
        raise ParameterError(f"{what}: unknown parameter {extra[0]!r}; the flow takes: {known}")
    raise ParameterError(f"{what}: parameter {path!r}: {error.message}")


def parse_cli_params(pairs: list[str]) -> dict[str, Any]:
    """NAME=VALUE pairs from the command line; a VALUE that is valid JSON (numbers, true,
    lists, objects, quoted strings) is taken as such, anything else as a string."""
    params: dict[str, Any] = {}
    for pair in pairs:
        name, sep, raw = pair.partition("=")
        if not sep or not name.strip():
            raise ParameterError(f"--param {pair!r}: write NAME=VALUE, e.g. --param day=2026-11-21")
        try:
            value = json.loads(raw)
        except ValueError:
            value = raw
        params[name.strip()] = value
    return params


def typed_parameters(fn: Any, params: dict[str, Any]) -> dict[str, Any]:
    """`params` (JSON values) turned into the types `fn` annotates: dates, enums, models..."""
    from pydantic import ValidationError

    try:
        model = _model(fn).model_validate(params)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ParameterError(f"{fn.__qualname__}: parameter {where!r}: {first['msg']}") from None
    return {name: getattr(model, name) for name in type(model).model_fields}
