"""The Vigil application: create_app() builds it, the lifespan owns the database engine."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from app.alerts.conditional import ConditionalPolls, close_poll_connection
from app.alerts.router import router as alerts_router
from app.alerts.wakeup import Wakeups
from app.audit.router import router as audit_router
from app.auth.ratelimit import RateLimiter
from app.auth.router import router as auth_router
from app.board.router import router as board_router
from app.config import Settings, get_settings
from app.db import make_engine, make_sessionmaker
from app.errors import install_error_handlers, problem_openapi
from app.fhir.router import router as fhir_router
from app.infusions.router import router as infusions_router
from app.middleware import RequestContextMiddleware
from app.observations.router import router as observations_router
from app.ops.router import router as ops_router
from app.patients.router import router as patients_router
from app.protocol.router import router as protocol_router
from app.readings.router import router as readings_router
from app.recovery.router import router as recovery_router
from app.summary.router import router as summary_router

DESCRIPTION = """In-session monitoring for ketamine-infusion clinics: nurse tablets post vital signs
and side effects, Vigil checks them against the clinic's protocol, dashboards watch the alerts.

Every `/v1` route needs `Authorization: Bearer <api key>`. Errors are RFC 9457
`application/problem+json`."""


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(
            settings.database_url,
            busy_timeout_s=settings.sqlite_busy_timeout_s,
            pool_size=settings.pool_size,
        )
        app.state.engine = engine
        app.state.sessionmaker = make_sessionmaker(engine)
        app.state.wakeups = Wakeups(engine)
        yield
        close_poll_connection(app.state)
        await app.state.wakeups.close()
        engine.dispose()

    app = FastAPI(
        title="Vigil",
        version="1.0.0",
        summary="In-session monitoring API for ketamine-infusion clinics",
        description=DESCRIPTION,
        lifespan=lifespan,
        # A path is exactly as API.md writes it: `/v1/patients/` is a 404 problem, not a
        # redirect that a client posting a reading would not follow.
        redirect_slashes=False,
    )
    app.state.settings = settings
    app.state.rate_limiter = RateLimiter(settings.rate_limit_per_minute)
    install_error_handlers(app)
    # Routes are matched in order: the bedside hot paths come first. They join the app's own
    # router rather than through include_router, which in this FastAPI resolves each included
    # router again on every request; ours need nothing from inclusion (each router carries its
    # prefix, tags and route class itself), and the OpenAPI document is the same.
    for router in (
        readings_router,
        infusions_router,
        observations_router,
        alerts_router,
        board_router,
        recovery_router,
        summary_router,
        patients_router,
        protocol_router,
        auth_router,
        audit_router,
        fhir_router,
        ops_router,
    ):
        app.router.routes.extend(router.routes)
    app.add_middleware(ConditionalPolls)  # inside the request context: ids, metrics, logs
    app.add_middleware(RequestContextMiddleware, max_body_bytes=settings.max_body_bytes)
    _document_problems(app)
    return app


def create_served_app() -> FastAPI:
    """The app as ``vigil serve`` runs it in each server process.

    Once started, everything made so far (routes, schemas, metadata: over a hundred thousand
    objects) is moved out of the cyclic garbage collector's sight, so its full collections no
    longer walk them in the middle of requests (benchmarks/load.py, p99 under load: a session
    read from 105-135 ms to 55-65 ms, a reading post from 130-160 ms to 120-130 ms). Only for a
    long-lived server: a test process that builds many apps would keep each one's cycles.
    """
    app = create_app()
    started = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with started(app):
            gc.collect()
            gc.freeze()
            yield

    app.router.lifespan_context = lifespan
    return app


def _document_problems(app: FastAPI) -> None:
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = problem_openapi(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
