"""Statements of every blob push, run on SQLite straight on the driver.

sqlite3 answers one of these prepared, indexed statements in about 3 µs; SQLAlchemy's
execution around it (execution context, parameter processing, result set-up) costs
about 25 µs more. A push runs a dozen of them, several while it holds the writers' lock,
which every other writer then waits for. A `Prepared` statement is compiled once per
dialect, with SQLAlchemy's own type conversions for its parameters and columns, so the
rows it writes and reads are exactly those SQLAlchemy would. On PostgreSQL it runs
through SQLAlchemy like any statement: there the driver's errors must pass SQLAlchemy's
wrapping, which is how `Metadata` tells a connection the database server dropped."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Connection, Dialect
from sqlalchemy.exc import DBAPIError

_Convert = Callable[[Any], Any] | None


def driver_execute(conn: Connection, sql: str, parameters: tuple[Any, ...] = ()) -> Any:
    """Run `sql` on the connection's driver (sqlite3); its errors wrapped as SQLAlchemy
    wraps them (the callers' error handling expects `DBAPIError`, a dead connection's
    an `OperationalError`)."""
    dbapi = conn.connection.dbapi_connection
    try:
        return dbapi.execute(sql, parameters)  # type: ignore[union-attr]
    except conn.dialect.loaded_dbapi.Error as exc:
        error = conn.dialect.loaded_dbapi.Error
        raise DBAPIError.instance(sql, parameters, exc, error) from exc


class _Compiled:
    def __init__(self, statement: Any, dialect: Dialect, keys: Sequence[str] | None) -> None:
        compiled = statement.compile(dialect=dialect, column_keys=keys)
        assert compiled.positional, "sqlite3 takes positional parameters"
        self.sql = compiled.string
        self.names = tuple(compiled.positiontup or ())
        self.binds: tuple[_Convert, ...] = tuple(
            compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect)
            for name in self.names
        )
        columns = getattr(statement, "selected_columns", ())
        self.results: tuple[_Convert, ...] = tuple(
            column.type.dialect_impl(dialect).result_processor(dialect, None) for column in columns
        )
        self.convert_rows = any(self.results)

    def parameters(self, params: dict[str, Any]) -> tuple[Any, ...]:
        return tuple(
            params[name] if convert is None else convert(params[name])
            for name, convert in zip(self.names, self.binds, strict=True)
        )

    def row(self, row: tuple[Any, ...] | None) -> tuple[Any, ...] | None:
        if row is None or not self.convert_rows:
            return row
        return tuple(
            value if convert is None else convert(value)
            for value, convert in zip(row, self.results, strict=True)
        )


class Prepared:
    """One hot statement. `keys`: for an INSERT given its values at execution, the
    columns it sets."""

    def __init__(self, statement: Any, keys: Sequence[str] | None = None) -> None:
        self.statement = statement
        self._keys = keys
        self._sqlite: _Compiled | None = None

    def _compiled(self, conn: Connection) -> _Compiled | None:
        if conn.dialect.name != "sqlite":
            return None
        compiled = self._sqlite
        if compiled is None:
            compiled = self._sqlite = _Compiled(self.statement, conn.dialect, self._keys)
        return compiled

    def _run(self, conn: Connection, compiled: _Compiled, params: dict[str, Any]) -> Any:
        return driver_execute(conn, compiled.sql, compiled.parameters(params))

    def first(self, conn: Connection, **params: Any) -> tuple[Any, ...] | None:
        """The first row, or None."""
        compiled = self._compiled(conn)
        if compiled is None:
            row = conn.execute(self.statement, params).first()
            return None if row is None else tuple(row)
        return compiled.row(self._run(conn, compiled, params).fetchone())

    def scalar(self, conn: Connection, **params: Any) -> Any:
        """The first column of the first row, or None."""
        row = self.first(conn, **params)
        return None if row is None else row[0]

    def rowcount(self, conn: Connection, **params: Any) -> int:
        """Run a write; how many rows it changed."""
        compiled = self._compiled(conn)
        if compiled is None:
            return conn.execute(self.statement, params).rowcount
        return self._run(conn, compiled, params).rowcount
