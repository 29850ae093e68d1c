"""The features this registry runs: the one list the server (`app.py`), the background
work (`background.py`) and the CLI (`cli/main.py`) assemble. A feature's routes mount
in this order, after the kernel's `/v2` routes and before its others (`Feature.routes`):
the management API last, as its ARM fallback must follow every route under
`/subscriptions/`."""

from __future__ import annotations

from dockyard.audit.feature import AUDIT
from dockyard.encryption.feature import ENCRYPTION
from dockyard.feature import Feature
from dockyard.lifecycle.feature import LIFECYCLE
from dockyard.management.feature import MANAGEMENT
from dockyard.mirroring.feature import MIRRORING
from dockyard.portal.feature import PORTAL
from dockyard.quarantine.feature import QUARANTINE
from dockyard.replication.feature import REPLICATION
from dockyard.sbom.feature import SBOM
from dockyard.scanning.feature import SCANNING
from dockyard.signing.feature import SIGNING
from dockyard.tasks.feature import TASKS
from dockyard.tiers.feature import TIERS
from dockyard.webhooks.feature import WEBHOOKS

FEATURES: tuple[Feature, ...] = (
    TIERS,
    AUDIT,
    WEBHOOKS,
    MIRRORING,
    LIFECYCLE,
    ENCRYPTION,
    SIGNING,
    REPLICATION,
    QUARANTINE,
    SBOM,
    SCANNING,
    TASKS,
    PORTAL,
    MANAGEMENT,
)
