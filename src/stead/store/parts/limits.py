"""The limits-and-slots part of the store interface: global limits on tags (concurrency and
rate) and the slots tasks take under them, and the records they carry.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(slots=True)
class Limit:
    """A global limit on tasks carrying the tag `name`: at most `concurrency` at once, and/or
    at most `rate` starts per `period` seconds, across every process using the database."""

    name: str
    concurrency: int | None = None
    rate: int | None = None
    period: float | None = None


@dataclass(slots=True)
class SlotGrant:
    """The answer to `take_slots`: slot ids held (release them), or how long to wait."""

    ids: list[int]
    wait: float = 0.0

    @property
    def granted(self) -> bool:
        return self.wait == 0.0


class LimitStore(Protocol):
    """Tag limits and their slots, across every process using the database."""

    def set_limit(self, limit: Limit) -> None:
        """Create or replace the tag limit `limit.name`."""
        ...

    def delete_limit(self, name: str) -> None:
        """Remove the tag limit `name` (and its slots)."""
        ...

    def list_limits(self) -> list[Limit]:
        """Every tag limit, by name."""
        ...

    def take_slots(self, names: list[str], holder: str, now: float,
                   lease_s: float, occupy: int = 1) -> SlotGrant:
        """Take `occupy` slots (default one) of every limit among `names` at once, or none:
        returns the slot ids, or how long to wait before asking again. Tags without a limit
        need no slot.
        Concurrency slots expire lease_s seconds after they were taken unless renewed (a dead
        holder's slot is freed); rate slots expire one period after they were taken; both on
        the database's clock (`now` stamps acquired_at only)."""
        ...

    def renew_slots(self, ids: list[int], lease_s: float) -> None:
        """Extend the held concurrency slots `ids` to lease_s seconds from now (database's
        clock)."""
        ...

    def release_slots(self, ids: list[int]) -> None:
        """Give back concurrency slots (rate slots run out by themselves)."""
        ...
