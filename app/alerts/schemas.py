from __future__ import annotations

import uuid
from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from app.schemas import RequestModel, ResponseModel, Timestamp

Note = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]


class AlertRead(ResponseModel):
    id: uuid.UUID
    session_id: uuid.UUID
    patient_id: uuid.UUID
    rule: str
    severity: Literal["low", "medium", "high"]
    status: Literal["open", "acknowledged", "resolved"]
    message: str
    value: float | None = Field(description="The measured number that last violated the rule")
    threshold: float | None = Field(description="The limit of the alert's current severity")
    first_seen_at: Timestamp
    last_seen_at: Timestamp
    count: int
    reading_id: uuid.UUID | None
    observation_id: uuid.UUID | None
    cleared_at: Timestamp | None
    acknowledged_at: Timestamp | None
    acknowledged_by: uuid.UUID | None
    acknowledgement_note: str | None
    resolved_at: Timestamp | None
    resolved_by: uuid.UUID | None
    resolution_note: str | None
    protocol_version: int
    created_at: Timestamp
    updated_at: Timestamp


class AlertPage(ResponseModel):
    items: list[AlertRead]
    next_cursor: str | None
    changes_cursor: str = Field(description="Pass as changed_after to get only later changes")


class AcknowledgeRequest(RequestModel):
    note: Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000)] | None = None


class ResolveRequest(RequestModel):
    note: Note
