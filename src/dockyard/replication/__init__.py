"""Geo-replication (issue 14): this deployment as one region of a registry replicated
to others (`regions`), a registry's replications as resources (`replications`), the
shared peer credential and the peer-facing endpoints (`peers`, `api`), and the
ordering of concurrent tag writes (`hlc`)."""
