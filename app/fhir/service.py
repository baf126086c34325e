"""The FHIR R4 facade's reads, through the same tenancy and audit as the v1 API."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from app.audit import service as audit
from app.auth.deps import Principal
from app.errors import NotFound, ValidationFailed
from app.fhir import mapping
from app.infusions.models import Infusion
from app.infusions.service import load_infusion
from app.patients.models import Patient
from app.patients.service import load_patient
from app.readings.models import Reading
from app.schemas import decode_cursor, encode_cursor, parse_time, parse_uuid


def read_patient(db: Session, principal: Principal, patient_id: uuid.UUID) -> dict[str, Any]:
    patient = load_patient(db, principal, patient_id)
    audit.record(db, principal, "fhir.patient.read", "Patient", patient.id)
    return mapping.patient(patient)


def read_encounter(db: Session, principal: Principal, infusion_id: uuid.UUID) -> dict[str, Any]:
    infusion = load_infusion(db, principal, infusion_id)
    audit.record(db, principal, "fhir.encounter.read", "Session", infusion.id)
    return mapping.encounter(infusion)


def _reference_id(value: str | None, kind: str) -> uuid.UUID | None:
    if value is None:
        return None
    text = value.split("/", 1)[1] if value.startswith(f"{kind}/") else value
    try:
        return uuid.UUID(text)
    except ValueError:
        raise ValidationFailed(f"{kind.lower()} must reference {kind}/<id>") from None


def search_observations(
    db: Session,
    principal: Principal,
    *,
    encounter: str | None,
    patient: str | None,
    count: int,
    cursor: str | None,
    self_url: str,
    base: str,
) -> dict[str, Any]:
    """A searchset of vital-signs Observations, by encounter or patient, in a stable order."""
    encounter_id, patient_id = (
        _reference_id(encounter, "Encounter"),
        _reference_id(patient, "Patient"),
    )
    if encounter_id is None and patient_id is None:
        raise ValidationFailed("search Observations by encounter or by patient")
    condition = [Reading.clinic_id == principal.require_clinic()]
    if encounter_id is not None:
        infusion = db.get(Infusion, encounter_id)
        if infusion is None or infusion.clinic_id != principal.clinic_id:
            raise NotFound("no such Encounter")
        condition.append(Reading.infusion_id == encounter_id)
    if patient_id is not None:
        found = db.get(Patient, patient_id)
        if found is None or found.clinic_id != principal.clinic_id:
            raise NotFound("no such Patient")
        condition.append(
            Reading.infusion_id.in_(select(Infusion.id).where(Infusion.patient_id == patient_id))
        )
    total = db.scalar(
        select(
            func.count(Reading.heart_rate) + func.count(Reading.systolic) + func.count(Reading.spo2)
            + func.count(Reading.respiratory_rate) + func.count(Reading.temperature_c)
        ).where(*condition)
    )  # fmt: skip
    query = (
        select(Reading, Infusion.patient_id)
        .join(Infusion, Infusion.id == Reading.infusion_id)
        .where(*condition)
    )
    skip = 0
    if cursor:
        when, ident, skipped = decode_cursor(cursor, 3)
        at, reading_id = parse_time(when), parse_uuid(ident)
        skip = int(skipped) if skipped.isdigit() else 0
        query = query.where(
            or_(Reading.measured_at > at, and_(Reading.measured_at == at, Reading.id >= reading_id))
        )
    rows = db.execute(query.order_by(Reading.measured_at, Reading.id).limit(count + 1)).all()
    page: list[dict[str, Any]] = []
    next_cursor = None
    for index, (reading, owner) in enumerate(rows):
        resources = mapping.reading_observations(reading, owner)[skip if index == 0 else 0 :]
        room = count - len(page)
        if len(resources) > room:
            page.extend(resources[:room])
            done = (skip if index == 0 else 0) + room
            next_cursor = encode_cursor(reading.measured_at, reading.id, done)
            break
        page.extend(resources)
        if len(page) == count and index + 1 < len(rows):
            following = rows[index + 1][0]
            next_cursor = encode_cursor(following.measured_at, following.id, 0)
            break
    audit.record(
        db, principal, "fhir.observation.search", "Observation", encounter_id or patient_id
    )
    next_url = f"{base}/Observation?{_with_cursor(self_url, next_cursor)}" if next_cursor else None
    return mapping.bundle(page, int(total or 0), self_url, next_url, base)


def _with_cursor(self_url: str, cursor: str) -> str:
    query = self_url.split("?", 1)[1] if "?" in self_url else ""
    kept = [p for p in query.split("&") if p and not p.startswith("_cursor=")]
    return "&".join([*kept, f"_cursor={cursor}"])
