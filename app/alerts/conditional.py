"""Unchanged dashboard polls answered before the framework runs.

Dashboards poll ``GET /v1/alerts`` every few seconds with ``If-None-Match``, and almost every
answer is a 304. This middleware gives that answer from one statement of three indexed look-ups
(the key, the clinic's next time-rule check, its alert change number) on a connection of its
own, without a transaction, the router or the dependency machinery.

It answers only the unremarkable case: a known, unexpired key of a role that may poll, within
its rate limit and already recorded as used this minute, a clinic with no time rule due, and an
``If-None-Match`` that holds the current ETag. Anything else, and any database error, goes the
normal way, which answers it fully (401/403/429 with their audit entries, time rules judged,
the key's use recorded, a 200 with the page).
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from sqlalchemy import func, select
from starlette.types import ASGIApp, Receive, Scope, Send

from app.alerts.models import ChangeCounter
from app.alerts.service import alerts_etag
from app.auth.deps import KEY_BY_HASH, KEY_COLUMNS, bearer_digest, refusal, used_this_minute
from app.auth.models import ApiKey
from app.auth.ratelimit import RateLimiter
from app.auth.roles import READ_SESSIONS, Role
from app.db import table_of, utcnow
from app.hotpath import Prepared
from app.infusions.models import Infusion
from app.schemas import etag_matches

log = logging.getLogger("vigil.alerts")
PATH = "/v1/alerts"
_POLLERS = frozenset(role.value for role in READ_SESSIONS)

_infusions, _counters = table_of(Infusion), table_of(ChangeCounter)
_clinic = table_of(ApiKey).c.clinic_id
# The key, its clinic's next time-rule check and its alert change number, in one round trip.
_POLL_STATE = Prepared(
    select(
        *KEY_COLUMNS,
        select(func.min(_infusions.c.next_check_at))
        .where(_infusions.c.clinic_id == _clinic)
        .scalar_subquery()
        .label("next_check_at"),
        select(_counters.c.alert_seq)
        .where(_counters.c.clinic_id == _clinic)
        .scalar_subquery()
        .label("alert_seq"),
    ).where(*KEY_BY_HASH)
)


class ConditionalPolls:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._route: Any = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == PATH and scope["method"] == "GET":
            etag = self._unchanged(scope)
            if etag is not None:
                if self._route is None:
                    self._route = _route_of(scope["app"])
                scope["route"] = self._route  # for the request metrics and log line
                await send(
                    {"type": "http.response.start", "status": 304,
                     "headers": [(b"etag", etag.encode())]}
                )  # fmt: skip
                await send({"type": "http.response.body", "body": b""})
                return
        await self.app(scope, receive, send)

    def _unchanged(self, scope: Scope) -> str | None:
        """The current ETag if the request holds it and may be answered here, else None."""
        headers = dict(scope["headers"])
        tags = headers.get(b"if-none-match")
        digest = bearer_digest(headers.get(b"authorization", b"").decode("latin-1"))
        if tags is None or digest is None:
            return None
        state = scope["app"].state
        try:
            dialect, connection = _connect(state)
            key = _POLL_STATE.first_on(dialect, connection, {"key_hash": digest})
        except Exception as exc:  # the normal way will answer, or report the failure
            log.warning("conditional poll fell back: %s", type(exc).__name__)
            close_poll_connection(state)
            return None
        now = utcnow()
        if (
            refusal(key, digest, now) is not None
            or key.role not in _POLLERS
            or key.clinic_id is None
            or not used_this_minute(key, now)
            or (key.next_check_at is not None and key.next_check_at <= now)  # rules to judge
        ):
            return None
        query = scope.get("query_string", b"").decode("latin-1")
        etag = alerts_etag(Role(key.role), query, key.alert_seq or 0)
        if not etag_matches(tags.decode("latin-1"), etag):
            return None
        limiter: RateLimiter = state.rate_limiter
        if limiter.take(key.id) is not None:
            return None  # the normal way answers 429
        return etag


def _connect(state: Any) -> tuple[Any, Any]:
    """The process's connection for polls: reads only, each statement its own snapshot.

    Kept on the app's state, where the lifespan closes it (``close_poll_connection``).
    """
    fairy = getattr(state, "poll_connection", None)
    if fairy is None:
        fairy = state.engine.raw_connection()
        if state.engine.dialect.name == "postgresql":
            fairy.driver_connection.autocommit = True  # never idle in a transaction
        # SQLite: the engine's connections already run without an implicit BEGIN.
        state.poll_connection = fairy
    return state.engine.dialect, fairy.driver_connection


def close_poll_connection(state: Any) -> None:
    """Close (never return to the pool: it is in autocommit) the connection for polls."""
    fairy = getattr(state, "poll_connection", None)
    if fairy is not None:
        state.poll_connection = None
        with contextlib.suppress(Exception):
            fairy.invalidate()


def _route_of(app: Any) -> Any:
    for route in app.router.routes:
        if getattr(route, "path", None) == PATH and "GET" in getattr(route, "methods", ()):
            return route
    return None
