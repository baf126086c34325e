"""The monitoring protocol as data: every number PROTOCOL.md names.

Rule codes, the levels each rule has, its direction and the shape of every section are fixed;
a clinic may change the numbers. A protocol is always a whole document: what `GET` answers is
what `PUT` takes, so no version is ever pieced together from defaults.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise
from typing import Annotated, Any, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError, ValidationError

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
    # Unknown fields are refused, and numbers are strict: JSON true is no limit (lax validation
    # would read it as 1).
    model_config = ConfigDict(extra="forbid", strict=True)


# Every rule of the table has a medium level; some add a low or a high one. A level the rule
# lacks is an unknown field (422), and a level it has is required and never null.
class MediumLevel(_Strict):
    """A rule with a medium level only: the limit at which it starts (inclusive)."""

    medium: Limit

    def limits(self) -> list[tuple[Severity, float]]:
        """The rule's levels with their limits, lowest severity first."""
        # From the instance's fields: getattr on a level the class lacks costs an exception.
        return [(s, v) for s in SEVERITIES if (v := self.__dict__.get(s)) is not None]


class MediumHighLevels(MediumLevel):
    """A rule with a medium and a high level."""

    high: Limit


class LowMediumLevels(MediumLevel):
    """A rule with a low and a medium level."""

    low: Limit


def _rule(code: str) -> Any:
    reached = "at or above" if DIRECTIONS[code] == "above" else "at or below"
    return Field(alias=code, description=f"`{code}`: a level is reached {reached} its limit")


class RuleThresholds(_Strict):
    """Every threshold rule of PROTOCOL.md, by its code, with exactly the levels of its row."""

    model_config = ConfigDict(extra="forbid", serialize_by_alias=True)

    bp_systolic_high: MediumHighLevels = _rule("bp.systolic.high")
    bp_diastolic_high: MediumHighLevels = _rule("bp.diastolic.high")
    bp_systolic_low: MediumHighLevels = _rule("bp.systolic.low")
    hr_high: MediumHighLevels = _rule("hr.high")
    hr_low: MediumHighLevels = _rule("hr.low")
    spo2_low: MediumHighLevels = _rule("spo2.low")
    rr_low: MediumHighLevels = _rule("rr.low")
    rr_high: MediumLevel = _rule("rr.high")
    news2: MediumHighLevels = _rule("news2")
    sedation_deep: MediumHighLevels = _rule("sedation.deep")
    dissociation_severe: MediumLevel = _rule("dissociation.severe")
    symptom_vomiting: MediumLevel = _rule("symptom.vomiting")
    symptom_severe: MediumLevel = _rule("symptom.severe")
    vitals_overdue: LowMediumLevels = _rule("vitals.overdue")
    dissociation_unresolved: MediumHighLevels = _rule("dissociation.unresolved")

    def __getitem__(self, rule: str) -> MediumLevel:
        levels: MediumLevel = getattr(self, _FIELD_OF_RULE[rule])
        return levels

    @staticmethod
    def levels_of(rule: str) -> tuple[str, ...]:
        """The levels ``rule`` has (PROTOCOL.md's table), lowest severity first."""
        kind = RuleThresholds.model_fields[_FIELD_OF_RULE[rule]].annotation
        return tuple(s for s in SEVERITIES if s in getattr(kind, "model_fields", {}))

    @field_validator("*")
    @classmethod
    def _ordered(cls, levels: MediumLevel, info: ValidationInfo) -> MediumLevel:
        rule = cls.model_fields[str(info.field_name)].alias
        assert rule is not None
        rising = DIRECTIONS[rule] == "above"
        values = [v for _, v in levels.limits()]
        if not all((a < b) if rising else (a > b) for a, b in pairwise(values)):
            word = "above" if rising else "below"
            raise ValueError(
                f"{rule}: each higher severity's limit must lie {word} the lower one's"
            )
        return levels


_FIELD_OF_RULE = {str(field.alias): name for name, field in RuleThresholds.model_fields.items()}


class RiseFromBaseline(_Strict):
    """bp.rise_from_baseline (medium): a rise of this many mmHg over the session's baseline."""

    systolic: Annotated[int, Field(ge=1, le=200)]
    diastolic: Annotated[int, Field(ge=1, le=200)]


class Screening(_Strict):
    """Baseline pressure above which `start` needs a clinician's review (esketamine label)."""

    systolic_max: Annotated[int, Field(ge=60, le=300)]
    diastolic_max: Annotated[int, Field(ge=30, le=200)]


class NearBaseline(_Strict):
    """vitals_near_baseline: within these rises over baseline, or under the absolute limits."""

    systolic_rise: Annotated[int, Field(ge=0, le=200)]
    diastolic_rise: Annotated[int, Field(ge=0, le=200)]
    heart_rate_rise: Annotated[int, Field(ge=0, le=200)]
    systolic_below: Annotated[int, Field(ge=60, le=300)]
    diastolic_below: Annotated[int, Field(ge=30, le=200)]
    heart_rate_below: Annotated[int, Field(ge=30, le=300)]


class Recovery(_Strict):
    min_observation_min: Annotated[float, Field(ge=0, le=1440)]
    min_observation_intranasal_min: Annotated[float, Field(ge=0, le=1440)]
    assessment_interval_min: Annotated[float, Field(gt=0, le=240)]
    resolved_within_min: Annotated[float, Field(gt=0, le=1440)]
    overdue_after_min: Annotated[float, Field(gt=0, le=1440)]
    vomiting_window_min: Annotated[float, Field(ge=0, le=1440)]
    near_baseline: NearBaseline


class ProtocolBody(_Strict):
    """A whole protocol: every section, every rule and every level it has; nothing is optional."""

    thresholds: RuleThresholds
    rise_from_baseline: RiseFromBaseline
    screening: Screening
    recovery: Recovery


