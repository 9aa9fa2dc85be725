"""Returns every supported type from tasks; with HANG=1 it hangs after recording them all."""

import os
import sys
import time

from typed_values import examples

from stead import flow, task

CALLS = os.environ["CALLS_OUT"]


@task
def make(i: int):
    with open(CALLS, "a") as f:
        f.write(f"{i}\n")
    return examples()[i]


@task
def finish() -> None:
    if os.environ.get("HANG") == "1":
        time.sleep(3600)


@flow
def typed() -> list[str]:
    values = [make(i) for i in range(len(examples()))]
    finish()
    expected = examples()
    # Report, per value, whether the replayed value equals the original and has its type.
    return [f"{type(v).__name__}:{v == e and type(v) is type(e)}"
            for v, e in zip(values, expected, strict=True)]


if __name__ == "__main__":
    for line in typed.with_options(run_id=sys.argv[1])():
        print(line)
