"""Run names and metadata: `flow_run_name` / `task_run_name` templates or callables, a
flow's `version`, and the description taken from a docstring.

A name template is `str.format` over the call's parameters by name, defaults included
(``"fetch-{day}"``, ``"{region}-{day:%Y-%m}"``); a field that is not a parameter is a
`ConfigError` when the flow or task is decorated, so a typo never waits for a run. A name
callable takes no argument (as in Prefect) or one: the dict of the call's bound parameters.

    >>> name = RunName.build("fetch-{day}", "flow 'fetch'", "flow_run_name",
    ...                      inspect.signature(lambda day, limit=5: None))
    >>> name.render({"day": "2026-11-22", "limit": 5})
    'fetch-2026-11-22'
"""

from __future__ import annotations

import inspect
import re
import string
from collections.abc import Callable
from typing import Any, Union

from stead.errors import ConfigError, ParameterError

# A run name: a template over the parameters, or a callable of none or of the parameters.
NameSpec = Union[str, Callable[[], str], Callable[[dict[str, Any]], str], None]  # noqa: UP007

_ROOT = re.compile(r"[.\[]")  # "{row.id}" and "{rows[0]}" refer to the parameter before it


class RunName:
    """A checked `flow_run_name` or `task_run_name` of one flow or task.

    Example:
        >>> RunName.build(lambda params: f"day-{params['day']}", "task 'fetch'",
        ...               "task_run_name", inspect.signature(lambda day: None)
        ...               ).render({"day": 3})
        'day-3'
    """

    __slots__ = ("option", "spec", "takes_params", "var_keyword", "what")

    def __init__(self, spec: str | Callable[..., Any], what: str, option: str,
                 takes_params: bool, var_keyword: str | None) -> None:
        self.spec, self.what, self.option = spec, what, option
        self.takes_params = takes_params
        self.var_keyword = var_keyword  # the **kwargs parameter, whose items are fields too

    @classmethod
    def build(cls, spec: NameSpec, what: str, option: str,
              signature: inspect.Signature) -> RunName | None:
        """Check `spec` against the parameters in `signature`; None when no name is given.

        `what` names the flow or task in errors ("flow 'etl'"), `option` the option.
        """
        if spec is None:
            return None
        params = signature.parameters
        var_keyword = next((n for n, p in params.items() if p.kind is p.VAR_KEYWORD), None)
        if isinstance(spec, str):
            for field in _fields(spec, what, option):
                root = _ROOT.split(field, 1)[0]
                if root == "" or root.isdigit():
                    raise ConfigError(
                        f"{what}: {option} {spec!r} has a positional field {{{field}}}; name "
                        f"the parameter instead, e.g. {{{next(iter(params), 'day')}}}")
                usable = params.get(root)
                if usable is not None and usable.kind is usable.VAR_POSITIONAL:
                    usable = None
                if usable is None and var_keyword is None:
                    known = ", ".join(n for n, p in params.items()
                                      if p.kind is not p.VAR_POSITIONAL) or "none"
                    raise ConfigError(
                        f"{what}: {option} {spec!r} refers to {{{root}}}, which is not one of "
                        f"its parameters (it has: {known}); use one of those names")
            return cls(spec, what, option, False, var_keyword)
        if callable(spec):
            return cls(spec, what, option, _takes_one(spec, what, option), var_keyword)
        raise ConfigError(f"{what}: {option} must be a template such as 'fetch-{{day}}' or a "
                          f"function returning the name, got {spec!r}")

    def render(self, arguments: dict[str, Any]) -> str:
        """The name for a call with these bound arguments (defaults applied); a template
        that cannot be filled in, or a callable that fails or returns no text, is a
        ParameterError raised before the run or the task call starts."""
        spec = self.spec
        if isinstance(spec, str):
            values = dict(arguments)
            extra = values.pop(self.var_keyword, None) if self.var_keyword else None
            if isinstance(extra, dict):
                values = {**extra, **values}
            try:
                name = spec.format_map(values)
            except KeyError as exc:
                raise ParameterError(
                    f"{self.what}: {self.option} {spec!r} refers to {{{exc.args[0]}}}, which "
                    "this call did not pass; pass it, or change the template") from None
            except (AttributeError, IndexError, TypeError, ValueError) as exc:
                raise ParameterError(
                    f"{self.what}: {self.option} {spec!r} could not be filled in with this "
                    f"call's parameters: {type(exc).__name__}: {exc}") from None
        else:
            try:
                name = spec(dict(arguments)) if self.takes_params else spec()
            except Exception as exc:
                raise ParameterError(
                    f"{self.what}: its {self.option} function {_label(spec)} raised "
                    f"{type(exc).__name__}: {exc}") from exc
            if not isinstance(name, str):
                raise ParameterError(
                    f"{self.what}: its {self.option} function {_label(spec)} returned "
                    f"{type(name).__name__} {name!r}; it must return the name as a str")
        if "\x00" in name:  # PostgreSQL text cannot hold NUL; nobody sees it in a name
            name = name.replace("\x00", "")
        from stead.core.masking import PATTERNS, mask_text

        return mask_text(name) if PATTERNS else name  # a revealed secret is never recorded


