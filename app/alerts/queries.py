"""Finding alerts: by evidence, by filters for the dashboards, and what changed since a cursor."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.alerts.models import ACTIVE_STATUSES, Alert, AlertEvidence
from app.alerts.store import as_dict
from app.db import table_of

_alerts = table_of(Alert)
_evidence = table_of(AlertEvidence)


def alerts_with_evidence(
    db: Session, *, reading_id: uuid.UUID | None = None, observation_id: uuid.UUID | None = None
) -> list[dict[str, Any]]:
    """Alerts this reading or observation was evidence of, oldest change first."""
    column = _evidence.c.reading_id if reading_id is not None else _evidence.c.observation_id
    ids = select(_evidence.c.alert_id).where(column == (reading_id or observation_id))
    query = select(_alerts).where(_alerts.c.id.in_(ids)).order_by(_alerts.c.change_seq)
    return [as_dict(row) for row in db.execute(query)]


def find_alerts(
    db: Session,
    clinic_id: uuid.UUID,
    *,
    status: str | None,
    severity: str | None,
    session_id: uuid.UUID | None,
    after_seq: int | None,
    limit: int,
) -> list[dict[str, Any]]:
    """The clinic's alerts in change order (an alert that changes moves to the end: none is skipped)."""
    query = select(_alerts).where(_alerts.c.clinic_id == clinic_id)
    if status == "active":
        query = query.where(_alerts.c.status.in_(ACTIVE_STATUSES))
    elif status is not None:
        query = query.where(_alerts.c.status == status)
    if severity is not None:
        query = query.where(_alerts.c.severity == severity)
    if session_id is not None:
        query = query.where(_alerts.c.infusion_id == session_id)
    if after_seq is not None:
        query = query.where(_alerts.c.change_seq > after_seq)
    return [as_dict(row) for row in db.execute(query.order_by(_alerts.c.change_seq).limit(limit))]


def session_alerts(db: Session, infusion_id: uuid.UUID) -> list[dict[str, Any]]:
    query = (
        select(_alerts)
        .where(_alerts.c.infusion_id == infusion_id)
        .order_by(_alerts.c.first_seen_at, _alerts.c.id)
    )
    return [as_dict(row) for row in db.execute(query)]
