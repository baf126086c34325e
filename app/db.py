"""Engine, declarative base and the per-request database session."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Coroutine
from datetime import UTC, datetime
from typing import Annotated, Any, cast

from fastapi import Depends, Request
from fastapi.routing import APIRoute
from sqlalchemy import DateTime, Engine, MetaData, Table, Uuid, create_engine, event
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator
from starlette.responses import Response

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware datetimes stored as UTC on every backend (SQLite keeps no offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime(), uuid.UUID: Uuid()}


def table_of(model: type[Base]) -> Table:
    """The Core table of a model, for the statements on hot paths that skip the unit of work."""
    return cast(Table, model.__table__)


def utcnow() -> datetime:
    return datetime.now(UTC)


# SQLite defers taking the write lock to the first write, and a deferred transaction that read
# before another process committed then fails at once instead of waiting. Reads write too
# (audit entries, time-based alerts judged on read), so every transaction opens with
# BEGIN IMMEDIATE and queues on busy_timeout instead.


def make_engine(url: str, *, busy_timeout_s: float = 10.0, pool_size: int = 10) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": busy_timeout_s}
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute(f"PRAGMA busy_timeout={int(busy_timeout_s * 1000)}")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    return create_engine(url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False, autoflush=False)


async def get_db(request: Request) -> AsyncIterator[Session]:
    """The request's one transaction; ``CommittingRoute`` commits it before the response.

    The database work of a request is short and synchronous; it runs on the event loop rather
    than paying for a threadpool hop on every call (scale out with several workers).
    """
    db: Session = request.app.state.sessionmaker()
    request.state.db = db
    try:
        yield db
    finally:
        db.close()  # rolls back whatever was not committed (an error was raised)


SessionDep = Annotated[Session, Depends(get_db)]


class CommittingRoute(APIRoute):
    """Commits the request's transaction when the endpoint returns, before the response is sent.

    So a 201 means committed. (A generator dependency with ``scope="function"`` does the same,
    but costs about 50 µs a request in FastAPI's exit-stack handling; this costs nothing.)
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def commit_then_respond(request: Request) -> Response:
            response = await handler(request)
            db: Session | None = getattr(request.state, "db", None)
            if db is not None and db.in_transaction():
                db.commit()
            return response

        return commit_then_respond
