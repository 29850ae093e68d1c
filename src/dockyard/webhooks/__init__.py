"""ACR's webhooks, a feature riding on the outbox: the webhooks and their rules
(`model.py`), which events they are sent (`scopes.py`, `payloads.py`), and the sending,
history and background delivery (`delivery.py`). Core never imports this package."""
