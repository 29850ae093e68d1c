"""The `dockyard` command: verbs modelled on `az acr`. Talks to the server over its public
APIs, except `serve` and `db`, which run the server and its database."""
