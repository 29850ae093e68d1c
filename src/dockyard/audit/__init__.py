"""The audit log, a feature: repository events and logins kept per registry for
`listEvents` and `dockyard logs query` (`log.py`: `AuditLog`, in `Services`), filled by
its outbox consumer and by the request path's rows (`api/audit.py`, buffered and
flushed by every server process), and pruned by its job (`jobs.py`). Core never
imports this package."""
