"""The threshold rules of PROTOCOL.md as pure functions: values in, findings out."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from app.alerts.news2 import News2
from app.protocol.schemas import DIRECTIONS, ProtocolBody, Severity
from app.recovery.rules import minutes_between

# Rule code -> (reading field, label, unit) for the plain vital rules.
VITAL_RULES: dict[str, tuple[str, str, str]] = {
    "bp.systolic.high": ("systolic", "Systolic", "mmHg"),
    "bp.diastolic.high": ("diastolic", "Diastolic", "mmHg"),
    "bp.systolic.low": ("systolic", "Systolic", "mmHg"),
    "hr.high": ("heart_rate", "Heart rate", "/min"),
    "hr.low": ("heart_rate", "Heart rate", "/min"),
    "spo2.low": ("spo2", "SpO2", "%"),
    "rr.low": ("respiratory_rate", "Respiratory rate", "/min"),
    "rr.high": ("respiratory_rate", "Respiratory rate", "/min"),
}
READING_RULES = (*VITAL_RULES, "bp.rise_from_baseline", "consciousness.reduced", "news2")
OBSERVATION_RULES = ("sedation.deep", "dissociation.severe", "symptom.vomiting", "symptom.severe")
TIME_RULES = ("vitals.overdue", "dissociation.unresolved")
ALL_RULES = (*READING_RULES, *OBSERVATION_RULES, *TIME_RULES)
SEVERITY_RANK = {"low": 1, "medium": 2, "high": 3}


@dataclass(frozen=True)
class Finding:
    """A rule judged on some evidence: violated with a severity, or (severity None) not violated."""

    rule: str
    severity: Severity | None
    value: float | None = None
    threshold: float | None = None
    message: str = ""


def grade(protocol: ProtocolBody, rule: str, value: float) -> tuple[Severity, float] | None:
    """The highest severity whose limit ``value`` reaches, with that limit; None if none."""
    rising = DIRECTIONS[rule] == "above"
    reached = None
    for severity, limit in protocol.thresholds[rule].limits():
        if (value >= limit) if rising else (value <= limit):
            reached = (severity, limit)
    return reached


def _fmt(value: float) -> str:
    return f"{value:g}"


def _threshold_finding(
    protocol: ProtocolBody, rule: str, value: float, label: str, unit: str
) -> Finding:
    graded = grade(protocol, rule, value)
    if graded is None:
        return Finding(rule, None, value)
    severity, limit = graded
    sign = "≥" if DIRECTIONS[rule] == "above" else "≤"
    return Finding(
        rule,
        severity,
        value,
        limit,
        " ".join(filter(None, [label, _fmt(value), unit, sign, _fmt(limit)])),
    )


def reading_findings(
    protocol: ProtocolBody,
    reading: Any,
    *,
    phase: str,
    baseline: Any | None,
    news2: News2,
) -> list[Finding]:
    """Every reading rule this reading can be judged on (rules on absent parameters are left out)."""
    findings = []
    for rule, (field, label, unit) in VITAL_RULES.items():
        value = getattr(reading, field)
        if value is not None:
            findings.append(_threshold_finding(protocol, rule, value, label, unit))
    if phase != "pre" and baseline is not None and reading.systolic is not None:
        rise = protocol.rise_from_baseline
        sys_limit, dia_limit = (
            baseline.systolic + rise.systolic,
            baseline.diastolic + rise.diastolic,
        )
        if reading.systolic >= sys_limit:
            message = (
                f"Systolic {reading.systolic} mmHg ≥ baseline {baseline.systolic} + {rise.systolic}"
            )
            findings.append(
                Finding("bp.rise_from_baseline", "medium", reading.systolic, sys_limit, message)
            )
        elif reading.diastolic >= dia_limit:
            message = f"Diastolic {reading.diastolic} mmHg ≥ baseline {baseline.diastolic} + {rise.diastolic}"
            findings.append(
                Finding("bp.rise_from_baseline", "medium", reading.diastolic, dia_limit, message)
            )
        else:
            findings.append(Finding("bp.rise_from_baseline", None, reading.systolic))
    if phase == "post" and reading.consciousness is not None:
        if reading.consciousness != "alert":
            message = f"Consciousness {reading.consciousness} after the infusion"
            findings.append(Finding("consciousness.reduced", "high", None, None, message))
        else:
            findings.append(Finding("consciousness.reduced", None))
    if news2.complete:
        findings.append(news2_finding(protocol, news2))
    return findings


def news2_finding(protocol: ProtocolBody, news2: News2) -> Finding:
    graded = grade(protocol, "news2", news2.score)
    medium_limit = protocol.thresholds["news2"].medium
    if graded is None and news2.has_single_three and medium_limit is not None:
        message = f"NEWS2 {news2.score}: a single parameter scores 3"
        return Finding("news2", "medium", news2.score, medium_limit, message)
    if graded is None:
        return Finding("news2", None, news2.score)
    severity, limit = graded
    return Finding("news2", severity, news2.score, limit, f"NEWS2 {news2.score} ≥ {_fmt(limit)}")


def observation_finding(
    protocol: ProtocolBody, rule: str, value: float | None, label: str
) -> Finding:
    """An observation rule judged on the deciding value (None: nothing left that could violate)."""
    if value is None:
        return Finding(rule, None)
    return _threshold_finding(protocol, rule, value, label, "")


def time_finding(
    protocol: ProtocolBody, rule: str, since: datetime, now: datetime
) -> tuple[Finding, datetime | None]:
    """A time rule judged at ``now`` on a clock running since ``since``; also when it next changes."""
    elapsed = minutes_between(since, now)
    limits = protocol.thresholds[rule].limits()
    next_change = next(
        (since + _minutes(limit) for _, limit in limits if elapsed < limit),
        None,
    )
    graded = grade(protocol, rule, elapsed)
    if graded is None:
        return Finding(rule, None, round(elapsed, 2)), next_change
    severity, limit = graded
    label = "No valid vital signs" if rule == "vitals.overdue" else "Dissociation not resolved"
    message = f"{label} for {elapsed:.0f} min (≥ {_fmt(limit)})"
    return Finding(rule, severity, round(elapsed, 2), limit, message), next_change


def deadline_of(protocol: ProtocolBody, rule: str, since: datetime, severity: Severity) -> datetime:
    """When a time rule reached ``severity``: its bedside time."""
    limit = getattr(protocol.thresholds[rule], severity)
    return since + _minutes(limit)


def _minutes(value: float) -> timedelta:
    return timedelta(minutes=value)
