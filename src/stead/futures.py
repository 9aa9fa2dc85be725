"""Prefect's ``prefect.futures`` names, for code moving over: ``from stead.futures import wait``.

The same objects as ``stead.wait``, ``stead.as_completed`` and ``stead.StepFuture``;
`PrefectFuture` is `StepFuture` under Prefect's name, `PrefectFutureList` what ``.map()``
returns.

Example:
    >>> from stead.futures import as_completed, wait
    >>> done, not_done = wait(process.map(files), timeout=60)
"""

from stead.core.futures import (
    DoneAndNotDone,
    StepFuture,
    StepFutureList,
    as_completed,
    unmapped,
    wait,
)

PrefectFuture = StepFuture
PrefectFutureList = StepFutureList
DoneAndNotDoneFutures = DoneAndNotDone

__all__ = [
    "DoneAndNotDone",
    "DoneAndNotDoneFutures",
    "PrefectFuture",
    "PrefectFutureList",
    "StepFuture",
    "StepFutureList",
    "as_completed",
    "unmapped",
    "wait",
]
