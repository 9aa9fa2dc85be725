"""The durability dial: how far a run's checkpoints must reach before the flow goes on.

A level is recorded on each run (`RunRecord.durability`) and every backend applies it to that
run's commits: SQLite through `PRAGMA synchronous` of the connection, PostgreSQL through the
session's `synchronous_commit`. The engine batches the sequential steps of "batched" runs
(core/batching.py); the stores commit each group as a "process" write.
"""

from __future__ import annotations

from stead.errors import ConfigError

FSYNC, PROCESS, BATCHED = "fsync", "process", "batched"
LEVELS = (FSYNC, PROCESS, BATCHED)
DEFAULT = PROCESS
# What each level survives, in the words `stead runs show` and the docs use.
SURVIVES = {
    FSYNC: "survives power loss: every checkpoint is on disk before the flow goes on",
    PROCESS: "survives a killed process, not a power cut (the OS may still hold the last "
             "commits)",
    BATCHED: "steps committed in groups: a crash re-runs at most the last group (up to "
             "STEAD_BATCH_STEPS steps, or STEAD_BATCH_MS of them); a power cut as process",
}
SQLITE_SYNCHRONOUS = {FSYNC: "FULL", PROCESS: "NORMAL", BATCHED: "NORMAL"}
POSTGRES_SYNCHRONOUS_COMMIT = {FSYNC: "on", PROCESS: "off", BATCHED: "off"}
_STRENGTH = {"NORMAL": 0, "FULL": 1, "off": 0, "on": 1}


def check_level(value: object, where: str) -> str:
    """`value` if it is a durability level; otherwise a ConfigError naming the three.

    Example:
        >>> check_level("fsync", "flow 'etl'")
        'fsync'
    """
    if isinstance(value, str) and value in LEVELS:
        return value
    raise ConfigError(f"{where}: durability must be one of 'fsync' (survives power loss), "
                      f"'process' (survives a killed process) or 'batched' (steps committed "
                      f"in groups; a crash re-runs at most the last group), got {value!r}")


def strongest(settings: list[str]) -> str:
    """The strongest of several backend settings ("FULL" over "NORMAL", "on" over "off")."""
    return max(settings, key=_STRENGTH.__getitem__)
