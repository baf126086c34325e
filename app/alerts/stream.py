"""Server-Sent Events: one event per alert change, resumable with Last-Event-ID.

The database is the source of truth: each subscriber follows the clinic's numbered alert
changes, so a change committed by any server process reaches subscribers of every process, and
a reconnect from the last id it saw misses nothing. Subscribers look when woken (``wakeup.py``:
PostgreSQL notifications) or, failing that, every half second.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi.sse import ServerSentEvent
from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from app.alerts import store
from app.alerts.models import AlertEvent
from app.alerts.service import refresh_due
from app.alerts.wakeup import Wakeups
from app.audit import service as audit
from app.auth.deps import Principal, still_valid
from app.db import table_of, utcnow
from app.errors import ValidationFailed
from app.hotpath import Prepared
from app.schemas import decode_cursor, encode_cursor, parse_sequence

_events = table_of(AlertEvent)
_AFTER = Prepared(
    select(_events.c.seq, _events.c.kind, _events.c.payload)
    .where(_events.c.clinic_id == bindparam("clinic_id"), _events.c.seq > bindparam("after"))
    .order_by(_events.c.seq)
    .limit(200)
)
# How often a subscriber judges time-based rules.
TIME_RULES_SECONDS = 5.0


def parse_last_event_id(value: str | None) -> int | None:
    """The change number a client saw last (the ids this stream sends), if it sent one."""
    if not value:
        return None
    try:
        (text,) = decode_cursor(value.strip(), 1)
        return parse_sequence(text)
    except ValidationFailed:
        return None


async def alert_events(
    sessionmaker: Callable[[], Session],
    wakeups: Wakeups,
    principal: Principal,
    after: int | None,
    is_disconnected: Callable[[], Any],
) -> AsyncIterator[ServerSentEvent]:
    clinic_id = principal.require_clinic()
    with wakeups.subscribe(clinic_id) as woken:
        if after is None:  # without Last-Event-ID the stream starts from now
            with sessionmaker() as db:
                after = store.current_seq(db, clinic_id)
        next_time_rules = 0.0
        while not await is_disconnected():
            with sessionmaker() as db:
                now = utcnow()
                if not still_valid(db, principal, now):
                    return  # revoked or expired: the client's reconnect then gets its 401
                if time.monotonic() >= next_time_rules:
                    refresh_due(db, principal, now)
                    next_time_rules = time.monotonic() + TIME_RULES_SECONDS
                rows = _AFTER.all(db, {"clinic_id": clinic_id, "after": after})
                # What the stream shows is a read of those sessions' data, logged as such.
                sessions = {uuid.UUID(row.payload["session_id"]) for row in rows}
                if sessions:
                    audit.record_each(db, principal, "alert.stream", "Session", sessions)
                db.commit()
            for row in rows:
                after = row.seq
                yield ServerSentEvent(data=row.payload, event=row.kind, id=encode_cursor(row.seq))
            if not rows:
                await wakeups.wait(woken)
