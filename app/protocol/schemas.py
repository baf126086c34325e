"""The monitoring protocol as data: every number PROTOCOL.md names.

Rule codes, the levels each rule has, its direction and the shape of every section are fixed;
a clinic may change the numbers. A protocol is always a whole document: what `GET` answers is
what `PUT` takes, so no version is ever pieced together from defaults.
"""

from __future__ import annotations

from itertools import pairwise
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

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


class ProtocolUpdate(ProtocolBody):
    """A new version replaces the one in force whole: send `GET /v1/protocol`'s answer, edited."""

    version: int | None = Field(
        None, description="Ignored (the server numbers versions), so GET's answer can be sent back."
    )


class ProtocolRead(ProtocolBody):
    version: int
