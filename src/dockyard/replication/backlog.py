"""What waits to be replicated: the outbox consumer that sends a region's changes
(`CONSUMER`, the events it takes) and, per registry, how many changes it has not
delivered and how long the oldest has waited (the lag), as the replications' status
and `/metrics` show them. One consumer sends to every region, so a registry's backlog is
the same for each of its replicas."""

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

CONSUMER = "replication"
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


def lags(meta: Metadata, now: datetime) -> dict[int, Lag]:
    """Per registry with a backlog: its lag now (registries not named have none)."""
    taken = actions(TAKES)
    assert taken is not None
    return {
        registry_id: Lag(
            found.depth,
            0.0 if found.oldest is None else max(0.0, (now - found.oldest).total_seconds()),
        )
        for registry_id, found in backlogs(meta, CONSUMER, taken).items()
    }


NO_LAG = Lag(0, 0.0)
