"""A 1000-way fan-out on 8 threads; each task appends its index to $CRASH_OUT."""

import os
import sys
import time

from stead import ThreadPoolTaskRunner, flow, task


@task
def handle(i: int) -> int:
    with open(os.environ["CRASH_OUT"], "a") as f:
        f.write(f"{i}\n")
    time.sleep(0.002)
    return i


@flow(task_runner=ThreadPoolTaskRunner(max_workers=8))
def fan_out(n: int) -> int:
    return sum(f.result() for f in handle.map(range(n)))


if __name__ == "__main__":
    print(fan_out.with_options(run_id=sys.argv[1])(int(sys.argv[2])))
