"""`stead worker start`: claim runs from queues and execute them in a pool of child processes.

One loop in the worker's main thread:
- claims as many Pending runs as it has idle children (`Store.claim_runs`: SKIP LOCKED on
  PostgreSQL, the write lock on SQLite) and hands each to a child;
- waits for its children's messages, for its poll interval at most: on PostgreSQL it is
  woken at once when a run becomes claimable (LISTEN/NOTIFY, store/wakeups.py);
- every lease/3 seconds, heartbeats: reports itself and extends the leases of its runs. A
  run missing from the answer was recovered by someone else while this worker was paused:
  its child is killed (its writes were already refused by the run's fence);
- wakes parked runs whose wait is over (`WaitStore.wake_due_runs`: Paused -> Pending) when
  the earliest wake time it knows of comes, and at least every WAKE_CHECK_S (runs parked by
  other workers); its wait for children ends then too, so timers fire on time;
- every lease/2 seconds, reaps: runs of any worker whose lease lapsed are marked Crashed and
  requeued (`recovery.py`), so a lost worker's runs resume elsewhere within ~1.5 leases;
  not within a lease after this worker saw the database unreachable (`Reaper`);
- replaces children that die, recovering the run a dead child was executing;
- hands back to their queue (uncounted) the runs whose child could not reach the database
  (StoreError), as soon as it answers again.
When the database is unreachable, the loop tries again every STORE_PAUSE_S, and heartbeats
first when it answers.
SIGTERM (or Ctrl-C) drains: no new claims; runs in progress may finish within the grace
period, then the rest are handed back to their queues. A second signal hands back at once.
"""

from __future__ import annotations

import json
import os
import signal
import time
import uuid
from dataclasses import dataclass
from typing import Any

from stead.core import console
from stead.core.process import current_owner
from stead.errors import StoreError
from stead.store.base import Fence, RunRecord, Store, WorkerRecord
from stead.store.wakeups import wakeups_for
from stead.worker.child import CANCELLED_EXIT, LOST_LEASE_EXIT
from stead.worker.crash_hooks import start_crash_hooks
from stead.worker.pool import Child, ChildPool
from stead.worker.recovery import Reaper, recover_local_orphans

STORE_PAUSE_S = 0.5  # pause between rounds while the store raises StoreError
WAKE_CHECK_S = 1.0  # parked runs are looked for at least this often


@dataclass
class WorkerOptions:
    queues: list[str]
    concurrency: int = 4
    name: str | None = None
    lease_s: float = 30.0
    poll_s: float = 0.1  # how often an idle worker looks for new runs
    grace_s: float = 25.0  # how long a draining worker lets its runs finish
    cancel_grace_s: float = 10.0  # how long a cancelled run may take to stop before SIGKILL
    cancel_check_s: float = 1.0  # how often a busy worker looks for cancelled runs
    max_runs: int | None = None  # stop after claiming this many runs (tests, batch jobs)


