from __future__ import annotations

import uuid
from enum import StrEnum
from typing import Annotated

from pydantic import Field, StringConstraints, field_validator

from app.schemas import RequestModel, ResponseModel, Timestamp


class Contraindication(StrEnum):
    """Conditions that make pre-infusion screening need a clinician's review (PROTOCOL.md)."""

    HYPERTENSION_UNCONTROLLED = "hypertension_uncontrolled"
    CARDIOVASCULAR_DISEASE = "cardiovascular_disease"
    STROKE_HISTORY = "stroke_history"
    ANEURYSM = "aneurysm"
    HYPERTHYROIDISM = "hyperthyroidism"
    HEPATIC_DISEASE_SEVERE = "hepatic_disease_severe"
    PSYCHOSIS_HISTORY = "psychosis_history"
    SUBSTANCE_USE_DISORDER = "substance_use_disorder"
    PREGNANCY = "pregnancy"
    INTRACRANIAL_PRESSURE_RAISED = "intracranial_pressure_raised"


Mrn = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
DisplayName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Contraindications = Annotated[list[Contraindication], Field(max_length=20)]


class PatientCreate(RequestModel):
    mrn: Mrn
    display_name: DisplayName
    birth_year: Annotated[int, Field(ge=1900, le=2100, strict=True)] | None = None
    contraindications: Contraindications = []


class PatientUpdate(RequestModel):
    """The fields to change; a field left out stays as it is (null changes nothing either, so
    it is refused rather than ignored)."""

    display_name: DisplayName | None = None
    contraindications: Contraindications | None = None

    @field_validator("display_name", "contraindications")
    @classmethod
    def _not_null(cls, value: object) -> object:
        if value is None:  # only a null that was sent: defaults are not validated
            raise ValueError("must not be null: leave the field out to keep it")
        return value


class PatientRead(ResponseModel):
    id: uuid.UUID
    clinic_id: uuid.UUID
    mrn: str
    display_name: str
    birth_year: int | None
    contraindications: list[Contraindication]
    created_at: Timestamp
    updated_at: Timestamp
