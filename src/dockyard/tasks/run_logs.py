"""Runs' logs: one file per run in this node's data directory, written by the runner as
lines end (CRLF, which az's log reader flushes on), read by byte ranges by the log URL
(`blob_api.py`). Knows nothing of HTTP or of the database."""

from __future__ import annotations

from pathlib import Path


class RunLogs:
    def __init__(self, root: Path) -> None:
        self._root = root

    def path(self, registry_id: int, number: int) -> Path:
        return self._root / str(registry_id) / f"ca{number}.log"

    def start(self, registry_id: int, number: int) -> Path:
        path = self.path(registry_id, number)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")
        return path

    def size(self, registry_id: int, number: int) -> int | None:
        """Bytes written so far; None before the run started."""
        try:
            return self.path(registry_id, number).stat().st_size
        except FileNotFoundError:
            return None

    def read(self, registry_id: int, number: int, start: int, end: int) -> bytes:
        """Bytes `start` to `end` inclusive (fewer at the end of what is written)."""
        with self.path(registry_id, number).open("rb") as log:
            log.seek(start)
            return log.read(end - start + 1)


def crlf(text: str) -> bytes:
    """`text` with every line ended by CRLF."""
    return "".join(line + "\r\n" for line in text.splitlines()).encode()
