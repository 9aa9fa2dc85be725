"""`stead.tags("a", "b")`: tags added to the runs and task calls started inside the block.

The tags in effect live in a context variable, so blocks nest (their tags add up), and
threads, asyncio tasks and submitted tasks each see the tags of the code that started them.
A run records the tags in effect when it is created (`stead runs ls --tag`), and while it
executes its own recorded tags are in effect for its task calls and child runs: a resumed or
worker-executed run keeps the tags it started with. A task call's tags are its `@task(tags=)`
and the tags in effect; every one of them counts for the global tag limits
(`stead limits set`), so a limit on "db" caps the task calls made inside ``with tags("db")``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token

from stead.errors import ConfigError

_current: ContextVar[tuple[str, ...]] = ContextVar("stead_tags", default=())


@contextmanager
def tags(*names: str) -> Iterator[set[str]]:
    """Add `names` to the tags of the runs and task calls started inside the block; yields
    every tag in effect there (the enclosing blocks' too).

    Example:
        >>> import stead
        >>> with stead.tags("nightly", "eu"):
        ...     with stead.tags("db") as in_effect:
        ...         sorted(in_effect)
        ['db', 'eu', 'nightly']
    """
    for name in names:
        if not isinstance(name, str) or not name:
            raise ConfigError(f"stead.tags() takes tag names (non-empty text), e.g. "
                              f"stead.tags('db', 'nightly'), got {name!r}")
    token = _current.set(merge(_current.get(), names))
    try:
        yield set(_current.get())
    finally:
        _current.reset(token)


def current_tags() -> tuple[str, ...]:
    """The tags in effect here, in the order they were added (empty outside any block).

    >>> current_tags()
    ()
    """
    return _current.get()


def merge(first: Iterable[str], more: Iterable[str]) -> tuple[str, ...]:
    """`first`, then the tags of `more` not already in it, each once.

    >>> merge(("a", "b"), ("b", "c"))
    ('a', 'b', 'c')
    """
    out = tuple(dict.fromkeys((*first, *more)))
    return out


def call_tags(own: tuple[str, ...]) -> tuple[str, ...]:
    """A task call's tags: the task's own, then those in effect (the hot path: no block, no
    tags, no work)."""
    extra = _current.get()
    if not extra:
        return own
    return merge(own, extra) if own else extra


def tags_json() -> str:
    """The tags in effect, as a run's `tags` column stores them (a JSON list)."""
    found = _current.get()
    return json.dumps(list(found)) if found else "[]"


def enter_run_tags(recorded: str | None) -> Token[tuple[str, ...]]:
    """Put a run's recorded tags (its `tags` column) in effect while it executes, added to
    those already in effect; reset with the returned token."""
    try:
        names = json.loads(recorded or "[]")
    except ValueError:
        names = []
    if not isinstance(names, list):
        names = []
    return _current.set(merge(_current.get(), (n for n in names if isinstance(n, str) and n)))


def leave_run_tags(token: Token[tuple[str, ...]]) -> None:
    _current.reset(token)
