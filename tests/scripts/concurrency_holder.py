"""Holds slots of a limit, as a user's process would: `concurrency_holder.py NAME OCCUPY
SECONDS ROUNDS OUT`. Each round enters `stead.concurrency(NAME, occupy=OCCUPY)`, appends
"enter PID" to OUT, holds for SECONDS, appends "exit PID", and leaves the block.
With ROUNDS 0 it enters once, appends "held PID" and sleeps until killed."""

import os
import sys
import time

import stead


def note(out: str, text: str) -> None:
    fd = os.open(out, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(fd, f"{text} {os.getpid()}\n".encode())
    finally:
        os.close(fd)


name, occupy, seconds, rounds, out = sys.argv[1:6]
if int(rounds) == 0:
    with stead.concurrency(name, occupy=int(occupy)):
        note(out, "held")
        time.sleep(3600)
for _ in range(int(rounds)):
    with stead.concurrency(name, occupy=int(occupy)):
        note(out, "enter")
        time.sleep(float(seconds))
        note(out, "exit")
