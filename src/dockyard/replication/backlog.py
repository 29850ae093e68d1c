"""What waits to be replicated: the outbox consumers that send a region's changes, one
per peer region (`consumer_name`, the events they take: `TAKES`), and, per registry
and peer region, how many changes that region's consumer has not delivered and how
long the oldest has waited (the lag), as the replications' status and `/metrics` show
them. Each peer region has its queue: one that is down holds back only its own."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from dockyard.core.events import (
    Event,
    LocksChanged,
    ManifestDeleted,
    ManifestPushed,
    QuarantineChanged,
    RepositoryDeleted,
    Untagged,
    actions,
)
from dockyard.metadata.replication import backlogs
from dockyard.metadata.store import Metadata
from dockyard.replication.regions import region_key

CONSUMER = "replication"  # a peer region's is `replication@<region>`
TAKES: tuple[type[Event], ...] = (
    ManifestPushed,
    Untagged,
    ManifestDeleted,
    RepositoryDeleted,
    LocksChanged,
    QuarantineChanged,
)


@dataclass(frozen=True)
class Lag:
    queue_depth: int  # changes not delivered yet
    seconds: float  # how long the oldest of them has waited; 0 with none


def consumer_name(region: str) -> str:
    """The outbox consumer that sends this region's changes to the peer `region`."""
    return f"{CONSUMER}@{region_key(region)}"


def lags(meta: Metadata, now: datetime, region: str) -> dict[int, Lag]:
    """Per registry with a backlog for the peer `region`: its lag now (registries not
    named have none)."""
    taken = actions(TAKES)
    assert taken is not None
    return {
        registry_id: Lag(
            found.depth,
            0.0 if found.oldest is None else max(0.0, (now - found.oldest).total_seconds()),
        )
        for registry_id, found in backlogs(meta, consumer_name(region), taken).items()
    }


NO_LAG = Lag(0, 0.0)
