"""The scheduler's periods: how far ahead it creates runs, when a run is missed or Late, and
the check that they fit together. A module of its own so that the CLI reads the defaults
without importing the scheduler."""

from __future__ import annotations

from stead.errors import ConfigError

AHEAD_S = 60.0
"""How far ahead runs are created, in seconds: at least one scheduler period."""
AHEAD_RUNS = 3
"""At most this many runs of a schedule wait for their time at once."""
MISSED_AFTER_S = 60.0
"""With the missed-run policy "skip", a scheduled run not started this many seconds after
its fire time is skipped (it was missed)."""
GRACE_S = 600.0
"""A due run not started this many seconds after its fire time is marked Late."""
EVERY_S = 5.0
"""How often `stead scheduler start` ticks, in seconds."""


def check_timing(every_s: float, ahead_s: float, grace_s: float, missed_after_s: float) -> None:
    """ConfigError unless the scheduler's periods fit together: each fire time must be
    created before it passes (ahead >= every), and a run made due one period late is not
    missed (missed-after > every).

    Example:
        >>> check_timing(5.0, 60.0, 600.0, 60.0)   # the defaults: fine
    """
    if not every_s > 0 or ahead_s < every_s or grace_s < 0 or missed_after_s <= every_s:
        raise ConfigError(
            f"scheduler timing --every {every_s:g} --ahead {ahead_s:g} --grace {grace_s:g} "
            f"--missed-after {missed_after_s:g}: --every must be > 0, --ahead at least "
            "--every (a run is created before its time), --missed-after more than --every "
            f"(a run made due one round late is not missed), --grace >= 0; e.g. --every "
            f"{EVERY_S:g} --ahead {AHEAD_S:g} --missed-after {MISSED_AFTER_S:g}")
