"""The order of tag writes across regions (docs/architecture.md, "Geo-replication"): a
stamp is the time of the transaction that made the write, in microseconds, read from
the region's hybrid logical clock (`common.clock.HybridClock`, which has observed every
stamp the region applied), and the name of the region that made it; of two writes of
one tag, the later stamp wins, the region name breaking a tie, so every region picks the
same winner whatever order the writes reach it in. A delete is a write of nothing (a
tombstone) and wins or loses by the same rule."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def wall_of(moment: datetime) -> int:
    """Microseconds since the epoch, exactly (no float on the way)."""
    return (moment - _EPOCH) // _MICROSECOND


@dataclass(frozen=True, order=True)
class Stamp:
    """Ordered by wall time, then region name: a total order on the writes of all
    regions, as each region stamps a tag at most once per microsecond."""

    wall: int
    region: str

    @classmethod
    def at(cls, moment: datetime, region: str) -> Stamp:
        return cls(wall_of(moment), region)

    def moment(self) -> datetime:
        return _EPOCH + self.wall * _MICROSECOND

    def as_json(self) -> dict[str, Any]:
        return {"wall": self.wall, "region": self.region}

    @classmethod
    def from_json(cls, value: Any) -> Stamp:
        """A stamp a peer sent; ValueError for anything else."""
        if not isinstance(value, dict):
            raise ValueError("a stamp is an object")
        wall, region = value.get("wall"), value.get("region")
        if not isinstance(wall, int) or isinstance(wall, bool) or wall < 0:
            raise ValueError("a stamp's wall is a whole number of microseconds")
        if not isinstance(region, str) or not region:
            raise ValueError("a stamp names its region")
        return cls(wall, region)


ORIGIN = Stamp(0, "")  # what a tag that no write is known for is stamped with
