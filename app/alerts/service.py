"""Alerts as the dashboards and the bedside use them: polling, acknowledging, resolving."""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from app.alerts import engine, lifecycle, store
from app.alerts.queries import find_alerts
from app.alerts.schemas import AlertPage
from app.audit import service as audit
from app.auth.deps import Principal
from app.db import table_of, utcnow
from app.errors import InvalidTransition, NotFound
from app.hotpath import Prepared
from app.infusions.models import Infusion
from app.infusions.service import load_infusion
from app.schemas import decode_cursor, encode_cursor, parse_sequence

_infusions = table_of(Infusion)
NEXT_CHECK = Prepared(
    select(func.min(_infusions.c.next_check_at).label("at")).where(
        _infusions.c.clinic_id == bindparam("clinic_id")
    )
)
_DUE = Prepared(
    select(_infusions.c.id).where(
        _infusions.c.clinic_id == bindparam("clinic_id"),
        _infusions.c.next_check_at <= bindparam("now"),
    )
)


def refresh_due(db: Session, principal: Principal, now: datetime) -> None:
    """Judge the time rules of the clinic's sessions whose deadline has passed (lazily, on read).

    Any server process may do it: the session row is locked and judged again under the lock.
    """
    clinic_id = principal.require_clinic()
    nearest = NEXT_CHECK.first(db, {"clinic_id": clinic_id})
    if nearest is None or nearest.at is None or nearest.at > now:
        return
    for row in _DUE.all(db, {"clinic_id": clinic_id, "now": now}):
        infusion = load_infusion(db, principal, row.id, lock=True)
        if infusion.next_check_at is not None and infusion.next_check_at <= now:
            engine.evaluate_time_rules(db, infusion, now)


def poll_tag(db: Session, principal: Principal, query: str) -> tuple[str, int]:
    """The ETag of a poll: it changes exactly when an alert of the clinic changes."""
    seq = store.current_seq(db, principal.require_clinic())
    return alerts_etag(principal.role, query, seq), seq


def alerts_etag(role: str, query: str, seq: int) -> str:
    digest = hashlib.sha256(f"{role}|{query}".encode()).hexdigest()[:16]
    return f'W/"alerts-{seq}-{digest}"'


def list_alerts(
    db: Session,
    principal: Principal,
    *,
    seq: int,
    status: str | None,
    severity: str | None,
    session_id: uuid.UUID | None,
    changed_after: str | None,
    cursor: str | None,
    limit: int,
) -> AlertPage:
    after = (
        _seq_of(cursor, "cursor")
        if cursor
        else _seq_of(changed_after, "changed_after")
        if changed_after
        else None
    )
    rows = find_alerts(
        db, principal.require_clinic(), status=status, severity=severity, session_id=session_id,
        after_seq=after, limit=limit + 1,
    )  # fmt: skip
    page = rows[:limit]
    if page:  # each session whose alerts the page showed
        audit.record_each(db, principal, "alert.list", "Session", (a["infusion_id"] for a in page))
    return AlertPage(
        items=[store.to_read(a) for a in page],
        next_cursor=encode_cursor(page[-1]["change_seq"]) if len(rows) > limit else None,
        changes_cursor=encode_cursor(seq),
    )


def _seq_of(cursor: str, name: str) -> int:
    (text,) = decode_cursor(cursor, 1)
    return parse_sequence(text, name)


def _load(db: Session, principal: Principal, alert_id: uuid.UUID) -> tuple[Any, dict[str, Any]]:
    alert = store.get(db, alert_id)
    if alert is None or alert["clinic_id"] != principal.clinic_id:
        raise NotFound("no such alert")
    infusion = load_infusion(db, principal, alert["infusion_id"], lock=True)
    return infusion, store.get(db, alert_id) or alert


def acknowledge(
    db: Session, principal: Principal, alert_id: uuid.UUID, note: str | None
) -> dict[str, Any]:
    """Someone has seen it. A latched alert that already cleared resolves at once."""
    _, alert = _load(db, principal, alert_id)
    if alert["status"] == "resolved":
        raise InvalidTransition("the alert is already resolved")
    if alert["status"] == "acknowledged":
        return alert  # a retry changes nothing
    now = utcnow()
    stored = store.save(
        db, alert, lifecycle.acknowledge(alert, now=now, by=principal.key_id, note=note), now
    )
    if stored["cleared_at"] is not None:
        # Latched: it cleared before anyone saw it. Two changes, so a stream shows both the
        # acknowledgement (alert.updated) and the resolution (alert.resolved).
        stored = store.save(db, stored, lifecycle.resolve(stored, now=now, note="cleared"), now)
    audit.record(db, principal, "alert.acknowledge", "Alert", alert_id)
    return stored


def resolve(db: Session, principal: Principal, alert_id: uuid.UUID, note: str) -> dict[str, Any]:
    _, alert = _load(db, principal, alert_id)
    if alert["status"] == "resolved":
        raise InvalidTransition("the alert is already resolved")
    now = utcnow()
    stored = store.save(
        db, alert, lifecycle.resolve(alert, now=now, note=note, by=principal.key_id), now
    )
    audit.record(db, principal, "alert.resolve", "Alert", alert_id)
    return stored


def read_alert(db: Session, principal: Principal, alert_id: uuid.UUID) -> dict[str, Any]:
    alert = store.get(db, alert_id)
    if alert is None or alert["clinic_id"] != principal.clinic_id:
        raise NotFound("no such alert")
    audit.record(db, principal, "alert.read", "Alert", alert_id)
    return alert
