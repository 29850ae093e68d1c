"""Quarantine as ACR does it: with a registry's `quarantinePolicy` on, a pushed image
is served only to quarantine readers until a quarantine writer sets it `Passed`."""
