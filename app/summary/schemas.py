from __future__ import annotations

import uuid

from app.alerts.schemas import AlertRead
from app.recovery.schemas import RecoveryStatus
from app.schemas import ResponseModel, Timestamp


class Durations(ResponseModel):
    infusion_min: float | None
    recovery_min: float | None


class VitalStats(ResponseModel):
    min: float
    max: float
    mean: float
    count: int


class PeakSystolic(ResponseModel):
    value: int
    measured_at: Timestamp
    minutes_from_start: float | None


class RecoverySummary(ResponseModel):
    status: RecoveryStatus
    minutes_to_resolution: float | None


class SessionSummary(ResponseModel):
    session_id: uuid.UUID
    durations: Durations
    phases: dict[str, dict[str, VitalStats]]
    peak_systolic: PeakSystolic | None
    alerts: list[AlertRead]
    recovery: RecoverySummary
