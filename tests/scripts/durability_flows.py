"""Flows for the durability tests, imported by module name (`durability_flows`) by workers.

`probe` reports how its run's context writes: the level recorded on the run and whether its
step records are grouped (a BatchedStore) — what a worker executing an enqueued run chose.
"""

from stead import flow, task
from stead.core.context import current_run


@task
def how_written() -> list[str]:
    ctx = current_run.get()
    assert ctx is not None
    return [ctx.run.durability, type(ctx.store).__name__]


@flow
def probe() -> list[str]:
    return how_written()


@flow(durability="fsync")
def probe_fsync() -> list[str]:
    return how_written()
