"""Reading and writing alerts: every change numbered per clinic, logged as an event."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, or_, select, update
from sqlalchemy.orm import Session

from app.alerts import wakeup
from app.alerts.lifecycle import event_kind
from app.alerts.models import ACTIVE_STATUSES, Alert, AlertEvent, AlertEvidence, ChangeCounter
from app.alerts.schemas import AlertRead
from app.db import table_of
from app.hotpath import Prepared

_alerts = table_of(Alert)
_counters = table_of(ChangeCounter)
_evidence = table_of(AlertEvidence)
_MUTABLE = [
    c.name
    for c in _alerts.columns
    if c.name not in ("id", "clinic_id", "infusion_id", "patient_id", "rule", "created_at")
]

ACTIVE_OF_SESSION = Prepared(
    select(_alerts).where(
        _alerts.c.infusion_id == bindparam("infusion_id"),
        or_(*(_alerts.c.status == s for s in ACTIVE_STATUSES)),  # IN (...) would need expanding
    )
)
_BY_ID = Prepared(select(_alerts).where(_alerts.c.id == bindparam("alert_id")))
_INSERT = Prepared.insert(_alerts)
_UPDATE = Prepared(
    update(_alerts)
    .where(_alerts.c.id == bindparam("alert_id"))
    .values({n: bindparam(f"v_{n}") for n in _MUTABLE})
)
_BUMP = Prepared(
    update(_counters)
    .where(_counters.c.clinic_id == bindparam("clinic_id"))
    .values(alert_seq=_counters.c.alert_seq + 1)
)
SEQ = Prepared(select(_counters.c.alert_seq).where(_counters.c.clinic_id == bindparam("clinic_id")))
_INSERT_EVENT = Prepared.insert(table_of(AlertEvent))
_INSERT_EVIDENCE = Prepared.insert(_evidence, skip=["id"])


def as_dict(row: Any) -> dict[str, Any]:
    return dict(row._asdict())


def to_read(alert: dict[str, Any]) -> AlertRead:
    return AlertRead.model_validate({**alert, "session_id": alert["infusion_id"]})


def active_alerts(db: Session, infusion_id: uuid.UUID) -> dict[str, dict[str, Any]]:
    """The session's open or acknowledged alerts, by rule."""
    return {
        row.rule: as_dict(row) for row in ACTIVE_OF_SESSION.all(db, {"infusion_id": infusion_id})
    }


def get(db: Session, alert_id: uuid.UUID) -> dict[str, Any] | None:
    row = _BY_ID.first(db, {"alert_id": alert_id})
    return as_dict(row) if row is not None else None


def current_seq(db: Session, clinic_id: uuid.UUID) -> int:
    row = SEQ.first(db, {"clinic_id": clinic_id})
    return int(row.alert_seq) if row is not None else 0


def save(
    db: Session, before: dict[str, Any] | None, after: dict[str, Any], now: datetime
) -> dict[str, Any]:
    """Store a change: take the clinic's next change number (locking its counter until commit)."""
    _BUMP.execute(db, {"clinic_id": after["clinic_id"]})
    seq = current_seq(db, after["clinic_id"])
    after = {**after, "change_seq": seq, "updated_at": now}
    if before is None:
        _INSERT.execute(db, after)
    else:
        _UPDATE.execute(db, {"alert_id": after["id"], **{f"v_{n}": after[n] for n in _MUTABLE}})
    read = to_read(after)
    _INSERT_EVENT.execute(
        db,
        {
            "clinic_id": after["clinic_id"],
            "seq": seq,
            "alert_id": after["id"],
            "kind": event_kind(before, after),
            "at": now,
            "payload": read.model_dump(mode="json"),
        },
    )
    wakeup.notify(db, after["clinic_id"])
    return after


def add_evidence(
    db: Session,
    alert_id: uuid.UUID,
    *,
    reading_id: uuid.UUID | None = None,
    observation_id: uuid.UUID | None = None,
) -> None:
    _INSERT_EVIDENCE.execute(
        db, {"alert_id": alert_id, "reading_id": reading_id, "observation_id": observation_id}
    )
