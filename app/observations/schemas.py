from __future__ import annotations

import uuid
from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from app.alerts.schemas import AlertRead
from app.schemas import RequestModel, ResponseModel, Timestamp

Severity = Annotated[
    int, Field(ge=0, le=3, strict=True, description="0 none, 1 mild, 2 moderate, 3 severe")
]
Moaas = Annotated[
    int, Field(ge=0, le=5, strict=True, description="MOAA/S, 5 = responds readily to name")
]
Cadss = Annotated[
    int, Field(ge=0, le=92, strict=True, description="CADSS total (23 items, each 0-4)")
]
Note = Annotated[str, StringConstraints(max_length=2000)]
SymptomKind = Literal[
    "nausea", "vomiting", "dizziness", "headache", "blurred_vision", "anxiety", "agitation",
    "hallucinations", "other",
]  # fmt: skip
SYMPTOM_KINDS: tuple[str, ...] = SymptomKind.__args__  # type: ignore[attr-defined]
ObservationKind = Literal["dissociation", "sedation", SymptomKind]


class _ObservationBase(RequestModel):
    id: uuid.UUID | None = Field(
        None, description="Client-chosen id: a retry with it is stored once."
    )
    measured_at: Timestamp
    note: Note | None = None


class SymptomCreate(_ObservationBase):
    kind: SymptomKind
    severity: Severity


class SedationCreate(_ObservationBase):
    kind: Literal["sedation"]
    moaas: Moaas


class DissociationCreate(_ObservationBase):
    kind: Literal["dissociation"]
    severity: Severity
    cadss: Cadss | None = None


# Each kind carries its own fields; a field of another kind is rejected (extra="forbid").
ObservationCreate = Annotated[
    SymptomCreate | SedationCreate | DissociationCreate, Field(discriminator="kind")
]


class ObservationRead(ResponseModel):
    id: uuid.UUID
    session_id: uuid.UUID
    measured_at: Timestamp
    recorded_at: Timestamp
    kind: ObservationKind
    severity: int | None
    moaas: int | None
    cadss: int | None
    note: str | None
    status: Literal["final", "entered-in-error"]
    entered_in_error_at: Timestamp | None
    entered_in_error_reason: str | None
    phase: Literal["pre", "intra", "post"]


class ObservationRecorded(ObservationRead):
    """A stored observation with the alerts it opened or updated."""

    alerts: list[AlertRead]