class Worker:
    """A worker process. Create it with a store and options; `run()` blocks until stopped."""

    def __init__(self, store: Store, options: WorkerOptions) -> None:
        self.store = store
        self.options = options
        host = os.uname().nodename
        now = time.time()
        self.record = WorkerRecord(
            id=uuid.uuid4().hex, name=options.name or f"{host}-{os.getpid()}", host=host,
            pid=os.getpid(), queues=json.dumps(options.queues),
            concurrency=options.concurrency, state="running", started_at=now,
            heartbeat_at=now, lease_s=options.lease_s)
        self.owner = current_owner()
        self.pool = ChildPool(options.concurrency, store.url, options.lease_s)
        self.reaper = Reaper(store, options.lease_s)
        self.wakeups = wakeups_for(store.url)  # None: polling only (SQLite, remote mode)
        self._found_none = False  # the last claim found no run
        self._next_poll = 0.0  # when an empty queue is asked again without a wake-up
        self._claimed_at = 0.0  # time.monotonic() of the last claim
        self._handing_back: dict[str, tuple[RunRecord, str]] = {}  # run id -> (run, why)
        self._outage_seen = store.unreachable_at
        self.signals = 0
        self._cancelling: dict[str, float] = {}  # run id -> when its child gets SIGKILL
        self._next_cancel_check = 0.0
        self.claimed = 0
        self.completed = 0
        self._next_wake = 0.0  # time.time() of the next look for parked runs that are due

    # -- life cycle ----------------------------------------------------------------------
    def run(self) -> int:
        opts = self.options
        self._install_signals()
        self.store.register_worker(self.record)
        found = recover_local_orphans(self.store, time.time())
        found += self.reaper.reap(time.time())
        self._say(f"started: queues {', '.join(opts.queues)}, {opts.concurrency} child "
                  f"processes, lease {opts.lease_s:g} s"
                  + ("; woken by the database when runs arrive" if self.wakeups else "")
                  + (f"; recovered {found} runs left by dead workers" if found else ""))
        if self.wakeups is not None:
            self.wakeups.active()  # listen before the first claim
        self.pool.start()
        self._next_beat = self._next_reap = 0.0
        self._drain_deadline: float | None = None
        try:
            while True:
                try:
                    if not self._turn():
                        break
                except StoreError as exc:  # the store retried for a while already
                    self._say(f"the database is unavailable ({exc}); trying again")
                    self.reaper.note_outage()
                    self._next_beat = 0.0  # heartbeat first when it answers
                    time.sleep(STORE_PAUSE_S)
        except BaseException as exc:
            self._say(f"stopping on {type(exc).__name__}: {exc}")
            raise
        finally:
            if self.wakeups is not None:
                self.wakeups.close()
            self.pool.stop()
            self.record.state = "stopped"
            self.record.running = 0
            try:
                self.store.heartbeat(self.record, [], time.time(), opts.lease_s)
            except Exception as exc:
                self._say(f"could not record the stop: {exc}")
            self._say(f"stopped after {self.completed} runs")
        return 0

    def _turn(self) -> bool:
        """One round of the loop; False when the worker should stop."""
        opts = self.options
        now = time.time()
        if self.signals and self._drain_deadline is None:
            self._drain_deadline = now + opts.grace_s
            self.record.state = "draining"
            self._say(f"draining: {len(self.pool.busy())} runs in progress get "
                      f"{opts.grace_s:g} s to finish (signal again to hand them back now)")
            self._next_beat = 0.0
        if now >= self._next_beat or self.store.unreachable_at != self._outage_seen:
            # (A call that retried through an outage: renew the leases at once.)
            if self._heartbeat(now):
                self._next_beat = now + opts.lease_s / 3
            self._outage_seen = self.store.unreachable_at
        if self._handing_back:
            self._hand_back_unrecorded()
        if now >= self._next_reap:
            self.reaper.reap(now)
            self._next_reap = now + opts.lease_s / 2
        if now >= self._next_cancel_check or self._cancelling:
            self._stop_cancelled(now)
            self._next_cancel_check = now + opts.cancel_check_s
        if self._drain_deadline is not None:
            if not self.pool.busy() and not self._handing_back:
                return False
            if now >= self._drain_deadline or self.signals > 1:
                self._hand_back()
                return False
        elif self._limit_reached():
            if not self.pool.busy():
                return False
        else:
            if now >= self._next_wake:
                self._wake_parked(now)
            self.pool.start()  # replace dead children
            if self._claim() and self.pool.idle():
                return True  # more may be waiting: look again at once
        timeout = min(opts.poll_s, max(0.0, self._next_wake - time.time()))
        self._events(self.pool.poll(timeout, self._wake()))
        return True

    def _wake_parked(self, now: float) -> None:
        """Move parked runs that are due to Pending; note when the next one is due."""
        woken, upcoming = self.store.wake_due_runs(now)
        if woken:
            self._found_none = False  # they are claimable now
        limit = now + WAKE_CHECK_S
        self._next_wake = limit if upcoming is None else min(upcoming, limit)

    def _wake(self) -> Any:
        """What may end the wait for children before the poll interval: the database's
        wake-ups, while some child is idle (a busy worker has nothing to claim for)."""
        wakeups = self.wakeups
        if wakeups is None or self._drain_deadline is not None or not self.pool.idle():
            return None
        return wakeups if wakeups.active() else None

    def _install_signals(self) -> None:
        def on_signal(signum: int, frame: Any) -> None:
            self.signals += 1

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)

    def _limit_reached(self) -> bool:
        return self.options.max_runs is not None and self.claimed >= self.options.max_runs

    # -- the work ------------------------------------------------------------------------
    def _claim(self) -> int:
        idle = self.pool.idle()
        if self.wakeups is not None:
            # Read the wake-ups before the claim: one arriving later wakes the next wait.
            notified = self.wakeups.take() & set(self.options.queues)
            since = self.wakeups.since  # listening from before the last claim: none missed
            if (idle and not notified and self._found_none and since is not None
                    and since < self._claimed_at and time.monotonic() < self._next_poll):
                return 0  # nothing new in our queues since a claim found them empty
        want = len(idle)
        if self.options.max_runs is not None:
            want = min(want, self.options.max_runs - self.claimed)
        if want <= 0:
            return 0
        self._claimed_at = time.monotonic()
        runs = self.store.claim_runs(self.options.queues, self.record, self.owner, want,
                                     time.time(), self.options.lease_s)
        self._found_none = not runs
        self._next_poll = time.monotonic() + self.options.poll_s
        for child, run in zip(idle, runs, strict=False):
            if not self.pool.assign(child, run):
                self.store.recover_run(run.id, run.lease_epoch, time.time(),
                                       "its child process died before it started", count=False)
        self.claimed += len(runs)
        return len(runs)

    def _events(self, polled: tuple[list[tuple[Child, tuple[Any, ...]]], list[Child]]) -> None:
        messages, dead = polled
        for child, message in messages:
            if message[0] in ("done", "store_error", "lost", "cancelled"):
                self._found_none = False  # a run ended: a limited queue may have room now
            if message[0] == "done":
                self.completed += 1
                _, run_id, state, summary = message
                self._say(f"run {run_id} {state}: {summary}")
                if state in ("Paused", "Pending"):  # parked: its wake time may be the next
                    self._next_wake = 0.0
            elif message[0] == "lost":
                self._say(f"run {message[1]}: {message[2]}")
            elif message[0] == "store_error":
                run = child.last_run
                if run is not None and run.id == message[1]:
                    self._say(f"run {run.id}: the database could not be reached "
                              f"({message[2]}); handing it back to its queue when it answers")
                    self._handing_back[run.id] = (run, "its execution could not reach the "
                                                  "database; handed back to its queue")
            elif message[0] == "cancelled":
                self._cancelled(message[1], f"stopped by worker {self.record.name}")
        for child in dead:
            run = child.run
            code = child.process.exitcode
            if run is not None and run.id in self._cancelling:
                self._cancelled(run.id, f"its process was killed by worker {self.record.name}"
                                        f" after {self.options.cancel_grace_s:g} s")
                continue
            if run is None:
                if code not in (0, None, LOST_LEASE_EXIT, CANCELLED_EXIT):
                    self._say(f"child process {child.pid} exited with code {code}; replaced")
                continue
            state = self.store.recover_run(
                run.id, run.lease_epoch, time.time(),
                f"the worker's child process {child.pid} died (exit code {code}) during the "
                "run")
            self._say(f"run {run.id}: child process {child.pid} died (exit code {code}); "
                      f"run is {state or 'already taken over'}")
            if state is not None:  # this worker recorded the crash: its hooks run now
                start_crash_hooks(self.store, [run.id])

    def _stop_cancelled(self, now: float) -> None:
        """Stop the runs someone cancelled: SIGUSR1 (RunCancelled in the run's code), then,
        after cancel_grace_s, SIGKILL."""
        busy = {c.run.id: c for c in self.pool.busy() if c.run is not None}
        if not busy:
            return
        if now >= self._next_cancel_check:
            for run_id, _ in self.store.runs_to_cancel(self.record.id):
                child = busy.get(run_id)
                if child is not None and run_id not in self._cancelling:
                    self._say(f"run {run_id} was cancelled; stopping it")
                    self._cancelling[run_id] = now + self.options.cancel_grace_s
                    self._signal(child, signal.SIGUSR1)
        for run_id, deadline in list(self._cancelling.items()):
            child = busy.get(run_id)
            if child is not None and now >= deadline:
                self.pool.kill(child)  # the next poll reports it dead: _events finishes it

    def _cancelled(self, run_id: str, message: str) -> None:
        self._cancelling.pop(run_id, None)
        for child in self.pool.children:
            if child.run is not None and child.run.id == run_id:
                child.run = None
        self.store.finish_cancel(run_id, time.time(), message)
        self._say(f"run {run_id} Cancelled")

    @staticmethod
    def _signal(child: Child, sig: int) -> None:
        try:
            os.kill(child.pid, sig)
        except ProcessLookupError:
            pass

    def _heartbeat(self, now: float) -> bool:
        """Renew this worker's row and its leases; False if the store could not be reached."""
        late = now - self.record.heartbeat_at
        if self.record.state != "draining" and late > self.options.lease_s * 2 / 3:
            self._say(f"heartbeat {late:.1f} s after the last one (lease "
                      f"{self.options.lease_s:g} s): this host or the database is overloaded; "
                      "runs may be recovered elsewhere. Consider a longer --lease.")
        busy = self.pool.busy()
        self.record.running = len(busy)
        held = [Fence(c.run.id, c.run.lease_epoch) for c in busy if c.run is not None]
        held += [Fence(r.id, r.lease_epoch) for r, _ in self._handing_back.values()]
        try:
            still = set(self.store.heartbeat(self.record, held, now, self.options.lease_s))
        except StoreError as exc:  # the store retried outages itself; keep the loop alive
            self._say(f"heartbeat failed: {exc}")
            self.reaper.note_outage()
            return False
        for child in busy:
            run = child.run
            if run is not None and Fence(run.id, run.lease_epoch) not in still:
                self._say(f"run {run.id} was recovered by another worker while this one "
                          "was unresponsive; stopping its child process")
                child.run = None
                self.pool.kill(child)
        return True

    def _hand_back_unrecorded(self) -> None:
        """Hand back the runs whose execution could not reach the database (a StoreError);
        those the store still cannot take are tried again at the next round."""
        for run_id, (run, why) in list(self._handing_back.items()):
            state = self.store.recover_run(run.id, run.lease_epoch, time.time(), why,
                                           count=False)
            del self._handing_back[run_id]
            self._say(f"run {run.id} handed back ({state or 'already taken over'})")

    def _hand_back(self) -> None:
        for child in self.pool.busy():
            run = child.run
            assert run is not None
            self.pool.kill(child)
            child.run = None
            state = self.store.recover_run(run.id, run.lease_epoch, time.time(),
                                           f"worker {self.record.name} shut down before the "
                                           "run finished", count=False)
            self._say(f"run {run.id} handed back ({state or 'already taken over'})")

    def _say(self, text: str) -> None:
        console.say(f"worker {self.record.name}", text)
