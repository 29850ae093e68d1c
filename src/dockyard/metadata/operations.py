"""Queries of the management API's long-running operations (`operations`). Running
them and what their states mean is `management.operations`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import delete, insert, select, update

from dockyard.metadata import schema as t
from dockyard.metadata.store import Metadata, Transaction

_o = t.operations

IN_PROGRESS, SUCCEEDED, FAILED = "InProgress", "Succeeded", "Failed"


@dataclass(frozen=True)
class OperationRecord:
    id: str
    registry_id: int
    kind: str
    status: str
    error_status: int | None
    error_code: str | None
    error_message: str | None
    created_at: datetime
    updated_at: datetime
    details: dict[str, Any] | None  # progress while in progress, the result once done


_OPERATION = select(
    _o.c.id,
    _o.c.registry_id,
    _o.c.kind,
    _o.c.status,
    _o.c.error_status,
    _o.c.error_code,
    _o.c.error_message,
    _o.c.created_at,
    _o.c.updated_at,
    _o.c.details,
)


def operation(meta: Metadata, operation_id: str) -> OperationRecord | None:
    with meta.connection() as conn:
        row = conn.execute(_OPERATION.where(_o.c.id == operation_id)).first()
    if row is None:
        return None
    *fields, details = row
    return OperationRecord(*fields, None if details is None else orjson.loads(details))


class OperationWrites:
    def __init__(self, tx: Transaction) -> None:
        self._conn = tx.conn
        self._now = tx.now

    def add(self, operation_id: str, registry_id: int, kind: str) -> None:
        self._conn.execute(
            insert(_o).values(
                id=operation_id,
                registry_id=registry_id,
                kind=kind,
                status=IN_PROGRESS,
                created_at=self._now,
                updated_at=self._now,
            )
        )

    def beat(self, operation_id: str, details: dict[str, Any] | None = None) -> None:
        """The heartbeat, with the progress so far when there is any."""
        values: dict[str, Any] = {"updated_at": self._now}
        if details is not None:
            values["details"] = orjson.dumps(details).decode()
        self._conn.execute(
            update(_o).where(_o.c.id == operation_id, _o.c.status == IN_PROGRESS).values(**values)
        )

    def finish(
        self,
        operation_id: str,
        error: tuple[int, str, str] | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        """Succeeded (with what it did, when it says), or Failed with (status, code,
        message)."""
        status, code, message = error or (None, None, None)
        self._conn.execute(
            update(_o)
            .where(_o.c.id == operation_id)
            .values(
                status=SUCCEEDED if error is None else FAILED,
                error_status=status,
                error_code=code,
                error_message=message,
                updated_at=self._now,
                details=None if details is None else orjson.dumps(details).decode(),
            )
        )

    def forget_before(self, moment: datetime) -> None:
        """Drop the operations created before `moment` (their pollers are long gone)."""
        self._conn.execute(delete(_o).where(_o.c.created_at < moment))
