from __future__ import annotations

import uuid
from typing import Literal

from app.readings.schemas import News2Read, ReadingRead
from app.recovery.schemas import RecoveryStatus
from app.schemas import ResponseModel, Timestamp


class BoardPatient(ResponseModel):
    id: uuid.UUID
    display_name: str
    mrn: str


class AlertCounts(ResponseModel):
    high: int
    medium: int
    low: int
    highest: Literal["low", "medium", "high"] | None


class LatestReading(ReadingRead):
    news2: News2Read


class BoardRow(ResponseModel):
    session_id: uuid.UUID
    patient: BoardPatient
    status: Literal["in_progress", "recovery"]
    phase: Literal["intra", "post"]
    phase_started_at: Timestamp
    latest_reading: LatestReading | None
    alerts: AlertCounts
    recovery_status: RecoveryStatus
    vitals_due_at: Timestamp | None
    next_assessment_due_at: Timestamp | None


class Board(ResponseModel):
    items: list[BoardRow]
    generated_at: Timestamp
