"""The attempt loop of one task call inside a flow (sync and async): tag slots, the deadline,
retries by the task's policy, and the recording of each attempt's outcome by its `Step`.
`Task.__call__` (core/task.py) hands a call here once its step is known not to be replayed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from stead.core.batching import BatchedStore
from stead.core.context import RunContext, current_frame
from stead.core.hooks import attempts_with_hooks, has_hooks, running_hooks
from stead.core.parking import Park, can_park, park_after
from stead.core.steps import Step
from stead.core.tags import call_tags
from stead.core.timeouts import deadline
from stead.errors import SerializationError, TaskTimeout

if TYPE_CHECKING:
    from stead.core.task import Task

R = TypeVar("R")


async def attempts_async(task: Task[Any, R], ctx: RunContext, step: Step, args: Any,
                         kwargs: Any, alone: bool = False) -> R:
    """The attempts of an async task. Its records are committed by the group-commit
    writer while the loop runs on, unless the loop is `alone`: made for this one call
    (a sync flow calling an async task), where a commit blocks nothing else."""
    import asyncio

    sink = None if alone else _loop_writer(ctx, step)
    while True:
        slots = await _tag_slots_async(task, ctx, step)
        try:  # slots are held until the outcome is recorded: its times stay inside them
            step.start_attempt()
            if task.hooks["on_running"]:
                running_hooks(task, step, args, kwargs)
            frame_token = current_frame.set(step)  # type: ignore[arg-type]
            try:
                result = await call_async(task, args, kwargs, f" (step {step.key})")
            except Exception as exc:
                delay = _record_failure(task, step, exc)
                if sink is not None:
                    await sink.durable()  # a store failure is raised instead of exc
                if delay is None:
                    raise
                result = _RETRY
            except BaseException:
                step.abandoned()
                raise
            finally:
                current_frame.reset(frame_token)
            if result is not _RETRY:
                if sink is None:
                    return step.succeeded(result)
                try:
                    return step.succeeded(result)
                finally:  # the flow goes on past this await only once it is committed
                    await sink.durable()
        finally:
            if slots is not None:
                await asyncio.to_thread(slots.__exit__, None, None, None)
        await ctx.clock.asleep(delay)


def _loop_writer(ctx: RunContext, step: Step) -> Any:
    """Route `step`'s records through group commit, awaited on the running loop (the loop
    never blocks on a commit); None for a batched run, whose store already only queues."""
    if isinstance(ctx.store, BatchedStore):
        return None
    import asyncio

    from stead.core.writer import LoopWriter, writer_for

    step.writer = LoopWriter(writer_for(ctx.store), asyncio.get_running_loop())
    return step.writer


async def _tag_slots_async(task: Task[Any, Any], ctx: RunContext, step: Step) -> Any:
    """Enter `tag_slots` off the event loop (it may wait); the caller exits it."""
    tags = call_tags(task.tags)  # its own and those of enclosing stead.tags() blocks
    if not tags:
        return None
    import asyncio

    from stead.core.limits import tag_slots

    slots = tag_slots(ctx, tags, f"{ctx.run.id}/{step.key}")
    await asyncio.to_thread(slots.__enter__)
    return slots


def run_attempts(task: Task[Any, Any], ctx: RunContext, step: Step, args: Any, kwargs: Any,
                 body: Callable[..., Any], timeout: float | None) -> Any:
    """Run `body` as the attempts of `step`: retries, deadline, and recording of the outcome."""
    if has_hooks(task):  # state change hooks around the attempts (core/hooks.py)
        return attempts_with_hooks(task, step, args, kwargs, body, lambda hooked: _run_attempts(
            task, ctx, step, args, kwargs, hooked, timeout))
    return _run_attempts(task, ctx, step, args, kwargs, body, timeout)


def _run_attempts(task: Task[Any, Any], ctx: RunContext, step: Step, args: Any, kwargs: Any,
                  body: Callable[..., Any], timeout: float | None) -> Any:
    if step.retry_at is not None:  # resumed between attempts: wait what remains of the delay
        retry_wait(ctx, step, step.retry_at - ctx.clock.now())
    if timeout is None and not call_tags(task.tags):  # the hot path: nothing around it
        step.start_attempt()
        frame_token = current_frame.set(step)  # type: ignore[arg-type]
        try:
            result = body(*args, **kwargs)
        except Exception as exc:
            delay = _record_failure(task, step, exc)
            current_frame.reset(frame_token)
            if delay is None:
                raise
            retry_wait(ctx, step, delay)
            return _attempt_loop(task, ctx, step, args, kwargs, body, timeout)
        except BaseException:
            step.abandoned()
            current_frame.reset(frame_token)
            raise
        current_frame.reset(frame_token)
        return step.succeeded(result)
    return _attempt_loop(task, ctx, step, args, kwargs, body, timeout)


def _attempt_loop(task: Task[Any, Any], ctx: RunContext, step: Step, args: Any, kwargs: Any,
                  body: Callable[..., Any], timeout: float | None) -> Any:
    tags = call_tags(task.tags)  # its own and those of enclosing stead.tags() blocks
    while True:
        slots = None
        if tags:
            from stead.core.limits import tag_slots

            slots = tag_slots(ctx, tags, f"{ctx.run.id}/{step.key}")
            slots.__enter__()
        try:  # slots are held until the outcome is recorded: its times stay inside them
            step.start_attempt()
            frame_token = current_frame.set(step)  # type: ignore[arg-type]
            try:
                if timeout is None:
                    result = body(*args, **kwargs)
                else:
                    with deadline(timeout, f"task '{task.name}' (step {step.key})"):
                        result = body(*args, **kwargs)
            except Exception as exc:
                delay = _record_failure(task, step, exc)
                if delay is None:
                    raise
                result = _RETRY
            except BaseException:
                step.abandoned()
                raise
            finally:
                current_frame.reset(frame_token)
            if result is not _RETRY:
                return step.succeeded(result)
        finally:
            if slots is not None:
                slots.__exit__(None, None, None)
        retry_wait(ctx, step, delay)  # a retry waits without holding slots


_RETRY = object()  # the attempt failed and will be retried


def retry_wait(ctx: RunContext, step: Step, delay: float) -> None:
    """Wait `delay` seconds before the next attempt of `step`. The due time is recorded with
    the Retrying attempt (a resume waits only what remains); on a worker, a delay longer than
    STEAD_PARK_AFTER_SECONDS parks the run instead (core/parking.py)."""
    if delay <= 0:
        return
    if delay > park_after() and can_park(ctx):
        from stead.store.waits import WaitRecord

        now = ctx.clock.now()
        raise Park(WaitRecord(ctx.run.id, "retry", step.key, wake_at=now + delay, since=now))
    ctx.clock.sleep(delay)


def _record_failure(task: Task[Any, Any], step: Step, exc: Exception) -> float | None:
    """Record a failed attempt; return the delay before the next one, or None if final."""
    retry = task.retry
    # A value that cannot be stored would fail the same way again: no retry.
    again = not isinstance(exc, SerializationError) and retry.should_retry(
        exc, step.attempts, (task, step))
    delay = retry.delay_before(step.attempts + 1) if again else 0.0
    step.failed(exc, retry=again, delay=delay)
    return delay if again else None


async def call_async(task: Task[Any, Any], args: Any, kwargs: Any, where: str = "") -> Any:
    """Await one attempt of an async task's body under its timeout."""
    if task.timeout is None:
        return await task.fn(*args, **kwargs)
    import asyncio

    try:
        async with asyncio.timeout(task.timeout):
            return await task.fn(*args, **kwargs)
    except TimeoutError as exc:
        raise TaskTimeout(f"task '{task.name}'{where} (limit {task.timeout:g} s) "
                          "timed out") from exc
