"""Engine, declarative base and the per-request database session."""

from __future__ import annotations

import inspect
import json
import sqlite3
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from datetime import UTC, datetime
from typing import Annotated, Any, cast

import fastapi.routing
from fastapi import Depends, Request, params
from fastapi.datastructures import DefaultPlaceholder
from fastapi.dependencies.utils import request_body_to_args, request_params_to_args
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute, serialize_response
from fastapi.utils import is_body_allowed_for_status_code
from pydantic_core import PydanticUndefined as Undefined
from sqlalchemy import DateTime, Engine, MetaData, Table, Uuid, create_engine, event
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator
from starlette.requests import ClientDisconnect
from starlette.responses import JSONResponse, Response

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
            url,
            connect_args={"check_same_thread": False, "timeout": busy_timeout_s},
            hide_parameters=True,  # errors and logs never quote the values (patient data)
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute(f"PRAGMA busy_timeout={int(busy_timeout_s * 1000)}")
            # A clinic's history grows to millions of readings: read pages through a memory
            # map and keep more of the indexes' pages cached, rather than a read call each.
            cur.execute("PRAGMA mmap_size=1073741824")
            cur.execute("PRAGMA cache_size=-32768")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            # On the driver's connection: through Core this one statement costs more than the
            # transaction's actual work on a short request.
            _begin_immediate(conn.connection.driver_connection, busy_timeout_s)

        return engine
    return create_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        hide_parameters=True,
    )


def _begin_immediate(driver: sqlite3.Connection, busy_timeout_s: float) -> None:
    """BEGIN IMMEDIATE, waiting up to the busy timeout for another process's write lock.

    SQLite's busy handler does the waiting, but SQLite skips it in some cases of contention
    between processes and answers "database is locked" at once; those are retried here until
    the timeout. A failure is raised as SQLAlchemy raises a failed statement's (an
    ``OperationalError``: a 503 to the client), not as the driver's own exception, which would
    reach the client as a 500.
    """
    deadline = time.monotonic() + busy_timeout_s
    while True:
        try:
            driver.execute("BEGIN IMMEDIATE")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise OperationalError("BEGIN IMMEDIATE", None, exc) from exc
            time.sleep(0.005)


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


_WITH_BODY = frozenset({"POST", "PUT", "PATCH"})
CLIENT_CLOSED_REQUEST = 499  # no one reads it; logs and metrics tell it from a server error


class CommittingRoute(APIRoute):
    """Commits the request's transaction when the endpoint returns, before the response is sent.

    So a 201 means committed. (A generator dependency with ``scope="function"`` does the same,
    but costs about 50 µs a request in FastAPI's exit-stack handling; this costs nothing.)

    Routes whose dependencies are all known here (the database session, and dependencies that
    carry a ``lean`` resolver: the caller's principal, ``Idempotency-Key``) skip FastAPI's
    generic dependency solver, which costs a fifth of a hot request. Parameters, bodies,
    validation errors and response serialization still go through FastAPI's own functions, so
    what a client sees, and the OpenAPI document, are the same either way.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = _lean_handler(self) or super().get_route_handler()

        async def commit_then_respond(request: Request) -> Response:
            try:
                if request.method in _WITH_BODY:
                    # The whole body before any dependency opens a transaction: a slow client
                    # must never hold the database (SQLite's write lock, a pooled connection)
                    # while its bytes trickle in. Starlette keeps it for whoever reads it next.
                    try:
                        await request.body()
                    except ClientDisconnect:  # gone before it finished sending: nothing to do
                        return Response(status_code=CLIENT_CLOSED_REQUEST)
                response = await handler(request)
                db: Session | None = getattr(request.state, "db", None)
                if db is not None and db.in_transaction():
                    db.commit()
                return response
            finally:
                if isinstance(handler, _Lean):
                    _close(request)

        return commit_then_respond


LeanResolver = Callable[[Request, Session], Awaitable[Any]]


def lean(resolver: LeanResolver) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Marks a dependency as resolvable without FastAPI's solver, by ``resolver(request, db)``.

    The resolver must do what the dependency does, parameters and errors included.
    """

    def mark(dependency: Callable[..., Any]) -> Callable[..., Any]:
        dependency.lean = resolver  # type: ignore[attr-defined]
        return dependency

    return mark


def _close(request: Request) -> None:
    db: Session | None = getattr(request.state, "db", None)
    if db is not None:
        db.close()


