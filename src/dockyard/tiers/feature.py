"""Tiers as a `Feature`. Its parts plug in elsewhere for now: the storage quota is the
`StorageLimit` `services.py` hands to core's `Uploads`, the rate limits are the
middleware `app.py` installs with `[rate_limits] enabled`, and its verb `show-usage` is
among the management verbs (`cli/registries.py`)."""

from __future__ import annotations

from dockyard.feature import Feature

TIERS = Feature("tiers")
