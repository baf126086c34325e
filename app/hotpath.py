"""Prepared statements for the hot paths (authentication, posting a reading, the audit entry).

A statement is still built with SQLAlchemy Core, so it stays portable and typed, but it is
compiled once per dialect and run on the DBAPI cursor of the request's own transaction. The
Core execution layer costs about 50 µs per statement (cache key, execution context, result
proxy) against 5-20 µs for the driver itself, which matters at thousands of requests a second.
The type processors are SQLAlchemy's own, so values read and written are the same as through
Core.
"""

from __future__ import annotations

import contextlib
from collections import namedtuple
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Table, bindparam, insert
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import Select

Processor = Callable[[Any], Any] | None


@dataclass(frozen=True, slots=True)
class _Compiled:
    sql: str
    names: tuple[str, ...]
    positional: bool
    binds: tuple[tuple[str, Processor, Any], ...]  # name, type processor, value if fixed
    results: tuple[Processor, ...]
    row: Any  # a namedtuple class


class Prepared:
    """One Core statement, compiled per dialect on first use."""

    def __init__(self, statement: ClauseElement) -> None:
        self.statement = statement
        self._compiled: dict[str, _Compiled] = {}

    @classmethod
    def insert(cls, table: Table, *, skip: Sequence[str] = ()) -> Prepared:
        """INSERT of every column but ``skip`` (e.g. a server-generated key), by column name."""
        values = {
            c.name: bindparam(c.name, type_=c.type) for c in table.columns if c.name not in skip
        }
        return cls(insert(table).values(values))

    def _for(self, dialect: Dialect) -> _Compiled:
        compiled = self._compiled.get(dialect.name)
        if compiled is None:
            cc = cast(SQLCompiler, self.statement.compile(dialect=dialect))
            if "POSTCOMPILE" in cc.string:
                raise ValueError("expanding parameters (IN lists) cannot be prepared once")
            binds = tuple(
                (name, bp.type.dialect_impl(dialect).bind_processor(dialect), bp.effective_value)
                for name, bp in cc.binds.items()
            )
            results: tuple[Processor, ...] = ()
            names: tuple[str, ...] = ()
            if isinstance(self.statement, Select):
                columns = list(self.statement.selected_columns)
                results = tuple(_result_processor(c.type, dialect) for c in columns)
                names = tuple(str(c.key) for c in columns)
            compiled = _Compiled(
                sql=cc.string,
                names=tuple(cc.positiontup or ()) if cc.positional else (),
                positional=cc.positional,
                binds=binds,
                results=results,
                row=namedtuple("Row", names, rename=True) if names else None,
            )
            self._compiled[dialect.name] = compiled
        return compiled

    def _params(self, compiled: _Compiled, params: Mapping[str, Any]) -> Any:
        processed = {}
        get = params.get
        for name, proc, fixed in compiled.binds:
            value = get(name, fixed)
            processed[name] = value if proc is None else proc(value)
        if compiled.positional:
            return tuple([processed[n] for n in compiled.names])
        return processed

    def execute(self, db: Session, params: Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> Any:
        """Run in ``db``'s transaction; a sequence of parameter sets runs as executemany."""
        return self._run(db, params)[1]

    def _run(
        self, db: Session, params: Mapping[str, Any] | Sequence[Mapping[str, Any]]
    ) -> tuple[_Compiled, Any]:
        dialect, dbapi_connection = _transaction_connection(db)
        return self._run_on(dialect, dbapi_connection, params)

    def _run_on(
        self,
        dialect: Dialect,
        dbapi_connection: Any,
        params: Mapping[str, Any] | Sequence[Mapping[str, Any]],
    ) -> tuple[_Compiled, Any]:
        compiled = self._for(dialect)
        cursor = dbapi_connection.cursor()
        dbapi_error = dialect.loaded_dbapi.Error
        try:
            if isinstance(params, Mapping):
                cursor.execute(compiled.sql, self._params(compiled, params))
            else:
                cursor.executemany(compiled.sql, [self._params(compiled, p) for p in params])
        except dbapi_error as exc:
            with contextlib.suppress(dbapi_error):  # not left to the collector (psycopg warns)
                cursor.close()
            # The same exception classes as through Core (IntegrityError, OperationalError, ...).
            raise DBAPIError.instance(compiled.sql, None, exc, dbapi_error) from exc
        return compiled, cursor

    def all(self, db: Session, params: Mapping[str, Any]) -> list[Any]:
        """Every row as a named tuple."""
        compiled, cursor = self._run(db, params)
        raws = cursor.fetchall()
        cursor.close()
        procs = compiled.results
        return [
            compiled.row(*[p(v) if p is not None else v for p, v in zip(procs, raw, strict=True)])
            for raw in raws
        ]

    def first(self, db: Session, params: Mapping[str, Any]) -> Any | None:
        """The first row as a named tuple (attribute access like a Core Row), or None."""
        return self._first(*self._run(db, params))

    def first_on(self, dialect: Dialect, dbapi_connection: Any, params: Mapping[str, Any]) -> Any:
        """As ``first``, on a DBAPI connection of its own (outside any request's session)."""
        return self._first(*self._run_on(dialect, dbapi_connection, params))

    def _first(self, compiled: _Compiled, cursor: Any) -> Any | None:
        raw = cursor.fetchone()
        cursor.close()
        if raw is None:
            return None
        values = [
            proc(v) if proc is not None else v
            for proc, v in zip(compiled.results, raw, strict=True)
        ]
        return compiled.row(*values)


def _transaction_connection(db: Session) -> tuple[Dialect, Any]:
    """The dialect and DBAPI connection of ``db``'s current transaction (begun if need be).

    Asking the Session for its connection walks its state machine (about 30 µs); the answer is
    kept for as long as the same transaction lasts.
    """
    transaction = db.get_transaction()
    cached = db.info.get("hotpath")
    if cached is not None and transaction is not None and cached[0] is transaction:
        return cached[1], cached[2]
    connection = db.connection()
    dialect, dbapi_connection = connection.dialect, connection.connection.dbapi_connection
    db.info["hotpath"] = (db.get_transaction(), dialect, dbapi_connection)
    return dialect, dbapi_connection


def _result_processor(type_: Any, dialect: Dialect) -> Processor:
    """SQLAlchemy's result processor for a column type, without a driver type code.

    Some drivers' numeric processors want the code of the value's type (psycopg); their values
    already arrive as Python numbers, so those columns need none.
    """
    try:
        return cast(Processor, type_.dialect_impl(dialect).result_processor(dialect, None))
    except TypeError:
        return None
