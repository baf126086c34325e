"""The live board: every patient in the chair or recovering, at a glance."""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, func, or_, select
from sqlalchemy.orm import Session

from app.alerts.engine import news2_of, protocol_of
from app.alerts.models import ACTIVE_STATUSES, Alert
from app.alerts.rules import SEVERITY_RANK
from app.audit import service as audit
from app.auth.deps import Principal
from app.board.schemas import AlertCounts, Board, BoardPatient, BoardRow, LatestReading
from app.db import table_of
from app.hotpath import Prepared
from app.infusions.models import Infusion
from app.infusions.schemas import InfusionStatus as S
from app.patients.models import Patient
from app.readings.models import Reading
from app.readings.service import to_read
from app.recovery.service import recovery
from app.schemas import etag_matches

_infusions, _patients, _readings, _alerts = (
    table_of(m) for m in (Infusion, Patient, Reading, Alert)
)
_ACTIVE_SESSIONS = Prepared(
    select(_infusions, _patients.c.display_name, _patients.c.mrn)
    .join(_patients, _patients.c.id == _infusions.c.patient_id)
    .where(
        _infusions.c.clinic_id == bindparam("clinic_id"),
        or_(_infusions.c.status == S.IN_PROGRESS.value, _infusions.c.status == S.RECOVERY.value),
    )
    .order_by(_infusions.c.started_at, _infusions.c.id)
)
_LATEST_READING = Prepared(
    select(_readings)
    .where(_readings.c.infusion_id == bindparam("infusion_id"), _readings.c.status == "final")
    .order_by(_readings.c.measured_at.desc(), _readings.c.id.desc())
    .limit(1)
)
_ALERT_COUNTS = Prepared(
    select(_alerts.c.infusion_id, _alerts.c.severity, func.count().label("n"))
    .where(
        _alerts.c.clinic_id == bindparam("clinic_id"),
        or_(*(_alerts.c.status == s for s in ACTIVE_STATUSES)),
    )
    .group_by(_alerts.c.infusion_id, _alerts.c.severity)
)


def board(db: Session, principal: Principal, now: datetime) -> Board:
    clinic_id = principal.require_clinic()
    counts: dict[uuid.UUID, dict[str, int]] = {}
    for row in _ALERT_COUNTS.all(db, {"clinic_id": clinic_id}):
        counts.setdefault(row.infusion_id, {})[row.severity] = row.n
    sessions = _ACTIVE_SESSIONS.all(db, {"clinic_id": clinic_id})
    return Board(items=[_row(db, s, counts.get(s.id, {}), now) for s in sessions], generated_at=now)


def board_unless_unchanged(
    db: Session, principal: Principal, now: datetime, if_none_match: str | None
) -> tuple[str, Board | None]:
    """The board's ETag, and the board itself unless the client already holds that version."""
    current = board(db, principal, now)
    # The ETag covers the rows, not generated_at: it changes only when the data does.
    rows = current.model_dump_json(exclude={"generated_at"})
    etag = f'W/"board-{hashlib.sha256(rows.encode()).hexdigest()[:24]}"'
    if if_none_match is not None and etag_matches(if_none_match, etag):
        return etag, None
    audit.record_each(db, principal, "board.read", "Session", (r.session_id for r in current.items))
    return etag, current


def _row(db: Session, session: Any, counts: dict[str, int], now: datetime) -> BoardRow:
    in_chair = session.status == S.IN_PROGRESS
    latest = _LATEST_READING.first(db, {"infusion_id": session.id})
    latest_read = None
    if latest is not None:
        latest_read = LatestReading.model_validate(
            {
                **to_read(session, latest._asdict()).model_dump(),
                "news2": news2_of(db, session, latest).as_dict(),
            }
        )
    highest = max(counts, key=lambda s: SEVERITY_RANK[s], default=None)
    # In the chair the infusion has not ended: no recovery to judge (nor its blockers).
    state = None if in_chair else recovery(db, session, now)
    return BoardRow(
        session_id=session.id,
        patient=BoardPatient(
            id=session.patient_id, display_name=session.display_name, mrn=session.mrn
        ),
        status=session.status,
        phase="intra" if in_chair else "post",
        phase_started_at=session.started_at if in_chair else session.infusion_ended_at,
        latest_reading=latest_read,
        alerts=AlertCounts(
            high=counts.get("high", 0),
            medium=counts.get("medium", 0),
            low=counts.get("low", 0),
            highest=highest,
        ),
        recovery_status="infusion_not_ended" if state is None else state.status,
        vitals_due_at=_vitals_due(db, session, latest),
        next_assessment_due_at=None if state is None else state.next_assessment_due_at,
    )


def _vitals_due(db: Session, session: Any, latest: Any | None) -> datetime | None:
    """When the next set of vitals is due: before vitals.overdue would first fire."""
    first_limit = protocol_of(db, session).thresholds["vitals.overdue"].limits()[0][1]
    clock = session.started_at if session.status == S.IN_PROGRESS else session.infusion_ended_at
    if latest is not None and clock is not None:
        clock = max(clock, latest.measured_at)
    return clock + timedelta(minutes=first_limit) if clock is not None else None
