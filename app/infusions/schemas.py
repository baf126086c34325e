from __future__ import annotations

import uuid
from enum import StrEnum
from typing import Annotated, Any

from pydantic import Field, StringConstraints

from app.schemas import RequestModel, ResponseModel, Timestamp


class Route(StrEnum):
    IV = "iv"
    IM = "im"
    INTRANASAL = "intranasal"
    SUBLINGUAL = "sublingual"
    ORAL = "oral"


class InfusionStatus(StrEnum):
    SCHEDULED = "scheduled"
    IN_PROGRESS = "in_progress"
    RECOVERY = "recovery"
    DISCHARGED = "discharged"
    ABORTED = "aborted"


Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]


class InfusionCreate(RequestModel):
    patient_id: uuid.UUID
    route: Route
    # Strict, as every number a client sends: lax validation reads JSON true as 1 and "0.5" as
    # 0.5. A strict float still takes an integer (1 is 1.0).
    planned_duration_min: Annotated[int, Field(ge=1, le=1440, strict=True)] | None = None
    dose_mg_per_kg: (
        Annotated[float, Field(gt=0, le=10, strict=True, allow_inf_nan=False)] | None
    ) = None


class TransitionRequest(RequestModel):
    at: Timestamp | None = None


class StartRequest(TransitionRequest):
    override_reason: Reason | None = None


class DischargeRequest(TransitionRequest):
    override_reason: Reason | None = None


class AbortRequest(TransitionRequest):
    reason: Reason


class BaselineRead(ResponseModel):
    reading_id: uuid.UUID
    measured_at: Timestamp
    systolic: int
    diastolic: int
    heart_rate: int | None


class OverrideRead(ResponseModel):
    reason: str
    reasons: list[str]
    by: uuid.UUID
    at: Timestamp


class InfusionRead(ResponseModel):
    id: uuid.UUID
    patient_id: uuid.UUID
    status: InfusionStatus
    route: Route
    planned_duration_min: int | None
    dose_mg_per_kg: float | None
    protocol_version: int
    baseline: BaselineRead | None
    created_at: Timestamp
    started_at: Timestamp | None
    infusion_ended_at: Timestamp | None
    discharged_at: Timestamp | None
    aborted_at: Timestamp | None
    abort_reason: str | None
    screening_override: OverrideRead | None
    discharge_override: OverrideRead | None
    updated_at: Timestamp

    @classmethod
    def build(cls, infusion: Any, baseline: BaselineRead | None) -> InfusionRead:
        data = {name: getattr(infusion, name) for name in cls.model_fields if name != "baseline"}
        return cls.model_validate({**data, "baseline": baseline})
