"""OSV export files as osv.dev publishes them: a zip of one JSON record per advisory
(`<ECOSYSTEM>/all.zip`, or the whole database's `all.zip`), or single JSON files (one
record, a list of records, or the API's `{"vulns": [...]}`). Read from disk only:
importing works air-gapped. Each record becomes an `Advisory`: what the database keeps."""

from __future__ import annotations

import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from dockyard.common.errors import RequestInvalid
from dockyard.scanning.severity import Severity, rate


@dataclass(frozen=True)
class Affected:
    ecosystem: str
    name: str
    ranges: list[dict[str, Any]]
    versions: list[str]


@dataclass(frozen=True)
class Advisory:
    id: str
    modified: datetime
    aliases: tuple[str, ...]
    summary: str | None
    severity: Severity
    score: float | None
    vector: str | None
    affected: tuple[Affected, ...]
    withdrawn: bool


def normalise_name(ecosystem: str, name: str) -> str:
    """PyPI names as PEP 503 compares them; every other ecosystem's as written."""
    if ecosystem == "PyPI":
        return re.sub(r"[-_.]+", "-", name).lower()
    return name


def _time(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def advisory(record: dict[str, Any]) -> Advisory:
    """The advisory of one OSV record; ValueError (or KeyError) for one without an id
    and a `modified` time."""
    if not isinstance(record.get("id"), str) or not record["id"]:
        raise ValueError("an OSV record without an id")
    severity, score, vector = rate(record)
    affected = []
    for entry in record.get("affected") or []:
        package = entry.get("package") or {}
        ecosystem, name = package.get("ecosystem"), package.get("name")
        if not ecosystem or not name:
            continue
        affected.append(
            Affected(
                ecosystem,
                normalise_name(ecosystem, name),
                [r for r in entry.get("ranges") or [] if isinstance(r, dict)],
                [str(v) for v in entry.get("versions") or []],
            )
        )
    summary = record.get("summary") or record.get("details") or None
    return Advisory(
        id=record["id"],
        modified=_time(record["modified"]),
        aliases=tuple(str(a) for a in record.get("aliases") or ()),
        summary=summary[:500] if summary else None,
        severity=severity,
        score=score,
        vector=vector,
        affected=tuple(affected),
        withdrawn=bool(record.get("withdrawn")),
    )


def _records(document: Any) -> list[dict[str, Any]]:
    if isinstance(document, dict) and isinstance(document.get("vulns"), list):
        document = document["vulns"]
    if isinstance(document, dict):
        return [document]
    if isinstance(document, list):
        return [d for d in document if isinstance(d, dict)]
    return []


def read(path: Path) -> Iterator[dict[str, Any]]:
    """Every record in one export file, as read; `RequestInvalid` naming the file (and
    member) for one that is neither a zip of JSON nor JSON."""
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                for member in archive.infolist():
                    if member.is_dir() or not member.filename.endswith(".json"):
                        continue
                    try:
                        yield from _records(orjson.loads(archive.read(member)))
                    except orjson.JSONDecodeError as error:
                        raise RequestInvalid(f"{path}: {member.filename}: {error}") from None
            return
        yield from _records(orjson.loads(path.read_bytes()))
    except (OSError, zipfile.BadZipFile) as error:
        raise RequestInvalid(f"{path}: {error}") from None
    except orjson.JSONDecodeError as error:
        raise RequestInvalid(f"{path}: not an OSV export (zip or JSON): {error}") from None
