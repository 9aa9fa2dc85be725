"""Flows of bench/server.py (imported by module name, with bench/ on sys.path)."""

from stead import flow, task


@task
def step(i: int) -> int:
    return i + 1


@flow
def report(day: str, limit: int = 10) -> str:
    return f"{day} {limit}"


@flow
def sequential(n: int) -> int:
    return sum(step(i) for i in range(n))


@flow
def mapped(n: int) -> int:
    return sum(f.result() for f in step.map(range(n)))
