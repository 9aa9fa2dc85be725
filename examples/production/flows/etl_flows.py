"""Example flows baked into the production image (examples/production/Dockerfile)."""

from stead import flow, get_logger, task


@task(retries=3, retry_delay=[1, 5, 30])
def extract(day: str) -> list[int]:
    return [len(day)]


@task
def load(rows: list[int]) -> int:
    get_logger().info("loaded %d rows", len(rows))
    return len(rows)


@flow
def etl(day: str) -> int:
    return load(extract(day))
