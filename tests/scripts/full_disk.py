"""A flow that fills the disk under its own database in its first step, then records many
small steps (tests/store/test_disk_full.py). Run: full_disk.py RUN_ID MARKER FILLER N;
prints the type and message of the error it ends with."""

import errno
import sys
from pathlib import Path

from stead import flow, task


def fill(path: Path) -> None:
    """Write to `path` until the disk is full."""
    with open(path, "wb") as f:
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError as exc:
            assert exc.errno == errno.ENOSPC


@task
def fill_once(marker: str, filler: str) -> int:
    if not Path(marker).exists():
        Path(marker).touch()
        fill(Path(filler))
    return 0


@task
def small(i: int) -> str:
    return f"{i:04d}" * 200


@flow
def small_steps(marker: str, filler: str, n: int) -> int:
    fill_once(marker, filler)
    return sum(len(small(i)) for i in range(n))


if __name__ == "__main__":
    run_id, marker, filler, n = sys.argv[1:]
    try:
        small_steps.with_options(run_id=run_id)(marker, filler, int(n))
    except Exception as exc:
        print(f"{type(exc).__module__}.{type(exc).__name__}: {exc}")
