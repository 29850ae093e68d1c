"""Mirroring, a feature: images copied in from other registries. The one client of other
registries (`upstream.py`), import (`imports.py`, what the management API's importImage
runs), cache rules and credential sets (`cache_rules.py`) and pulls through them
(`pull_through.py`, which the `/v2` manifest GET asks). Core never imports this
package."""
