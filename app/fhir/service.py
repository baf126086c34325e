"""The FHIR R4 facade's reads, through the same tenancy and audit as the v1 API."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.alerts.models import AlertEvidence
from app.alerts.queries import session_alerts
from app.audit import service as audit
from app.auth.deps import Principal
from app.errors import NotFound
from app.fhir import mapping
from app.fhir.codes import rule_parts
from app.fhir.search import client_identifiers, observation_key, reading_key
from app.infusions.models import Infusion
from app.infusions.service import load_infusion
from app.observations.models import Observation
from app.patients.models import Patient
from app.patients.service import load_patient
from app.readings.models import Reading

# Observation ids: a reading's part (or panel) is "<reading id>-<part>", a side effect its own id.
_OBSERVATION_ID = re.compile(
    r"^(?P<id>[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})"
    r"(?:-(?P<part>[a-z0-9]+))?$"
)


def fhir_uuid(resource_id: str, kind: str) -> uuid.UUID:
    """Vigil's ids are UUIDs: any other FHIR id names nothing here."""
    try:
        return uuid.UUID(resource_id)
    except ValueError:
        raise NotFound(f"no such {kind}") from None


def read_patient(db: Session, principal: Principal, patient_id: str) -> dict[str, Any]:
    patient = load_patient(db, principal, fhir_uuid(patient_id, "Patient"))
    audit.record(db, principal, "fhir.patient.read", "Patient", patient.id)
    return mapping.patient(patient)


def read_encounter(db: Session, principal: Principal, infusion_id: str) -> dict[str, Any]:
    infusion = load_infusion(db, principal, fhir_uuid(infusion_id, "Encounter"))
    audit.record(db, principal, "fhir.encounter.read", "Session", infusion.id)
    return mapping.encounter(infusion)


def reading_resource(db: Session, reading: Reading, suffix: str) -> dict[str, Any]:
    """One part (or the panel) of a stored reading, with the identifiers its client gave it."""
    patient_id = _patient_of(db, reading.infusion_id)
    identifiers = client_identifiers(db, [reading.id]).get(reading.id, [])
    return mapping.reading_resource(reading, suffix, patient_id, identifiers)


def read_observation(db: Session, principal: Principal, resource_id: str) -> dict[str, Any]:
    match = _OBSERVATION_ID.match(resource_id)
    if match is None:
        raise NotFound("no such Observation")
    entry_id, suffix = uuid.UUID(match["id"]), match["part"]
    if suffix is not None:
        reading = db.get(Reading, entry_id)
        if (
            reading is None
            or reading.clinic_id != principal.clinic_id
            or suffix not in mapping.reading_suffixes(reading)
        ):
            raise NotFound("no such Observation")
        audit.record(db, principal, "fhir.observation.read", "Reading", reading.id)
        return reading_resource(db, reading, suffix)
    obs = db.get(Observation, entry_id)
    if obs is None or obs.clinic_id != principal.clinic_id:
        raise NotFound("no such Observation")
    audit.record(db, principal, "fhir.observation.read", "Observation", obs.id)
    patient_id = _patient_of(db, obs.infusion_id)
    return mapping.side_effect_observation(obs, patient_id)


def everything(
    db: Session, principal: Principal, infusion_id: str, *, base: str, self_url: str
) -> dict[str, Any]:
    """Encounter/$everything: the Patient, the Encounter, every Observation (entered-in-error
    ones too, so marked) and the session's alerts as DetectedIssue."""
    infusion = load_infusion(db, principal, fhir_uuid(infusion_id, "Encounter"))
    patient = db.get(Patient, infusion.patient_id)
    assert patient is not None
    readings = list(db.scalars(select(Reading).where(Reading.infusion_id == infusion.id)))
    observations = list(
        db.scalars(select(Observation).where(Observation.infusion_id == infusion.id))
    )
    identifiers = client_identifiers(db, [r.id for r in readings])
    keyed = [
        (reading_key(r, suffix), mapping.reading_resource(
            r, suffix, patient.id, identifiers.get(r.id, [])))
        for r in readings
        for suffix in mapping.reading_suffixes(r)
    ] + [(observation_key(o), mapping.side_effect_observation(o, patient.id)) for o in observations]  # fmt: skip
    keyed.sort(key=lambda item: item[0])
    alerts = session_alerts(db, infusion.id)
    evidence = _evidence(db, [a["id"] for a in alerts])
    by_id = {r.id: r for r in readings}
    voided = {r.id for r in readings if r.status == "entered-in-error"} | {
        o.id for o in observations if o.status == "entered-in-error"
    }
    issues = [
        mapping.detected_issue(a, implicated(a, evidence.get(a["id"], []), by_id, voided))
        for a in alerts
    ]
    audit.record(db, principal, "fhir.encounter.everything", "Session", infusion.id)
    resources = [
        mapping.patient(patient),
        mapping.encounter(infusion),
        *(resource for _, resource in keyed),
        *issues,
    ]
    return mapping.bundle(resources, base=base, self_url=self_url)


Evidence = list[tuple[uuid.UUID | None, uuid.UUID | None]]  # (reading id, observation id)


def _evidence(db: Session, alert_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, Evidence]:
    """Each alert's evidence, in the order it arrived."""
    ids = list(alert_ids)
    found: dict[uuid.UUID, Evidence] = {}
    if not ids:
        return found
    query = select(AlertEvidence).where(AlertEvidence.alert_id.in_(ids)).order_by(AlertEvidence.id)
    for row in db.scalars(query):
        found.setdefault(row.alert_id, []).append((row.reading_id, row.observation_id))
    return found


def implicated(
    alert: dict[str, Any],
    evidence: Evidence,
    readings: dict[uuid.UUID, Any],
    voided: set[uuid.UUID],
) -> list[str]:
    """The Observations that raised the alert: of each reading, the parts its rule judges.

    Entries since entered in error no longer stand behind the alert and are left out, unless
    all were (the alert then ended for that reason, and names what it was raised on).
    """
    pairs = [*evidence, (alert["reading_id"], alert["observation_id"])]
    standing = [pair for pair in pairs if (pair[0] or pair[1]) not in voided]
    pairs = standing or pairs
    out: list[str] = []
    for reading_id, observation_id in pairs:
        if observation_id is not None:
            ids = [str(observation_id)]
        elif reading_id is not None and reading_id in readings:
            ids = [
                f"{reading_id}-{part.suffix}"
                for part in mapping.reading_parts(readings[reading_id], rule_parts(alert["rule"]))
            ]
        else:
            ids = []
        out.extend(i for i in ids if i not in out)
    return out


def _patient_of(db: Session, infusion_id: uuid.UUID) -> uuid.UUID | None:
    return db.scalar(select(Infusion.patient_id).where(Infusion.id == infusion_id))
