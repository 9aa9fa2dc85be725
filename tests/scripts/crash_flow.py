"""A flow of N tasks, each appending its index to $CRASH_OUT. Used by the SIGKILL tests.

HANG_AT=i makes task i hang after its side effect (the test kills the process there);
TASK_SLEEP=s slows every task so a kill at a random moment lands mid-run.
"""

import os
import sys
import time

from stead import flow, task

HANG_AT = int(os.environ.get("HANG_AT", "-1"))
SLEEP = float(os.environ.get("TASK_SLEEP", "0"))


@task
def append(i: int) -> int:
    with open(os.environ["CRASH_OUT"], "a") as f:  # read per call: tests resume in-process
        f.write(f"{i}\n")
    if i == HANG_AT:
        time.sleep(3600)
    if SLEEP:
        time.sleep(SLEEP)
    return i


@flow
def numbered(n: int) -> int:
    total = 0
    for i in range(n):
        total += append(i)
    return total


if __name__ == "__main__":
    run_id, n = sys.argv[1], int(sys.argv[2])
    print(numbered.with_options(run_id=run_id)(n))
