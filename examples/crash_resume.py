"""Crash and resume: stop this run any way you like, then run it again.

    python examples/crash_resume.py          # press Ctrl-C, or `kill -9` it, part-way
    python examples/crash_resume.py          # the same command resumes it
    stead runs resume crash-demo             # ...or resume it from the CLI

The run has a fixed id ("crash-demo"), so starting it again resumes the crashed run: the
steps that finished are not run again (their recorded results are used) and the rest run.
Pass another id as the first argument to start a fresh run, and a number of chunks as the
second (default 25).
"""

from __future__ import annotations

import os
import sys
import time

from stead import flow, get_logger, task


@task
def process_chunk(chunk: int) -> int:
    time.sleep(0.4)  # stands in for real work
    get_logger().info("chunk %d done by process %d", chunk, os.getpid())
    return chunk * chunk


@flow
def crunch(chunks: int = 25) -> int:
    total = 0
    for chunk in range(chunks):
        total += process_chunk(chunk)
        print(f"  chunk {chunk + 1}/{chunks} finished", flush=True)
    return total


if __name__ == "__main__":
    run_id = sys.argv[1] if len(sys.argv) > 1 else "crash-demo"
    chunks = int(sys.argv[2]) if len(sys.argv) > 2 else 25
    print(f"run id {run_id}: interrupt me (Ctrl-C or kill -9 {os.getpid()}), then run me again",
          flush=True)
    print("result:", crunch.with_options(run_id=run_id)(chunks))
