"""The portal: a web UI for people, served by the registry's own server under
`/portal/` (server-rendered Jinja2 pages with htmx, see docs/portal.md)."""
