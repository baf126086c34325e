"""Infusion sessions: creation, the baseline, and the transitions scheduled → … → aborted."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import bindparam, select, tuple_
from sqlalchemy.orm import Session

from app.alerts import engine
from app.audit import service as audit
from app.auth.deps import Principal
from app.auth.roles import Role
from app.db import table_of, utcnow
from app.errors import (
    DischargeBlocked,
    Forbidden,
    InvalidTransition,
    NotFound,
    ScreeningReviewRequired,
    ValidationFailed,
)
from app.hotpath import Prepared
from app.infusions.models import Infusion
from app.infusions.schemas import BaselineRead, InfusionCreate
from app.infusions.schemas import InfusionStatus as S
from app.patients.service import load_patient
from app.protocol import service as protocols
from app.readings.models import Reading
from app.schemas import format_utc

# Bedside clocks drift: a measured_at this far ahead of the server's clock is still accepted
# (PROTOCOL.md). A transition's `at` may not lie in the future at all (API.md).
CLOCK_SKEW = timedelta(minutes=2)
# How far back an offline tablet may date an entry, before the session's creation.
BACKDATE_LIMIT = timedelta(hours=24)
ACTIVE = (S.IN_PROGRESS, S.RECOVERY)


_infusions = table_of(Infusion)
_readings = table_of(Reading)
_LOAD = Prepared(select(_infusions).where(_infusions.c.id == bindparam("id")))
# Entries to one session are judged one transaction at a time (PostgreSQL; SQLite writes are serial).
_LOAD_LOCKED = Prepared(
    select(_infusions).where(_infusions.c.id == bindparam("id")).with_for_update()
)
_BASELINE = Prepared(
    select(
        _readings.c.id.label("reading_id"),
        _readings.c.measured_at,
        _readings.c.systolic,
        _readings.c.diastolic,
        _readings.c.heart_rate,
    )
    .where(
        _readings.c.infusion_id == bindparam("infusion_id"),
        _readings.c.status == "final",
        _readings.c.systolic.is_not(None),
        _readings.c.measured_at < bindparam("cutoff"),
    )
    .order_by(_readings.c.measured_at.desc(), _readings.c.id.desc())
    .limit(1)
)
# Far enough ahead to mean "no cutoff" on every backend.
_NO_CUTOFF = datetime(9999, 1, 1, tzinfo=UTC)


def load_infusion(
    db: Session, principal: Principal, infusion_id: uuid.UUID, *, lock: bool = False
) -> Infusion:
    """A read-only snapshot of the clinic's session, or 404 (another clinic's does not exist)."""
    row = (_LOAD_LOCKED if lock else _LOAD).first(db, {"id": infusion_id})
    if row is None or row.clinic_id != principal.clinic_id:
        raise NotFound("no such session")
    return cast(Infusion, row)  # a named tuple with the same attributes, read-only


def lock_infusion(db: Session, principal: Principal, infusion_id: uuid.UUID) -> Infusion:
    """The clinic's session as an ORM object, locked for a transition."""
    infusion = db.scalar(select(Infusion).where(Infusion.id == infusion_id).with_for_update())
    if infusion is None or infusion.clinic_id != principal.clinic_id:
        raise NotFound("no such session")
    return infusion


def baseline_of(
    db: Session, infusion: Infusion, before: datetime | None = None
) -> BaselineRead | None:
    """The latest valid reading with blood pressure measured before the start (or ``before``)."""
    cutoff = before or infusion.started_at or _NO_CUTOFF
    row = _BASELINE.first(db, {"infusion_id": infusion.id, "cutoff": cutoff})
    return None if row is None else BaselineRead.model_validate(row._asdict())


def create_infusion(db: Session, principal: Principal, data: InfusionCreate) -> Infusion:
    patient = load_patient(db, principal, data.patient_id)
    now = utcnow()
    infusion = Infusion(
        id=uuid.uuid4(),
        clinic_id=patient.clinic_id,
        patient_id=patient.id,
        status=S.SCHEDULED,
        route=data.route,
        planned_duration_min=data.planned_duration_min,
        dose_mg_per_kg=data.dose_mg_per_kg,
        protocol_version=protocols.current_version(db, patient.clinic_id),
        created_at=now,
        updated_at=now,
    )
    db.add(infusion)
    db.flush()
    audit.record(db, principal, "session.create", "Session", infusion.id)
    return infusion


