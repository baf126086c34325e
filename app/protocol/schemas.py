"""The monitoring protocol as data: every number PROTOCOL.md names, with its default.

Rule codes, the shape of each rule and its direction are fixed; a clinic may change the numbers.
"""

from __future__ import annotations

from itertools import pairwise
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Direction = Literal["above", "below"]
Severity = Literal["low", "medium", "high"]
SEVERITIES: tuple[Severity, ...] = ("low", "medium", "high")

# Which way each threshold rule fires: "above" means value ≥ limit, "below" value ≤ limit.
DIRECTIONS: dict[str, Direction] = {
    "bp.systolic.high": "above",
    "bp.diastolic.high": "above",
    "bp.systolic.low": "below",
    "hr.high": "above",
    "hr.low": "below",
    "spo2.low": "below",
    "rr.low": "below",
    "rr.high": "above",
    "news2": "above",
    "sedation.deep": "below",
    "dissociation.severe": "above",
    "symptom.vomiting": "above",
    "symptom.severe": "above",
    "vitals.overdue": "above",
    "dissociation.unresolved": "above",
}

Limit = Annotated[float, Field(ge=0, le=1000)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Thresholds(_Strict):
    """The limit at which each severity starts (inclusive); an absent severity is never raised."""

    low: Limit | None = None
    medium: Limit | None = None
    high: Limit | None = None

    def limits(self) -> list[tuple[Severity, float]]:
        return [(s, v) for s in SEVERITIES if (v := getattr(self, s)) is not None]


class RiseFromBaseline(_Strict):
    """bp.rise_from_baseline (medium): a rise of this many mmHg over the session's baseline."""

    systolic: Annotated[int, Field(ge=1, le=200)] = 40
    diastolic: Annotated[int, Field(ge=1, le=200)] = 25


class Screening(_Strict):
    """Baseline pressure above which `start` needs a clinician's review (esketamine label)."""

    systolic_max: Annotated[int, Field(ge=60, le=300)] = 140
    diastolic_max: Annotated[int, Field(ge=30, le=200)] = 90


class NearBaseline(_Strict):
    """vitals_near_baseline: within these rises over baseline, or under the absolute limits."""

    systolic_rise: Annotated[int, Field(ge=0, le=200)] = 20
    diastolic_rise: Annotated[int, Field(ge=0, le=200)] = 10
    heart_rate_rise: Annotated[int, Field(ge=0, le=200)] = 20
    systolic_below: Annotated[int, Field(ge=60, le=300)] = 140
    diastolic_below: Annotated[int, Field(ge=30, le=200)] = 90
    heart_rate_below: Annotated[int, Field(ge=30, le=300)] = 100


class Recovery(_Strict):
    min_observation_min: Annotated[float, Field(ge=0, le=1440)] = 30
    min_observation_intranasal_min: Annotated[float, Field(ge=0, le=1440)] = 120
    assessment_interval_min: Annotated[float, Field(gt=0, le=240)] = 15
    resolved_within_min: Annotated[float, Field(gt=0, le=1440)] = 30
    overdue_after_min: Annotated[float, Field(gt=0, le=1440)] = 60
    vomiting_window_min: Annotated[float, Field(ge=0, le=1440)] = 30
    near_baseline: NearBaseline = NearBaseline()


def _t(
    low: float | None = None, medium: float | None = None, high: float | None = None
) -> Thresholds:
    return Thresholds(low=low, medium=medium, high=high)


DEFAULT_THRESHOLDS: dict[str, Thresholds] = {
    "bp.systolic.high": _t(medium=160, high=180),
    "bp.diastolic.high": _t(medium=100, high=110),
    "bp.systolic.low": _t(medium=90, high=80),
    "hr.high": _t(medium=110, high=130),
    "hr.low": _t(medium=50, high=40),
    "spo2.low": _t(medium=93, high=90),
    "rr.low": _t(medium=10, high=8),
    "rr.high": _t(medium=25),
    "news2": _t(medium=5, high=7),
    "sedation.deep": _t(medium=3, high=2),
    "dissociation.severe": _t(medium=3),
    "symptom.vomiting": _t(medium=1),
    "symptom.severe": _t(medium=3),
    "vitals.overdue": _t(low=15, medium=30),
    "dissociation.unresolved": _t(medium=60, high=120),
}


class ProtocolBody(_Strict):
    """A protocol as a clinician writes it; omitted parts keep PROTOCOL.md's defaults."""

    thresholds: dict[str, Thresholds] = Field(default_factory=lambda: dict(DEFAULT_THRESHOLDS))
    rise_from_baseline: RiseFromBaseline = RiseFromBaseline()
    screening: Screening = Screening()
    recovery: Recovery = Recovery()

    @model_validator(mode="after")
    def _coherent(self) -> ProtocolBody:
        unknown = sorted(set(self.thresholds) - set(DIRECTIONS))
        if unknown:
            raise ValueError(f"unknown rule codes: {', '.join(unknown)}")
        self.thresholds = {**DEFAULT_THRESHOLDS, **self.thresholds}
        for rule, thresholds in self.thresholds.items():
            limits = thresholds.limits()
            if not limits:
                raise ValueError(f"{rule}: at least one severity needs a limit")
            values = [v for _, v in limits]
            rising = DIRECTIONS[rule] == "above"
            ordered = all((a < b) if rising else (a > b) for a, b in pairwise(values))
            if not ordered:
                word = "above" if rising else "below"
                raise ValueError(
                    f"{rule}: each higher severity's limit must lie {word} the lower one's"
                )
        return self


class ProtocolUpdate(ProtocolBody):
    version: int | None = Field(None, description="Ignored: the server numbers versions.")


class ProtocolRead(ProtocolBody):
    version: int
