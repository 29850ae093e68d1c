"""What every layer shares and nothing more: the domain errors and their OCI codes
(`errors.py`), the clock (`clock.py`), the request a change is made in
(`request_context.py`), and the grammar of names (`names.py`). Core, auth, metadata and
the features may all import it; it imports nothing of Dockyard's but itself, so core
and auth need not import each other for it."""
