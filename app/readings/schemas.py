from __future__ import annotations

import uuid
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import (
    Field,
    StrictBool,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)

from app.alerts.schemas import AlertRead
from app.schemas import RequestModel, ResponseModel, Timestamp


class Consciousness(StrEnum):
    """ACVPU."""

    ALERT = "alert"
    CONFUSION = "confusion"
    VOICE = "voice"
    PAIN = "pain"
    UNRESPONSIVE = "unresponsive"


# Plausible ranges (PROTOCOL.md): outside them a value cannot be a measurement.
HeartRate = Annotated[int, Field(ge=0, le=300, strict=True, description="beats/min")]
Systolic = Annotated[int, Field(ge=20, le=300, strict=True, description="mmHg")]
Diastolic = Annotated[int, Field(ge=10, le=200, strict=True, description="mmHg, below systolic")]
SpO2 = Annotated[int, Field(ge=0, le=100, strict=True, description="%")]
RespiratoryRate = Annotated[int, Field(ge=0, le=60, strict=True, description="breaths/min")]
TEMPERATURE_RANGE = (25.0, 45.0)
TemperatureC = Annotated[
    float,
    Field(
        ge=TEMPERATURE_RANGE[0],
        le=TEMPERATURE_RANGE[1],
        strict=True,
        allow_inf_nan=False,
        description="°C, one decimal",
    ),
]
VITALS = (
    "heart_rate",
    "systolic",
    "diastolic",
    "spo2",
    "respiratory_rate",
    "temperature_c",
    "consciousness",
)


class ReadingCreate(RequestModel):
    id: uuid.UUID | None = Field(
        None, description="Client-chosen id: a retry with it is stored once."
    )
    measured_at: Timestamp
    heart_rate: HeartRate | None = None
    systolic: Systolic | None = None
    diastolic: Diastolic | None = None
    spo2: SpO2 | None = None
    respiratory_rate: RespiratoryRate | None = None
    temperature_c: TemperatureC | None = None
    consciousness: Consciousness | None = None
    on_oxygen: StrictBool | None = None
    source: Literal["manual", "device"] = "manual"
    device_id: Annotated[str, StringConstraints(min_length=1, max_length=100)] | None = None

    @field_validator("diastolic")
    @classmethod
    def _below_systolic(cls, diastolic: int | None, info: ValidationInfo) -> int | None:
        systolic = info.data.get("systolic")
        if diastolic is not None and systolic is not None and diastolic >= systolic:
            raise ValueError("diastolic must be below systolic")
        return diastolic

    @field_validator("temperature_c")
    @classmethod
    def _one_decimal(cls, temperature: float | None) -> float | None:
        # PROTOCOL.md: one decimal. More is refused like a fraction of a beat, never rounded.
        if temperature is not None and round(temperature, 1) != temperature:
            raise ValueError("temperature_c has at most one decimal")
        return temperature

    @model_validator(mode="after")
    def _coherent(self) -> ReadingCreate:
        if all(getattr(self, name) is None for name in VITALS):
            raise ValueError("a reading needs at least one vital sign")
        if (self.systolic is None) != (self.diastolic is None):
            raise ValueError("systolic and diastolic come together")
        return self


class ReadingBatch(RequestModel):
    readings: Annotated[list[ReadingCreate], Field(min_length=1, max_length=500)]


class EnteredInError(RequestModel):
    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]


class ReadingRead(ResponseModel):
    id: uuid.UUID
    session_id: uuid.UUID
    measured_at: Timestamp
    recorded_at: Timestamp
    heart_rate: int | None
    systolic: int | None
    diastolic: int | None
    spo2: int | None
    respiratory_rate: int | None
    temperature_c: float | None
    consciousness: Consciousness | None
    on_oxygen: bool | None
    source: Literal["manual", "device"]
    device_id: str | None
    status: Literal["final", "entered-in-error"]
    entered_in_error_at: Timestamp | None
    entered_in_error_reason: str | None
    phase: Literal["pre", "intra", "post"]


class ReadingList(ResponseModel):
    items: list[ReadingRead]


class News2Parameter(ResponseModel):
    value: bool | int | float | str
    score: int
    measured_at: Timestamp = Field(
        description="When the value was measured (earlier: carried forward)"
    )


class News2Read(ResponseModel):
    score: int = Field(description="Aggregate (partial when incomplete)")
    risk: Literal["low", "low-medium", "medium", "high"]
    complete: bool
    missing: list[str]
    parameters: dict[str, News2Parameter]


class ReadingRecorded(ReadingRead):
    """A stored reading as judged: its NEWS2 and the alerts it opened or updated."""

    news2: News2Read
    alerts: list[AlertRead]


class ReadingRecordedList(ResponseModel):
    items: list[ReadingRecorded]