@dataclass(frozen=True)
class Plausible:
    """The values a rule judges (PROTOCOL.md's plausible ranges); a limit outside them never
    fires, or always does."""

    what: str
    least: float
    most: float
    unit: str
    least_included: bool = True  # minutes: a limit of 0 would fire the moment the clock starts

    def admits(self, limit: float) -> bool:
        above_least = limit >= self.least if self.least_included else limit > self.least
        return above_least and limit <= self.most

    def requirement(self) -> str:
        if not self.least_included:
            return f"must be more than {self.least:g} {self.unit}"
        unit = f" {self.unit}" if self.unit else ""
        return f"must lie between {self.least:g} and {self.most:g}{unit}, the range of {self.what}"


_SYSTOLIC = Plausible("a systolic pressure", 20, 300, "mmHg")
_HEART_RATE = Plausible("a heart rate", 0, 300, "beats/min")
_RESPIRATORY_RATE = Plausible("a respiratory rate", 0, 60, "breaths/min")
_SEVERITY = Plausible("a severity (0 none … 3 severe)", 0, 3, "")
_MINUTES = Plausible("a time", 0, 1000, "minutes", least_included=False)
PLAUSIBLE: dict[str, Plausible] = {
    "bp.systolic.high": _SYSTOLIC,
    "bp.systolic.low": _SYSTOLIC,
    "bp.diastolic.high": Plausible("a diastolic pressure", 10, 200, "mmHg"),
    "hr.high": _HEART_RATE,
    "hr.low": _HEART_RATE,
    "spo2.low": Plausible("an SpO2", 0, 100, "%"),
    "rr.low": _RESPIRATORY_RATE,
    "rr.high": _RESPIRATORY_RATE,
    "news2": Plausible("a NEWS2 aggregate", 0, 20, "points"),
    "sedation.deep": Plausible("a MOAA/S score (0 no response … 5 alert)", 0, 5, ""),
    "dissociation.severe": _SEVERITY,
    "symptom.vomiting": _SEVERITY,
    "symptom.severe": _SEVERITY,
    "vitals.overdue": _MINUTES,
    "dissociation.unresolved": _MINUTES,
}
# Rules judging one value from either side: every limit of the low rule lies below every limit
# of the high one, so no value raises both.
OPPOSITE_RULES: tuple[tuple[str, str], ...] = (
    ("bp.systolic.low", "bp.systolic.high"),
    ("hr.low", "hr.high"),
    ("rr.low", "rr.high"),
)
# Recovery fields of which the first must stay below the second, and what goes wrong otherwise.
ORDERED_RECOVERY: tuple[tuple[str, str, str], ...] = (
    (
        "resolved_within_min",
        "overdue_after_min",
        "a resolution between them would read as early although it was overdue",
    ),
)


def contradictions(body: ProtocolBody) -> list[tuple[tuple[str, ...], float, str]]:
    """What makes ``body`` contradict itself or the values it judges: (loc, value, why)."""
    found: list[tuple[tuple[str, ...], float, str]] = []
    for rule, plausible in PLAUSIBLE.items():
        for level, limit in body.thresholds[rule].limits():
            if not plausible.admits(limit):
                why = f"{rule} {level} ({limit:g}) {plausible.requirement()}"
                found.append((("thresholds", rule, level), limit, why))
    for low_rule, high_rule in OPPOSITE_RULES:
        low, high = body.thresholds[low_rule].limits(), body.thresholds[high_rule].limits()
        highest_low, lowest_high = max(v for _, v in low), min(v for _, v in high)
        what, unit = PLAUSIBLE[low_rule].what, PLAUSIBLE[low_rule].unit
        for level, limit in low:
            if limit >= lowest_high:
                why = (
                    f"{low_rule} {level} ({limit:g}) must lie below {high_rule}'s lowest limit"
                    f" ({lowest_high:g} {unit}): {what} of {limit:g} would raise both"
                )
                found.append((("thresholds", low_rule, level), limit, why))
        for level, limit in high:
            if limit <= highest_low:
                why = (
                    f"{high_rule} {level} ({limit:g}) must lie above {low_rule}'s highest limit"
                    f" ({highest_low:g} {unit}): {what} of {limit:g} would raise both"
                )
                found.append((("thresholds", high_rule, level), limit, why))
    recovery = body.recovery
    for shorter, longer, consequence in ORDERED_RECOVERY:
        short, long = getattr(recovery, shorter), getattr(recovery, longer)
        if short >= long:
            why = f"{shorter} ({short:g}) must be shorter than {longer} ({long:g}): {consequence}"
            found += [(("recovery", shorter), short, why), (("recovery", longer), long, why)]
    return found


class ProtocolUpdate(ProtocolBody):
    """A new version replaces the one in force whole: send `GET /v1/protocol`'s answer, edited.

    Every limit lies within the plausible range of the value it judges; the limits of a low rule
    lie below those of its high rule (`bp.systolic`, `hr`, `rr`), and `resolved_within_min`
    below `overdue_after_min`.
    """

    version: int | None = Field(
        None, description="Ignored (the server numbers versions), so GET's answer can be sent back."
    )

    # On the request only: a version stored before these checks must still be read.
    @model_validator(mode="after")
    def _consistent(self) -> Self:
        errors = [
            InitErrorDetails(
                type=PydanticCustomError("protocol_contradiction", "{why}", {"why": why}),
                loc=loc,
                input=value,
            )
            for loc, value, why in contradictions(self)
        ]
        if errors:
            raise ValidationError.from_exception_data(type(self).__name__, errors)
        return self


class ProtocolRead(ProtocolBody):
    version: int
