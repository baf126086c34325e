"""NEWS2 (Royal College of Physicians, 2017), SpO2 scale 1, as pure functions of plain values."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

# Parameters in the order of the RCP chart, named as the reading's fields.
PARAMETERS = (
    "respiratory_rate",
    "spo2",
    "on_oxygen",
    "systolic",
    "heart_rate",
    "consciousness",
    "temperature_c",
)
# How far back a missing parameter may be filled from an earlier reading of the session.
CARRY_FORWARD = {"temperature_c": timedelta(hours=4)}
DEFAULT_CARRY_FORWARD = timedelta(minutes=60)


def score_parameter(name: str, value: Any) -> int:
    """The NEWS2 score (0-3) of one parameter's value."""
    if name == "respiratory_rate":
        return (
            3 if value <= 8 else 1 if value <= 11 else 0 if value <= 20 else 2 if value <= 24 else 3
        )
    if name == "spo2":
        return 3 if value <= 91 else 2 if value <= 93 else 1 if value <= 95 else 0
    if name == "on_oxygen":
        return 2 if value else 0
    if name == "systolic":
        return (
            3
            if value <= 90
            else 2
            if value <= 100
            else 1
            if value <= 110
            else 0
            if value <= 219
            else 3
        )
    if name == "heart_rate":
        return (
            3
            if value <= 40
            else 1
            if value <= 50
            else 0
            if value <= 90
            else 1
            if value <= 110
            else 2
            if value <= 130
            else 3
        )
    if name == "consciousness":
        return 0 if value == "alert" else 3
    if name == "temperature_c":
        value = round(float(value), 1)
        return (
            3
            if value <= 35.0
            else 1
            if value <= 36.0
            else 0
            if value <= 38.0
            else 1
            if value <= 39.0
            else 2
        )
    raise ValueError(f"not a NEWS2 parameter: {name}")


def risk_of(score: int, has_single_three: bool) -> str:
    if score >= 7:
        return "high"
    if score >= 5:
        return "medium"
    return "low-medium" if has_single_three else "low"


@dataclass(frozen=True)
class Observed:
    """One parameter as NEWS2 used it: the value, its score, and when it was measured."""

    value: Any
    score: int
    measured_at: datetime


@dataclass(frozen=True)
class News2:
    score: int
    risk: str
    complete: bool
    missing: list[str]
    parameters: dict[str, Observed] = field(default_factory=dict)

    @property
    def has_single_three(self) -> bool:
        return any(p.score == 3 for p in self.parameters.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "score": self.score,
            "risk": self.risk,
            "complete": self.complete,
            "missing": self.missing,
            "parameters": {
                name: {"value": p.value, "score": p.score, "measured_at": p.measured_at}
                for name, p in self.parameters.items()
            },
        }


def compute(reading: Any, earlier: list[Any]) -> News2:
    """NEWS2 of ``reading``, filling missing parameters from ``earlier`` valid readings of the session.

    ``earlier`` holds readings measured at or before this one (any order). ``on_oxygen`` belongs
    to its reading alone: omitted means room air, and it is never carried forward.
    """
    at: datetime = reading.measured_at
    ordered = sorted(earlier, key=lambda r: r.measured_at, reverse=True)
    used: dict[str, Observed] = {}
    missing: list[str] = []
    for name in PARAMETERS:
        if name == "on_oxygen":
            on_oxygen = bool(reading.on_oxygen)
            used[name] = Observed(on_oxygen, score_parameter(name, on_oxygen), at)
            continue
        value, when = getattr(reading, name), at
        if value is None:
            window = CARRY_FORWARD.get(name, DEFAULT_CARRY_FORWARD)
            for other in ordered:
                if (
                    other.measured_at <= at
                    and at - other.measured_at <= window
                    and getattr(other, name) is not None
                ):
                    value, when = getattr(other, name), other.measured_at
                    break
        if value is None:
            missing.append(name)
            continue
        used[name] = Observed(value, score_parameter(name, value), when)
    score = sum(p.score for p in used.values())
    single_three = any(p.score == 3 for p in used.values())
    return News2(score, risk_of(score, single_three), not missing, missing, used)
