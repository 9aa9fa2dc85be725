"""`@flow` and `@task` on methods: ``obj.method(...)`` binds ``self`` (or ``cls``).

A flow or task reached through an instance (or, for a classmethod, through its class) is a
copy whose function has the first argument already bound, so nothing downstream sees
``self``: a flow's recorded parameters, a step's parameters and a cache key leave it out
(an instance is not data to store). Both orders of stacking work::

    class Pipeline:
        @flow                       # an instance method: self is bound, not recorded
        def run(self, day: str) -> int: ...

        @classmethod                # or @flow above @classmethod
        @flow
        def nightly(cls, day: str) -> int: ...

        @flow
        @staticmethod               # or @staticmethod above @flow
        def check(day: str) -> bool: ...

A worker or ``stead runs resume`` finds a classmethod or staticmethod flow again by its
qualified name (``module:Pipeline.nightly``); an instance method's ``self`` cannot be
rebuilt from the store, so such a run is resumed from Python: ``pipeline.run.resume(id)``.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

from stead.errors import ConfigError

STATIC, CLASS = "staticmethod", "classmethod"


def unwrap(fn: Any) -> tuple[Any, str | None]:
    """The function inside a ``classmethod``/``staticmethod`` object, and which it was.

    Example:
        >>> unwrap(staticmethod(len))
        (<built-in function len>, 'staticmethod')
    """
    if isinstance(fn, staticmethod):
        return fn.__func__, STATIC
    if isinstance(fn, classmethod):
        return fn.__func__, CLASS
    return fn, None


def bind(decorated: Any, obj: Any, objtype: Any) -> Any:
    """What ``obj.name`` gives for a Flow or Task stored in a class as `name`.

    Example:
        >>> Pipeline().run          # a copy of the flow with self bound
        <Flow run>
    """
    kind = getattr(decorated, "method_kind", None)
    if kind == STATIC:
        return decorated
    if kind == CLASS:
        target = objtype if objtype is not None else type(obj)
    elif obj is None:
        return decorated  # reached through the class: the undecorated-style unbound object
    else:
        target = obj
    bound = object.__new__(type(decorated))  # not copy.copy: a Task pickles by reference
    bound.__dict__.update(decorated.__dict__)
    bound.fn = _bound_function(decorated.fn, target, decorated.name)
    bound.arg_names = decorated.arg_names[1:]
    bound.bound_to = target
    bound.method_kind = None  # the copy is bound: reaching it again binds nothing more
    if hasattr(decorated, "signature"):  # a Flow: what __call__ binds arguments with
        bound.signature = inspect.signature(bound.fn)
    else:
        bound._signature = None
        # A cache key covers the instance (a class by its name): two objects whose state
        # differs do not share cached values; an instance that cannot be hashed is not cached.
        owner = f"{target.__module__}.{target.__qualname__}" if kind == CLASS else target
        bound.bind_arguments = lambda args, kwargs: decorated.bind_arguments(
            (owner, *args), kwargs)
    # A copy made from the bound object is the unbound one's copy, bound the same way.
    bound.with_options = lambda **options: bind(
        decorated.with_options(**options), obj, objtype)
    if not isinstance(target, type) and hasattr(decorated, "enqueue"):  # self, not cls
        bound.enqueue = functools.partial(_refuse_enqueue, decorated.name, type(target))
    return bound


def _bound_function(fn: Callable[..., Any], target: Any, name: str) -> Callable[..., Any]:
    signature = inspect.signature(fn)
    params = list(signature.parameters.values())
    if not params or params[0].kind not in (params[0].POSITIONAL_ONLY,
                                            params[0].POSITIONAL_OR_KEYWORD):
        raise ConfigError(f"'{name}' is used as a method but takes no self/cls argument; "
                          "decorate it with @staticmethod if it needs none")
    if inspect.iscoroutinefunction(fn):
        @functools.wraps(fn)
        async def bound_async(*args: Any, **kwargs: Any) -> Any:
            return await fn(target, *args, **kwargs)

        bound: Callable[..., Any] = bound_async
    else:
        @functools.wraps(fn)
        def bound_sync(*args: Any, **kwargs: Any) -> Any:
            return fn(target, *args, **kwargs)

        bound = bound_sync
    bound.__signature__ = signature.replace(parameters=params[1:])  # type: ignore[attr-defined]
    return bound


def _refuse_enqueue(name: str, cls: type, *args: Any, **kwargs: Any) -> Any:
    raise ConfigError(
        f"flow '{name}' is a method of a {cls.__name__} instance; a worker cannot rebuild "
        "that instance from the store, so it cannot be enqueued. Make it a @classmethod or "
        "@staticmethod (or a module-level function) taking plain data, or call it directly.")


def needs_instance(owner: Any, attribute: str) -> bool:
    """True when `owner.attribute` is a class's instance-method flow or task (its ``self``
    cannot come from the store), False for a staticmethod, classmethod or anything else."""
    if not isinstance(owner, type):
        return False
    try:
        raw = inspect.getattr_static(owner, attribute)
    except AttributeError:
        return False
    return hasattr(raw, "method_kind") and raw.method_kind is None and raw.bound_to is None