def _fields(template: str, what: str, option: str) -> list[str]:
    """The replacement fields of `template`, nested ones (in format specs) included."""
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ConfigError(f"{what}: {option} {template!r} is not a valid template ({exc}); "
                          "write literal braces as {{ and }}") from None
    found: list[str] = []
    for _, field, spec, _ in parts:
        if field is not None:
            found.append(field)
        if spec and "{" in spec:
            found.extend(_fields(spec, what, option))
    return found


def _takes_one(fn: Callable[..., Any], what: str, option: str) -> bool:
    """Whether a name callable takes the parameters dict (one argument) or nothing."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):  # a builtin without a signature: called without arguments
        return False
    positional = [p for p in sig.parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    required = [p for p in positional if p.default is p.empty]
    if len(required) > 1 or any(p.kind is p.KEYWORD_ONLY and p.default is p.empty
                                for p in sig.parameters.values()):
        raise ConfigError(f"{what}: {option} function {_label(fn)} must take no argument, or "
                          "one: the dict of the call's parameters")
    return len(required) == 1


def _label(fn: Any) -> str:
    return getattr(fn, "__qualname__", None) or repr(fn)


def check_version(version: object, what: str) -> str | None:
    """A flow's `version` as recorded: text (a number is written as text), or None.

    >>> check_version(3, "flow 'etl'")
    '3'
    """
    if version is None:
        return None
    if isinstance(version, bool) or not isinstance(version, str | int | float):
        raise ConfigError(f"{what}: version must be text such as '1.4.2' or a git commit, "
                          f"got {version!r}")
    text = str(version)
    if not text.strip():
        raise ConfigError(f"{what}: version must not be empty; leave it out to record none")
    return text


def first_paragraph(doc: str | None) -> str | None:
    """A docstring's first paragraph on one line (the default description), or None.

    >>> first_paragraph('''Load the day's orders.
    ...
    ...     Details nobody reads in a listing.''')
    "Load the day's orders."
    """
    if not doc:
        return None
    cleaned = inspect.cleandoc(doc).strip()
    if not cleaned:
        return None
    return " ".join(cleaned.split("\n\n", 1)[0].split())


def task_run_name(task: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str | None:
    """The display name of one call of `task` (which has a `task_run_name`)."""
    try:
        arguments = task.bind_arguments(args, kwargs)
    except TypeError:  # the call itself is wrong: calling the body raises that, unnamed
        return None
    # While the name is made, `stead.runtime.task_run` answers for this call (its task name
    # and parameters), as Prefect's documented naming functions expect.
    from stead.core.context import current_frame

    token = current_frame.set(NamingCall(task.name, arguments))  # type: ignore[arg-type]
    try:
        rendered: str = task.run_namer.render(arguments)
    finally:
        current_frame.reset(token)
    return rendered


class NamingCall:
    """The task call being named: what `stead.runtime.task_run` reads before its step exists
    (no id, no attempt yet; `params` is the dict of bound arguments)."""

    __slots__ = ("name", "params")
    key = None
    run_name = None
    attempts = 0

    def __init__(self, name: str, params: dict[str, Any]) -> None:
        self.name = name
        self.params = params


def flow_run_name(flow: Any, arguments: dict[str, Any]) -> str | None:
    """The name of a new run of `flow` called with these bound arguments, or None."""
    spec: RunName | None = getattr(flow, "run_namer", None)
    return None if spec is None else spec.render(arguments)
