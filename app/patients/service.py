"""Patients: registered per clinic, unique by MRN within it, never deleted."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.audit import service as audit
from app.auth.deps import Principal
from app.db import utcnow
from app.errors import Conflict, NotFound
from app.patients.models import Patient
from app.patients.schemas import PatientCreate, PatientUpdate


def _mrn_taken(db: Session, clinic_id: uuid.UUID, mrn: str) -> bool:
    query = select(Patient.id).where(Patient.clinic_id == clinic_id, Patient.mrn == mrn)
    return db.scalar(query) is not None


def create_patient(db: Session, principal: Principal, data: PatientCreate) -> Patient:
    clinic_id = principal.require_clinic()
    if _mrn_taken(db, clinic_id, data.mrn):
        raise Conflict("a patient with this MRN already exists in the clinic")
    now = utcnow()
    patient = Patient(
        id=uuid.uuid4(),
        clinic_id=clinic_id,
        mrn=data.mrn,
        display_name=data.display_name,
        birth_year=data.birth_year,
        contraindications=list(dict.fromkeys(c.value for c in data.contraindications)),
        created_at=now,
        updated_at=now,
    )
    db.add(patient)
    try:
        db.flush()
    except IntegrityError:
        db.rollback()
        raise Conflict("a patient with this MRN already exists in the clinic") from None
    audit.record(db, principal, "patient.create", "Patient", patient.id)
    return patient


def load_patient(db: Session, principal: Principal, patient_id: uuid.UUID) -> Patient:
    """The clinic's patient, or 404 (another clinic's patient does not exist for this key)."""
    patient = db.get(Patient, patient_id)
    if patient is None or patient.clinic_id != principal.clinic_id:
        raise NotFound("no such patient")
    return patient


def read_patient(db: Session, principal: Principal, patient_id: uuid.UUID) -> Patient:
    patient = load_patient(db, principal, patient_id)
    audit.record(db, principal, "patient.read", "Patient", patient.id)
    return patient


def find_patients(
    db: Session, principal: Principal, mrn: str | None, after: uuid.UUID | None, limit: int
) -> list[Patient]:
    query = select(Patient).where(Patient.clinic_id == principal.require_clinic())
    if mrn is not None:
        query = query.where(Patient.mrn == mrn.strip())
    if after is not None:
        query = query.where(Patient.id > after)
    patients = list(db.scalars(query.order_by(Patient.id).limit(limit)))
    for patient in patients:
        audit.record(db, principal, "patient.read", "Patient", patient.id)
    return patients


def update_patient(
    db: Session, principal: Principal, patient_id: uuid.UUID, data: PatientUpdate
) -> Patient:
    patient = load_patient(db, principal, patient_id)
    if data.display_name is not None:
        patient.display_name = data.display_name
    if data.contraindications is not None:
        patient.contraindications = list(dict.fromkeys(c.value for c in data.contraindications))
    patient.updated_at = utcnow()
    db.flush()
    audit.record(db, principal, "patient.update", "Patient", patient.id)
    return patient
