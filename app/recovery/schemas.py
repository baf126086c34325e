from __future__ import annotations

import uuid
from typing import Literal

from app.schemas import ResponseModel, Timestamp

RecoveryStatus = Literal[
    "infusion_not_ended", "pending", "resolved_within_30", "resolved_within_60", "resolved_after_60",
    "unresolved_overdue",
]  # fmt: skip
Blocker = Literal[
    "min_observation_time", "dissociation_unresolved", "sedation", "vitals_not_near_baseline", "vomiting",
    "open_high_alerts",
]  # fmt: skip


class Assessment(ResponseModel):
    id: uuid.UUID
    measured_at: Timestamp
    severity: int
    cadss: int | None
    shows_dissociation: bool


class Dissociation(ResponseModel):
    resolved_at: Timestamp | None
    minutes_to_resolution: float | None
    last_severity: int | None
    assessments: list[Assessment]


class RecoveryRead(ResponseModel):
    session_id: uuid.UUID
    infusion_ended_at: Timestamp | None
    minutes_since_end: float | None
    status: RecoveryStatus
    dissociation: Dissociation
    next_assessment_due_at: Timestamp | None
    vitals_near_baseline: bool
    discharge_ready: bool
    discharge_blockers: list[Blocker]
