"""`Variable`: named JSON values for configuration that changes without a deploy, read and
written from Python (as Prefect's `prefect.variables.Variable`), inside flows or anywhere.

Inside a run, each call is a recorded step (as `stead.now()` is): a resumed run gets back the
value its first execution read, and a `set` or `unset` it already did is not done again. So
a run takes the same path however often it resumes, and `Variable.set(..., overwrite=False)`
does not fail on resume because the run itself created the variable. Outside runs, calls go
straight to the store. Variables are not secrets: any key that can read them sees their
values (use `stead.secret()` for passwords).
"""

from __future__ import annotations

import builtins
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from stead.core.context import current_run
from stead.core.runtime import store_for
from stead.settings import get_settings
from stead.store.variables import (
    VariableRecord,
    check_name,
    check_tags,
    value_to_json,
)


@dataclass(frozen=True, slots=True)
class Variable:
    """A stored variable: its name, value (JSON: str, number, bool, list, dict, None), tags
    and namespace. Use the class methods; a Variable is what `set` and `list` return.

    Example:
        >>> from stead import Variable, flow
        >>> Variable.set("batch_size", 500, overwrite=True)
        Variable(name='batch_size', value=500, tags=[], namespace='default')
        >>> @flow
        ... def load() -> int:
        ...     return Variable.get("batch_size", default=100)
        >>> load()
        500
    """

    name: str
    value: Any
    tags: list[str] = field(default_factory=list)
    namespace: str = "default"

    # -- reading ----------------------------------------------------------------------------
    @classmethod
    def get(cls, name: str, default: Any = None, *, namespace: str | None = None) -> Any:
        """The value of the variable `name`, or `default` when there is none.

        `namespace`: the run's namespace inside a run, else STEAD_NAMESPACE. Inside a run
        the value read is recorded: a resumed run gets the same value back.

        Example:
            >>> Variable.get("batch_size", default=100)
            500
        """
        check_name(name)
        ns = _namespace(namespace)

        def read() -> Any:
            record = _store().get_variable(name, ns)
            return default if record is None else record.value

        return _recorded(f"Variable.get({name!r})", read, _same, _same)

    @classmethod
    def list(cls, prefix: str | None = None, *, namespace: str | None = None
             ) -> builtins.list[Variable]:
        """The variables (of the namespace, see `get`) whose names start with `prefix`,
        by name. Recorded inside a run, as `get` is.

        Example:
            >>> Variable.list(prefix="batch")[0].name
            'batch_size'
        """
        ns = _namespace(namespace)
        label = "Variable.list()" if not prefix else f"Variable.list({prefix!r})"

        def read() -> builtins.list[dict[str, Any]]:
            return [_plain(r) for r in _store().list_variables(ns, prefix or None)]

        return _recorded(label, read, _same, lambda rows: [_of(r) for r in rows])

    # -- writing ----------------------------------------------------------------------------
    @classmethod
    def set(cls, name: str, value: Any, tags: Iterable[str] | None = None,
            overwrite: bool = False, *, namespace: str | None = None) -> Variable:
        """Create the variable `name` with `value`, or replace its value when `overwrite`
        (else VariableExists, a ValueError, if it exists). `tags` replace its tags; None keeps
        them. The arguments are in Prefect's order (name, value, tags, overwrite).
        InvalidVariable (a ValueError) names what is wrong with a name or value. Inside a run
        the write is a recorded step: a resumed run does not write again.

        Example:
            >>> Variable.set("regions", ["eu-west-1"], tags=["deploy"]).name
            'regions'
        """
        check_name(name)
        value_json = value_to_json(value)
        tag_list = check_tags(list(tags) if tags is not None else None)
        ns = _namespace(namespace)

        def write() -> dict[str, Any]:
            return _plain(_store().set_variable(name, ns, value_json, tag_list, time.time(),
                                                overwrite))

        return _recorded(f"Variable.set({name!r})", write, _same, _of)

    @classmethod
    def unset(cls, name: str, *, namespace: str | None = None) -> bool:
        """Delete the variable `name`; whether it existed. Recorded inside a run.

        Example:
            >>> Variable.unset("regions")
            True
        """
        check_name(name)
        ns = _namespace(namespace)
        return _recorded(f"Variable.unset({name!r})",
                         lambda: _store().delete_variable(name, ns), _same, _same)

    # -- async, for async flows: the same calls (a store call is one short request) --------
    @classmethod
    async def aget(cls, name: str, default: Any = None, *, namespace: str | None = None
                   ) -> Any:
        """`get` in async code. Example: `retries = await Variable.aget("retries", 3)`."""
        return cls.get(name, default, namespace=namespace)

    @classmethod
    async def aset(cls, name: str, value: Any, tags: Iterable[str] | None = None,
                   overwrite: bool = False, *, namespace: str | None = None) -> Variable:
        """`set` in async code. Example: `await Variable.aset("retries", 5, overwrite=True)`."""
        return cls.set(name, value, tags, overwrite, namespace=namespace)

    @classmethod
    async def aunset(cls, name: str, *, namespace: str | None = None) -> bool:
        """`unset` in async code. Example: `await Variable.aunset("retries")`."""
        return cls.unset(name, namespace=namespace)

    @classmethod
    async def alist(cls, prefix: str | None = None, *, namespace: str | None = None
                    ) -> builtins.list[Variable]:
        """`list` in async code. Example: `names = [v.name for v in await Variable.alist()]`."""
        return cls.list(prefix, namespace=namespace)


def _namespace(namespace: str | None) -> str:
    if namespace is not None:
        return namespace
    ctx = current_run.get()
    return ctx.run.namespace if ctx is not None else get_settings().namespace


def _store() -> Any:
    ctx = current_run.get()
    return ctx.store if ctx is not None else store_for()


def _plain(record: VariableRecord) -> dict[str, Any]:
    return {"name": record.name, "value": record.value, "tags": list(record.tags),
            "namespace": record.namespace}


def _of(plain: dict[str, Any]) -> Variable:
    return Variable(plain["name"], plain["value"], list(plain["tags"]), plain["namespace"])


def _same(value: Any) -> Any:
    return value


def _recorded(label: str, call: Callable[[], Any], to_record: Callable[[Any], Any],
              from_record: Callable[[Any], Any]) -> Any:
    """`call()` outside runs; inside one, a step named `label`: replayed when recorded,
    else run once and its outcome (value or error) recorded."""
    ctx = current_run.get()
    if ctx is None:
        return from_record(to_record(call()))
    from stead.core.steps import Step  # the engine: loaded once a run exists anyway

    step = Step(ctx, label, "variable", None)
    if step.replayed:
        return from_record(step.replay())
    step.start_attempt()
    try:
        outcome = to_record(call())
    except Exception as exc:
        step.failed(exc, retry=False)
        raise
    except BaseException:
        step.abandoned()
        raise
    return from_record(step.succeeded(outcome))
