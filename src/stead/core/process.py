"""Who is executing a run: an owner string naming host, pid and process start time.

The start time (from /proc) tells a live process from a new one that reused a dead one's pid.
"""

from __future__ import annotations

import os

_HOST = os.uname().nodename


def _start_ticks(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return "?"
    # Field 22 (starttime) follows the command name, which is in parentheses and may hold spaces.
    return data[data.rindex(b")") + 2:].split()[19].decode()


def current_owner() -> str:
    pid = os.getpid()
    return f"{_HOST}|{pid}|{_start_ticks(pid)}"


def describe_owner(owner: str | None) -> str:
    if not owner:
        return "no process"
    host, _, rest = owner.partition("|")
    return f"process {rest.partition('|')[0]} on {host}"


def owner_is_alive(owner: str | None) -> bool | None:
    """True/False for a process on this host; None when it runs on another host (unknown)."""
    if not owner:
        return False
    host, pid_text, ticks = [*owner.split("|"), "", ""][:3]
    if host != _HOST:
        return None
    try:
        pid = int(pid_text)
        os.kill(pid, 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return ticks in ("?", _start_ticks(pid))