def read_infusion(db: Session, principal: Principal, infusion_id: uuid.UUID) -> Infusion:
    infusion = load_infusion(db, principal, infusion_id)
    audit.record(db, principal, "session.read", "Session", infusion.id)
    return infusion


def list_infusions(
    db: Session,
    principal: Principal,
    *,
    status: str | None,
    patient_id: uuid.UUID | None,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[Infusion]:
    query = select(Infusion).where(Infusion.clinic_id == principal.require_clinic())
    if status == "active":
        query = query.where(Infusion.status.in_(ACTIVE))
    elif status is not None:
        query = query.where(Infusion.status == status)
    if patient_id is not None:
        query = query.where(Infusion.patient_id == patient_id)
    if after is not None:
        query = query.where(tuple_(Infusion.created_at, Infusion.id) > tuple_(*after))
    rows = list(db.scalars(query.order_by(Infusion.created_at, Infusion.id).limit(limit)))
    for infusion in rows:
        audit.record(db, principal, "session.read", "Session", infusion.id)
    return rows


def _last_transition_at(infusion: Infusion) -> datetime | None:
    times = [infusion.started_at, infusion.infusion_ended_at, infusion.discharged_at]
    known = [t for t in times if t is not None]
    return max(known) if known else None


def _transition_time(infusion: Infusion, at: datetime | None) -> datetime:
    """When the transition happened: now, or a given moment that is not in the future, not more
    than a day before the session was created, and not before its previous transition (which
    would put the session's history out of order: a conflict with its state, 409)."""
    now = utcnow()
    if at is None:
        at = now
    if at > now:
        raise ValidationFailed(
            "at lies in the future", [{"loc": ["body", "at"], "msg": "must not lie in the future"}]
        )
    earliest = infusion.created_at - BACKDATE_LIMIT
    if at < earliest:
        raise ValidationFailed(
            "at lies more than 24 hours before the session was created",
            [{"loc": ["body", "at"], "msg": f"must not be before {format_utc(earliest)}"}],
        )
    previous = _last_transition_at(infusion)
    if previous is not None and at < previous:
        raise InvalidTransition(
            f"at lies before the session's previous transition ({format_utc(previous)})"
        )
    return at


def _require_status(infusion: Infusion, action: str, *allowed: S) -> None:
    if infusion.status not in allowed:
        raise InvalidTransition(f"cannot {action} a session that is {infusion.status}")


def screening_reasons(
    db: Session, infusion: Infusion, baselines: list[BaselineRead], contraindications: list[str]
) -> list[str]:
    """Why the start needs a clinician's review (empty: it does not)."""
    limits = protocols.protocol(
        db, infusion.clinic_id, protocols.current_version(db, infusion.clinic_id)
    ).screening
    reasons = []
    if any(
        b.systolic > limits.systolic_max or b.diastolic > limits.diastolic_max for b in baselines
    ):
        reasons.append("baseline_bp_above_limit")
    reasons.extend(f"contraindication:{code}" for code in sorted(contraindications))
    return reasons


def start(
    db: Session,
    principal: Principal,
    infusion_id: uuid.UUID,
    at: datetime | None,
    override_reason: str | None,
) -> Infusion:
    if override_reason is not None and principal.role != Role.CLINICIAN:
        raise Forbidden("only a clinician may override the screening review")
    infusion = lock_infusion(db, principal, infusion_id)
    _require_status(infusion, "start", S.SCHEDULED)
    at = _transition_time(infusion, at)
    baseline = baseline_of(db, infusion, before=at)
    # What the session showed as its baseline until now. Measured ahead of the server's clock
    # (a tablet's clock may run up to two minutes fast), it lies after ``at`` but was taken
    # before the start: screened too, so no pressure shown as the baseline escapes review.
    shown = baseline_of(db, infusion)
    if baseline is None:
        detail = "a baseline reading with blood pressure is needed before the start"
        if shown is not None:
            detail += (
                f" (the latest is measured after the start, at {format_utc(shown.measured_at)})"
            )
        raise ScreeningReviewRequired(detail, ["no_baseline"])
    patient = load_patient(db, principal, infusion.patient_id)
    judged = [baseline]
    if shown is not None and shown != baseline and shown.measured_at > utcnow():
        judged.append(shown)  # measured ahead of the server's clock
    reasons = screening_reasons(db, infusion, judged, patient.contraindications)
    if reasons and override_reason is None:
        raise ScreeningReviewRequired(
            "the screening needs a clinician's review: " + ", ".join(reasons), reasons
        )
    if reasons and override_reason is not None:
        infusion.screening_override = _override(
            db, principal, infusion, "screening", override_reason, reasons
        )
    infusion.status = S.IN_PROGRESS
    infusion.started_at = at
    # The session keeps the protocol in force when it started, whatever changes later.
    infusion.protocol_version = protocols.current_version(db, infusion.clinic_id)
    _save(db, principal, infusion, "session.start")
    engine.judge_moved_readings(db, infusion, "intra", at, baseline, utcnow())
    engine.evaluate_time_rules(db, infusion, utcnow(), raising=False)
    return infusion


def end(db: Session, principal: Principal, infusion_id: uuid.UUID, at: datetime | None) -> Infusion:
    infusion = lock_infusion(db, principal, infusion_id)
    _require_status(infusion, "end", S.IN_PROGRESS)
    infusion.infusion_ended_at = _transition_time(infusion, at)
    infusion.status = S.RECOVERY
    _save(db, principal, infusion, "session.end")
    engine.judge_moved_readings(db, infusion, "post", infusion.infusion_ended_at, None, utcnow())
    engine.evaluate_time_rules(db, infusion, utcnow(), raising=False)  # overdue ends
    return infusion


def discharge(
    db: Session,
    principal: Principal,
    infusion_id: uuid.UUID,
    at: datetime | None,
    override_reason: str | None,
) -> Infusion:
    """recovery → discharged when the recovery checks pass at ``at``, or with a clinician's override."""
    from app.recovery.service import recovery  # recovery builds on this module

    if override_reason is not None and principal.role != Role.CLINICIAN:
        raise Forbidden("only a clinician may override the discharge checks")
    infusion = lock_infusion(db, principal, infusion_id)
    _require_status(infusion, "discharge", S.RECOVERY)
    at = _transition_time(infusion, at)
    blockers: list[str] = list(recovery(db, infusion, at).discharge_blockers)
    if blockers and override_reason is None:
        raise DischargeBlocked(
            "the patient is not ready for discharge: " + ", ".join(blockers), blockers
        )
    if blockers and override_reason is not None:
        infusion.discharge_override = _override(
            db, principal, infusion, "discharge", override_reason, blockers
        )
    infusion.discharged_at = at
    infusion.status = S.DISCHARGED
    _save(db, principal, infusion, "session.discharge")
    engine.resolve_all(db, infusion, "session discharged", utcnow())
    return infusion


def abort(
    db: Session, principal: Principal, infusion_id: uuid.UUID, at: datetime | None, reason: str
) -> Infusion:
    infusion = lock_infusion(db, principal, infusion_id)
    _require_status(infusion, "abort", S.SCHEDULED, S.IN_PROGRESS, S.RECOVERY)
    infusion.aborted_at = _transition_time(infusion, at)
    infusion.abort_reason = reason
    infusion.status = S.ABORTED
    _save(db, principal, infusion, "session.abort")
    engine.resolve_all(db, infusion, "session aborted", utcnow())
    return infusion


def _override(
    db: Session,
    principal: Principal,
    infusion: Infusion,
    gate: str,
    reason: str,
    reasons: list[str],
) -> dict[str, Any]:
    """A clinician's override of a gate, as recorded on the session and in the audit trail."""
    audit.record(db, principal, f"session.{gate}_override", "Session", infusion.id)
    return {
        "reason": reason,
        "reasons": reasons,
        "by": str(principal.key_id),
        "at": utcnow().isoformat(),
    }


def _save(db: Session, principal: Principal, infusion: Infusion, action: str) -> Infusion:
    infusion.updated_at = utcnow()
    db.flush()
    audit.record(db, principal, action, "Session", infusion.id)
    return infusion
