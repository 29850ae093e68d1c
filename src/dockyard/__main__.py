"""`python -m dockyard` runs the CLI, so the server can start without the console script."""

from dockyard.cli.main import app

app()
