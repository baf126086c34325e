"""FHIR Observation create: a vital-signs Observation becomes a reading, by the v1 path."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit import service as audit
from app.auth.deps import Principal
from app.errors import NotFound, PreconditionFailed, ValidationFailed
from app.fhir import intake, mapping
from app.fhir.models import ObservationIdentifier
from app.fhir.params import Token, if_none_exist
from app.fhir.search import reading_identified
from app.fhir.service import reading_resource
from app.fhir.shape import parse_body
from app.infusions.service import load_infusion
from app.readings.models import Reading
from app.readings.service import record_readings


def create_observation(
    db: Session, principal: Principal, raw: bytes, condition: str | None
) -> tuple[int, dict[str, Any]]:
    """201 and the new resource; or, when ``If-None-Exist`` finds one, 200 and that one."""
    posted = intake.read_observation(parse_body(raw))
    wanted = if_none_exist(condition) if condition is not None else None
    try:
        infusion = load_infusion(db, principal, uuid.UUID(posted.encounter), lock=True)
    except (ValueError, NotFound):
        raise NotFound("no such Encounter") from None
    if posted.subject is not None and posted.subject.lower() != str(infusion.patient_id):
        msg = "does not match the Encounter's patient"
        raise ValidationFailed(
            f"Observation.subject {msg}",
            [{"loc": ["body", "subject"], "msg": msg, "expression": "Observation.subject",
              "code": "business-rule"}],
        )  # fmt: skip
    if wanted is not None:
        # Under the session's lock: a concurrent create of the same identifier waits, then finds it.
        found = _matching(db, principal.require_clinic(), wanted)
        if len(found) > 1:
            raise PreconditionFailed("If-None-Exist matches more than one Observation")
        if found:
            audit.record(db, principal, "fhir.observation.match", "Reading", found[0].id)
            return 200, reading_resource(db, found[0], mapping.reading_parts(found[0])[0].suffix)
    try:
        [recorded] = record_readings(db, principal, infusion.id, [posted.reading], batch=False)
    except ValidationFailed as exc:
        raise _as_fhir(exc) from None
    db.add_all(
        ObservationIdentifier(
            reading_id=recorded.id, system=system, value=value, clinic_id=infusion.clinic_id
        )
        for system, value in _kept_identifiers(posted.identifiers, wanted)
    )
    db.flush()
    audit.record(db, principal, "fhir.observation.create", "Reading", recorded.id)
    reading = db.get(Reading, recorded.id)
    assert reading is not None
    return 201, reading_resource(db, reading, mapping.reading_parts(reading)[0].suffix)


def _kept_identifiers(
    given: tuple[tuple[str, str], ...], wanted: Token | None
) -> list[tuple[str, str]]:
    """The body's identifiers, and the If-None-Exist one when the body lacks it: a retry of the
    same conditional create must find what the first one stored."""
    kept = list(given)
    if wanted is None or wanted.code is None:
        return kept
    if not any(v == wanted.code and wanted.system in (None, s) for s, v in kept):
        kept.append((wanted.system or "", wanted.code))
    return kept


def _matching(db: Session, clinic_id: uuid.UUID, token: Token) -> list[Reading]:
    """The clinic's readings a search by ``token`` finds: Vigil's own identifier of a reading
    (``urn:vigil:reading|<id>``) matches as well as one a client gave."""
    query = select(Reading).where(
        Reading.clinic_id == clinic_id, reading_identified(token, clinic_id)
    )
    return list(db.scalars(query.order_by(Reading.id)))


def _as_fhir(exc: ValidationFailed) -> ValidationFailed:
    """The bedside timing rules (measured_at) said of the FHIR element."""
    errors = [
        {**e, "expression": "Observation.effectiveDateTime", "code": "business-rule"}
        if e.get("loc", [None])[-1] == "measured_at"
        else e
        for e in exc.extra.get("errors", [])
    ]
    return ValidationFailed(exc.detail, errors)
