"""A prefork pool of reusable child processes (as Celery's prefork pool): each child executes
one run at a time, for many runs in a row, so a crashing run cannot take the worker down and
isolation does not cost a Python start-up per run. A child that dies is replaced.

Children are forked from a forkserver that has imported Stead once: a new child costs a
fork, not an interpreter start, and inherits none of the worker's threads or connections.
The forkserver is started ignoring SIGTERM: a SIGTERM sent to the worker's process group
(systemd, `kill -TERM -PGID`) drains the worker and must not kill the forkserver, without
which the children's exit codes cannot be read (multiprocessing then reports 255).
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.forkserver
import os
import signal
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from typing import Any

from stead.store.base import RunRecord
from stead.store.sql import run_values
from stead.worker.child import child_main

_PRELOAD = ["stead", "stead.core.loader", "stead.core.dispatch", "stead.worker.child"]


@dataclass(eq=False)
class Child:
    process: Any
    conn: Connection
    run: RunRecord | None = None  # the run it executes now; None when idle
    last_run: RunRecord | None = None  # the run it executed last (what a message is about)
    ready: bool = False  # it said "ready"; False again once it is exiting or killed
    events: list[tuple[Any, ...]] = field(default_factory=list)

    @property
    def pid(self) -> int:
        return int(self.process.pid)


class ChildPool:
    """`size` child processes serving runs from `database_url` with leases of `lease_s`."""

    def __init__(self, size: int, database_url: str, lease_s: float) -> None:
        self.size = size
        self.database_url = database_url
        self.lease_s = lease_s
        self._ctx = multiprocessing.get_context("forkserver")
        preload = list(_PRELOAD)
        if database_url.startswith(("postgresql://", "postgres://")):
            preload.append("stead.store.postgres")
        self._ctx.set_forkserver_preload(preload)
        self.children: list[Child] = []

    def start(self) -> None:
        if len(self.children) < self.size:
            _start_forkserver()
        while len(self.children) < self.size:
            self.children.append(self._spawn())

    def _spawn(self) -> Child:
        parent_end, child_end = self._ctx.Pipe(duplex=True)
        process = self._ctx.Process(target=child_main, name="stead-worker-child",
                                    args=(child_end, self.database_url, os.getpid(),
                                          self.lease_s),
                                    daemon=True)
        process.start()
        child_end.close()
        return Child(process, parent_end)

    def idle(self) -> list[Child]:
        return [c for c in self.children if c.ready and c.run is None]

    def busy(self) -> list[Child]:
        return [c for c in self.children if c.run is not None]

    def assign(self, child: Child, run: RunRecord) -> bool:
        """Hand `run` to an idle child; False if the child turned out to be dead."""
        try:
            child.conn.send(run_values(run))
        except OSError:  # it died since the last poll: the next poll reaps it
            child.ready = False
            return False
        child.run = run
        return True

    def poll(self, timeout: float, wake: Any = None
             ) -> tuple[list[tuple[Child, tuple[Any, ...]]], list[Child]]:
        """Wait up to `timeout` for messages or deaths: ([(child, message)], [dead children]),
        or until `wake` (an object with `fileno()`, e.g. store/wakeups.py) is readable.

        Dead children are removed from the pool (call `start()` to replace them); their
        `run` says what they were executing."""
        sources: dict[Any, Child] = {}
        for c in self.children:
            sources[c.conn] = c
            sources[c.process.sentinel] = c
        messages: list[tuple[Child, tuple[Any, ...]]] = []
        dead: list[Child] = []
        exited: set[int] = set()  # ids of the children whose sentinel fired
        for ready in wait([*sources, *([wake] if wake is not None else [])], timeout):
            if ready is wake:
                continue
            child = sources[ready]
            if ready is child.conn:  # one message; another one makes the next wait return
                try:
                    messages.append((child, child.conn.recv()))
                except (EOFError, OSError):
                    exited.add(id(child))  # it died: its sentinel says so too
            else:
                exited.add(id(child))
        for child in list(self.children):
            # Only a child whose sentinel fired, or one not serving (starting, killed), may
            # have exited: the others need no system call to find out.
            if (id(child) in exited or not child.ready) and not child.process.is_alive():
                child.process.join(0)
                try:  # a last message sent before it exited (a lost lease) still counts
                    while child.conn.poll():
                        messages.append((child, child.conn.recv()))
                except (EOFError, OSError):
                    pass
                self.children.remove(child)
                dead.append(child)
        for child, message in messages:
            if message[0] == "ready":
                child.ready = True
            elif message[0] in ("done", "store_error", "lost", "cancelled"):
                child.last_run, child.run = child.run, None
                if message[0] in ("lost", "cancelled"):  # it exits now: never hand it a run
                    child.ready = False
        return messages, dead

    def kill(self, child: Child) -> None:
        """Stop a child at once (SIGKILL): its run is handed back or recovered by the caller."""
        try:
            os.kill(child.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        child.process.join(5)
        child.ready = False  # never handed another run; the next poll reaps it

    def stop(self) -> None:
        """Ask idle children to exit, kill the rest."""
        for child in self.children:
            try:
                child.conn.send(None)
            except OSError:
                pass
        for child in self.children:
            child.process.join(2)
            if child.process.is_alive():
                self.kill(child)
        self.children = []


def _start_forkserver() -> None:
    """Start the forkserver (if it is not running) ignoring SIGTERM: an ignored signal stays
    ignored across fork and exec (a blocked one does not: the spawn clears the mask). A
    SIGTERM arriving in these few milliseconds is lost; the worker's handler is back after."""
    handler = signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        multiprocessing.forkserver.ensure_running()
    finally:
        signal.signal(signal.SIGTERM, handler)
