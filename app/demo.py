"""A demo clinic: a key for every role and simulated sessions in every state.

The sessions go through the same services as the API, with bedside times relative to now, so
NEWS2, alerts and recovery are judged exactly as they would be for a clinic's tablets. The
tablets here sync late (a whole session at once): entries first, then the transitions dated
back, so no ``vitals.overdue`` alert stands for the delay of the sync itself.
Each run creates a new clinic with the same patients and new keys; nothing existing changes.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from pydantic import TypeAdapter
from sqlalchemy.orm import Session

from app.auth.deps import Principal
from app.auth.roles import Role
from app.auth.service import create_clinic, create_key
from app.db import utcnow
from app.infusions import service as infusions
from app.infusions.schemas import InfusionCreate, Route
from app.observations.schemas import (
    DissociationCreate,
    ObservationCreate,
    SedationCreate,
    SymptomCreate,
)
from app.observations.service import record_observation
from app.patients.schemas import PatientCreate
from app.patients.service import create_patient
from app.readings.schemas import Consciousness, ReadingCreate
from app.readings.service import record_readings

CLINIC_NAME = "Vigil demo clinic"


@dataclass(frozen=True)
class Vitals:
    """A full set of vitals ``minute`` minutes from now (negative: in the past)."""

    minute: int
    heart_rate: int
    systolic: int
    diastolic: int
    spo2: int
    respiratory_rate: int
    temperature_c: float | None = None


@dataclass(frozen=True)
class Assessment:
    """An observation: a symptom or dissociation ``severity``, a sedation ``moaas``."""

    minute: int
    kind: str
    severity: int | None = None
    moaas: int | None = None
    cadss: int | None = None


@dataclass(frozen=True)
class Start:
    minute: int
    override_reason: str | None = None  # given by the clinician when screening needs review


@dataclass(frozen=True)
class End:
    minute: int


@dataclass(frozen=True)
class Discharge:
    minute: int


Step = Vitals | Assessment | Start | End | Discharge


@dataclass(frozen=True)
class Scenario:
    patient: PatientCreate
    session: dict[str, object]  # InfusionCreate without the patient
    steps: tuple[Step, ...]  # in time order


def _patient(mrn: str, name: str, birth_year: int) -> PatientCreate:
    return PatientCreate(mrn=mrn, display_name=name, birth_year=birth_year)


_IV = {"route": Route.IV, "planned_duration_min": 40, "dose_mg_per_kg": 0.5}

SCENARIOS: tuple[Scenario, ...] = (
    # Pre: baseline taken, waiting in the chair for intranasal esketamine.
    Scenario(
        _patient("DEMO-1001", "Jordan Blake", 1986),
        {"route": Route.INTRANASAL},
        (Vitals(-6, 72, 126, 80, 98, 14, 36.6),),
    ),
    # Intra, uneventful: a small rise in pressure, mild dissociation.
    Scenario(
        _patient("DEMO-1002", "Sam Okafor", 1979),
        _IV,
        (
            Vitals(-33, 68, 118, 76, 99, 14, 36.8),
            Start(-28),
            Vitals(-23, 74, 126, 80, 98, 15),
            Assessment(-18, "dissociation", severity=1, cadss=14),
            Vitals(-13, 78, 132, 84, 97, 14),
            Assessment(-8, "sedation", moaas=4),
            Vitals(-4, 80, 134, 85, 97, 14),
        ),
    ),
    # Intra, hypertensive: baseline above 140/90 needs the clinician's override; the pressure
    # peaks about 20 minutes in (bp.systolic.high and bp.diastolic.high, rise from baseline)
    # and is still high.
    Scenario(
        _patient("DEMO-1003", "Riley Chen", 1968),
        _IV,
        (
            Vitals(-52, 82, 146, 94, 98, 16, 36.9),
            Vitals(-47, 80, 144, 92, 98, 15),
            Start(-44, "Repeat baseline 144/92 on treated hypertension; reviewed, proceed"),
            Vitals(-39, 86, 156, 96, 98, 16),
            Vitals(-32, 92, 168, 102, 97, 16),
            Assessment(-28, "dissociation", severity=2, cadss=26),
            Vitals(-24, 98, 186, 112, 97, 17),
            Assessment(-20, "headache", severity=2),
            Vitals(-16, 96, 178, 106, 97, 16),
            Vitals(-9, 90, 170, 102, 98, 16),
            Vitals(-3, 88, 164, 98, 98, 15),
        ),
    ),
    # Post, resolving: dissociation gone 18 minutes after the end, ready for discharge.
    Scenario(
        _patient("DEMO-1004", "Morgan Hale", 1991),
        _IV,
        (
            Vitals(-84, 70, 122, 78, 98, 14, 36.7),
            Start(-78),
            Vitals(-73, 76, 130, 82, 98, 14),
            Vitals(-63, 82, 138, 86, 97, 15),
            Assessment(-58, "dissociation", severity=2, cadss=20),
            Vitals(-53, 84, 142, 88, 97, 14),
            Assessment(-48, "nausea", severity=1),
            Vitals(-43, 80, 136, 84, 98, 14),
            End(-38),
            Vitals(-33, 76, 128, 80, 98, 14, 36.8),
            Assessment(-33, "dissociation", severity=1, cadss=9),
            Assessment(-33, "sedation", moaas=4),
            Vitals(-23, 72, 124, 78, 98, 14),
            Assessment(-20, "dissociation", severity=0, cadss=2),
            Assessment(-20, "sedation", moaas=5),
            Vitals(-8, 70, 122, 78, 99, 14),
        ),
    ),
    # Post, slow recovery: deep sedation during the infusion, severe dissociation after it,
    # still dissociated 80 minutes after the end (dissociation.unresolved).
    Scenario(
        _patient("DEMO-1005", "Casey Novak", 1974),
        {**_IV, "dose_mg_per_kg": 0.75},
        (
            Vitals(-128, 74, 128, 82, 98, 15, 36.6),
            Start(-122),
            Vitals(-117, 80, 134, 86, 98, 15),
            Vitals(-107, 86, 142, 90, 97, 14),
            Assessment(-102, "dissociation", severity=2, cadss=30),
            Vitals(-97, 88, 146, 92, 97, 13),
            Assessment(-92, "sedation", moaas=3),
            Vitals(-87, 84, 140, 88, 96, 12),
            End(-82),
            Vitals(-77, 80, 134, 84, 97, 13, 36.7),
            Assessment(-76, "dissociation", severity=3, cadss=41),
            Assessment(-76, "sedation", moaas=4),
            Vitals(-62, 78, 130, 82, 97, 14),
            Assessment(-61, "dissociation", severity=2, cadss=28),
            Vitals(-47, 76, 128, 80, 98, 14),
            Assessment(-46, "dissociation", severity=2, cadss=22),
            Assessment(-46, "sedation", moaas=5),
            Vitals(-32, 74, 126, 80, 98, 14),
            Assessment(-31, "dissociation", severity=1, cadss=15),
            Vitals(-17, 74, 124, 78, 98, 14),
            Assessment(-16, "dissociation", severity=1, cadss=11),
        ),
    ),
    # Discharged: an uneventful session, dissociation gone 18 minutes after the end. (It ended
    # under an hour ago: a late-synced end older than that would raise dissociation.unresolved.)
    Scenario(
        _patient("DEMO-1006", "Taylor Reyes", 1983),
        _IV,
        (
            Vitals(-104, 66, 118, 74, 99, 13, 36.5),
            Start(-98),
            Vitals(-93, 72, 126, 80, 98, 14),
            Vitals(-83, 78, 134, 84, 98, 14),
            Assessment(-78, "dissociation", severity=2, cadss=18),
            Vitals(-73, 80, 136, 86, 97, 14),
            Assessment(-68, "nausea", severity=1),
            Vitals(-63, 76, 130, 82, 98, 14),
            End(-58),
            Vitals(-53, 72, 124, 78, 98, 14, 36.7),
            Assessment(-52, "dissociation", severity=1, cadss=8),
            Vitals(-42, 70, 120, 76, 99, 14),
            Assessment(-40, "dissociation", severity=0, cadss=3),
            Assessment(-40, "sedation", moaas=5),
            Vitals(-30, 68, 118, 76, 99, 13),
            Discharge(-25),
        ),
    ),
)

_OBSERVATION = TypeAdapter[SymptomCreate | SedationCreate | DissociationCreate](ObservationCreate)


@dataclass(frozen=True)
class Demo:
    clinic_id: uuid.UUID
    keys: dict[Role, str]  # the secrets, shown only this once
    session_ids: list[uuid.UUID]


def create_demo(db: Session) -> Demo:
    """A new demo clinic, a key per role and the simulated sessions (flushed, not committed).

    The services judge time rules at the wall clock, so the bedside times count back from it.
    """
    now = utcnow().replace(microsecond=0)
    clinic = create_clinic(db, None, CLINIC_NAME)
    keys: dict[Role, str] = {}
    principals: dict[Role, Principal] = {}
    for role in Role:
        key, secret = create_key(db, None, role, clinic.id, f"demo {role.value}")
        keys[role] = secret
        principals[role] = Principal(key_id=key.id, role=role, clinic_id=clinic.id)
    nurse, clinician = principals[Role.NURSE], principals[Role.CLINICIAN]
    session_ids = [_simulate(db, nurse, clinician, scenario, now) for scenario in SCENARIOS]
    return Demo(clinic.id, keys, session_ids)


def _simulate(
    db: Session, nurse: Principal, clinician: Principal, scenario: Scenario, now: datetime
) -> uuid.UUID:
    """Enter one patient's session step by step, as the nurse (and clinician) would."""
    patient = create_patient(db, nurse, scenario.patient)
    data = InfusionCreate.model_validate({**scenario.session, "patient_id": patient.id})
    session_id = infusions.create_infusion(db, nurse, data).id
    # A tablet that synced late: everything it recorded arrives first (the readings as one batch,
    # judged in measured order), then the transitions the nurse records dated back, each of
    # which judges what it moved into a new phase. So no alert stands for the sync's delay.
    readings: list[ReadingCreate] = []
    observations: list[ObservationCreate] = []
    transitions: list[tuple[Step, datetime]] = []
    for step in scenario.steps:
        at = now + timedelta(minutes=step.minute)
        match step:
            case Vitals():
                readings.append(
                    ReadingCreate(
                        measured_at=at,
                        heart_rate=step.heart_rate,
                        systolic=step.systolic,
                        diastolic=step.diastolic,
                        spo2=step.spo2,
                        respiratory_rate=step.respiratory_rate,
                        temperature_c=step.temperature_c,
                        consciousness=Consciousness.ALERT,
                        on_oxygen=False,
                        source="device",
                        device_id="demo-monitor",
                    )
                )
            case Assessment():
                fields = {"severity": step.severity, "moaas": step.moaas, "cadss": step.cadss}
                observations.append(
                    _OBSERVATION.validate_python(
                        {
                            "measured_at": at,
                            "kind": step.kind,
                            **{name: value for name, value in fields.items() if value is not None},
                        }
                    )
                )
            case _:
                transitions.append((step, at))
    if readings:
        record_readings(db, nurse, session_id, readings, batch=True)
    for observation in observations:
        record_observation(db, nurse, session_id, observation)
    for step, at in transitions:
        match step:
            case Start(override_reason=None):
                infusions.start(db, nurse, session_id, at, None)
            case Start():
                infusions.start(db, clinician, session_id, at, step.override_reason)
            case End():
                infusions.end(db, nurse, session_id, at)
            case Discharge():
                infusions.discharge(db, nurse, session_id, at, None)
    return session_id