class _Lean:
    """The request handler of a route whose dependencies all resolve without the solver."""

    def __init__(self, route: APIRoute, resolvers: list[tuple[str, LeanResolver | None]]) -> None:
        dependant = route.dependant
        assert dependant.call is not None
        self.call = dependant.call
        self.resolvers = resolvers
        self.path_params = dependant.path_params
        self.query_params = dependant.query_params
        self.header_params = dependant.header_params
        self.body_params = dependant.body_params
        self.embed_body_fields = route._embed_body_fields
        self.request_param = dependant.request_param_name
        self.response_field = route.response_field
        self.status_code = route.status_code

    async def __call__(self, request: Request) -> Response:
        # Read before the transaction begins: on SQLite it holds the write lock, and no await
        # for the network may happen under it.
        raw = await request.body() if self.body_params else b""
        db: Session = request.app.state.sessionmaker()
        request.state.db = db
        values: dict[str, Any] = {}
        for name, resolve in self.resolvers:  # the caller first: 401/403 before any 422
            values[name] = db if resolve is None else await resolve(request, db)
        body = _json_body(request, raw) if self.body_params else Undefined
        if self.request_param is not None:
            values[self.request_param] = request
        errors: list[Any] = []
        for fields, received in (
            (self.path_params, request.path_params),
            (self.query_params, request.query_params),
            (self.header_params, request.headers),
        ):
            if fields:
                found, wrong = request_params_to_args(fields, received)
                values.update(found)
                errors += wrong
        if self.body_params:
            found, wrong = await request_body_to_args(
                self.body_params, body, embed_body_fields=self.embed_body_fields
            )
            values.update(found)
            errors += wrong
        if errors:
            raise RequestValidationError(errors, body=None if body is Undefined else body)
        result = await self.call(**values)
        if isinstance(result, Response):
            return result
        status = self.status_code or 200
        content = await serialize_response(
            field=self.response_field,
            response_content=result,
            dump_json=self.response_field is not None,
        )
        response = (
            Response(content, status_code=status, media_type="application/json")
            if self.response_field is not None
            else JSONResponse(content, status_code=status)
        )
        if not is_body_allowed_for_status_code(status):
            response.body = b""
        return response


def _json_body(request: Request, raw: bytes) -> Any:
    """The body as FastAPI reads it: JSON when declared so, raw bytes otherwise, or Undefined."""
    if not raw:
        return Undefined
    content_type = request.headers.get("content-type", "")
    main = content_type.partition(";")[0]
    kind, _, subtype = main.strip().lower().partition("/")
    if kind != "application" or not (subtype == "json" or subtype.endswith("+json")):
        return raw
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        error = {
            "type": "json_invalid",
            "loc": ("body", exc.pos),
            "msg": "JSON decode error",
            "input": {},
            "ctx": {"error": exc.msg},
        }
        raise RequestValidationError([error], body=exc.doc) from exc
    except (UnicodeDecodeError, RecursionError) as exc:
        # Not UTF-8, or nested deeper than any body of this API: the client's mistake.
        what = "not UTF-8" if isinstance(exc, UnicodeDecodeError) else "nested too deeply"
        error = {"type": "json_invalid", "loc": ("body",), "msg": f"JSON decode error: {what}"}
        raise RequestValidationError([error]) from None


def _lean_handler(route: APIRoute) -> _Lean | None:
    """A lean handler for ``route``, or None when it needs FastAPI's solver."""
    dependant = route.dependant
    # A router included with its own dependencies or prefix resolves through FastAPI.
    included = getattr(fastapi.routing, "_effective_route_context_var", None)
    context = included.get() if included is not None else None
    if (
        context is not None
        and getattr(context, "original_route", None) is route
        and (getattr(context, "dependencies", None) or context.path != route.path)
    ):
        return None
    if (
        not _is_coroutine_function(dependant.call)
        or dependant.cookie_params
        or dependant.response_param_name
        or dependant.background_tasks_param_name
        or dependant.websocket_param_name
        or dependant.http_connection_param_name
        or dependant.security_scopes_param_name
        or not isinstance(route.response_class, DefaultPlaceholder)
        or route.response_model_include is not None
        or route.response_model_exclude is not None
        or not route.response_model_by_alias
        or route.response_model_exclude_unset
        or route.response_model_exclude_defaults
        or route.response_model_exclude_none
        or any(isinstance(f.field_info, params.Form) for f in dependant.body_params)
    ):
        return None
    resolvers: list[tuple[str, LeanResolver | None]] = []
    for sub in dependant.dependencies:
        if sub.name is None:
            return None
        if sub.call is get_db:
            resolvers.append((sub.name, None))
            continue
        resolver: LeanResolver | None = getattr(sub.call, "lean", None)
        if resolver is None:
            return None
        resolvers.append((sub.name, resolver))
    return _Lean(route, resolvers)


def _is_coroutine_function(call: Any) -> bool:
    return inspect.iscoroutinefunction(call) and not inspect.isasyncgenfunction(call)
