"""After the infusion: does dissociation resolve in 30-60 minutes, and may the patient go home."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, or_, select
from sqlalchemy.orm import Session

from app.alerts import corrections
from app.alerts import store as alert_store
from app.alerts.engine import protocol_of
from app.db import table_of, utcnow
from app.hotpath import Prepared
from app.infusions.schemas import Route
from app.infusions.service import CLOCK_SKEW, baseline_of
from app.observations.models import Observation
from app.protocol.schemas import NearBaseline, ProtocolBody
from app.readings.models import Reading
from app.recovery.rules import minutes_between, resolution, shows_dissociation
from app.recovery.schemas import Assessment, Dissociation, RecoveryRead

_observations = table_of(Observation)
_readings = table_of(Reading)
_POST_OBSERVATIONS = Prepared(
    select(
        _observations.c.id,
        _observations.c.kind,
        _observations.c.measured_at,
        _observations.c.severity,
        _observations.c.cadss,
        _observations.c.moaas,
    )
    .where(
        _observations.c.infusion_id == bindparam("infusion_id"),
        _observations.c.status == "final",
        or_(
            _observations.c.kind == "dissociation",
            _observations.c.kind == "sedation",
            _observations.c.kind == "vomiting",
        ),
        _observations.c.measured_at >= bindparam("since"),
        _observations.c.measured_at <= bindparam("until"),
    )
    .order_by(_observations.c.measured_at, _observations.c.id)
)


def _latest_post(*columns: Any) -> Prepared:
    """The latest valid reading between ``since`` and ``until`` that has ``columns[0]``."""
    return Prepared(
        select(*columns)
        .where(
            _readings.c.infusion_id == bindparam("infusion_id"),
            _readings.c.status == "final",
            columns[0].is_not(None),
            _readings.c.measured_at >= bindparam("since"),
            _readings.c.measured_at <= bindparam("until"),
        )
        .order_by(_readings.c.measured_at.desc(), _readings.c.id.desc())
        .limit(1)
    )


_LATEST_POST_BP = _latest_post(_readings.c.systolic, _readings.c.diastolic)
_LATEST_POST_HR = _latest_post(_readings.c.heart_rate)


@dataclass(frozen=True)
class PostVitals:
    """What the latest valid post-infusion readings say: the newest blood pressure, and the
    newest heart rate (None when none was taken after the end)."""

    systolic: int
    diastolic: int
    heart_rate: int | None


def post_vitals(
    db: Session, infusion_id: Any, since: datetime, until: datetime
) -> PostVitals | None:
    """None without a post-infusion blood pressure: nearness to baseline cannot be judged."""
    params = {"infusion_id": infusion_id, "since": since, "until": until}
    bp = _LATEST_POST_BP.first(db, params)
    if bp is None:
        return None
    hr = _LATEST_POST_HR.first(db, params)
    return PostVitals(bp.systolic, bp.diastolic, hr.heart_rate if hr is not None else None)


def near_baseline(rule: NearBaseline, reading: PostVitals | None, baseline: Any | None) -> bool:
    """PROTOCOL.md: close to the session's baseline, or under the absolute limits. Each vital is
    its latest post-infusion value, so a later reading of one vital is never ignored."""
    if reading is None:
        return False
    hr = reading.heart_rate
    absolute = (
        reading.systolic < rule.systolic_below
        and reading.diastolic < rule.diastolic_below
        and (hr is None or hr < rule.heart_rate_below)
    )
    if baseline is None:
        return absolute
    relative = (
        reading.systolic <= baseline.systolic + rule.systolic_rise
        and reading.diastolic <= baseline.diastolic + rule.diastolic_rise
        # A pulse taken now with none at baseline cannot be near it: the absolute limit decides.
        and (
            hr is None
            or (
                baseline.heart_rate is not None and hr <= baseline.heart_rate + rule.heart_rate_rise
            )
        )
    )
    return relative or absolute


def recovery(db: Session, infusion: Any, at: datetime) -> RecoveryRead:
    """The recovery picture judged at ``at`` (now for a read, the discharge time for a discharge)."""
    protocol = protocol_of(db, infusion)
    rules = protocol.recovery
    ended = infusion.infusion_ended_at
    # Vomiting counts in the window before ``at`` even when that reaches back into the infusion.
    vomiting_since = at - timedelta(minutes=rules.vomiting_window_min)
    since = vomiting_since if ended is None else min(ended, vomiting_since)
    found = _POST_OBSERVATIONS.all(db, {"infusion_id": infusion.id, "since": since, "until": at})
    vomiting = [o for o in found if o.kind == "vomiting" and o.measured_at >= vomiting_since]
    if ended is None:  # no recovery yet; what else would block a discharge is listed as well
        blockers = ["min_observation_time", "dissociation_unresolved", "vitals_not_near_baseline"]
        if _vomited(vomiting):
            blockers.append("vomiting")
        if _open_high_alerts(db, infusion, at):
            blockers.append("open_high_alerts")
        return RecoveryRead(
            session_id=infusion.id, infusion_ended_at=None, minutes_since_end=None, status="infusion_not_ended",
            dissociation=Dissociation(resolved_at=None, minutes_to_resolution=None, last_severity=None, assessments=[]),
            next_assessment_due_at=None, vitals_near_baseline=False, discharge_ready=False,
            discharge_blockers=blockers,
        )  # fmt: skip
    observations = [o for o in found if o.measured_at >= ended]
    # Dissociation is judged from assessments measured after the end (not at it: an assessment
    # at the end itself describes the infusion, and would resolve it in 0 minutes).
    assessments = [o for o in observations if o.kind == "dissociation" and o.measured_at > ended]
    resolved = resolution(assessments)
    since_end = minutes_between(ended, at)
    minutes_to_resolution = (
        minutes_between(ended, resolved.measured_at) if resolved is not None else None
    )
    status = _status(
        rules.resolved_within_min, rules.overdue_after_min, since_end, minutes_to_resolution
    )
    interval = timedelta(minutes=rules.assessment_interval_min)
    next_due = None
    if resolved is None:
        next_due = (assessments[-1].measured_at if assessments else ended) + interval
    baseline = baseline_of(db, infusion)
    near = near_baseline(rules.near_baseline, post_vitals(db, infusion.id, ended, at), baseline)
    blockers = _blockers(
        db, infusion, protocol, at, since_end, resolved is not None, observations, vomiting, near
    )
    return RecoveryRead(
        session_id=infusion.id,
        infusion_ended_at=ended,
        minutes_since_end=since_end,
        status=status,
        dissociation=Dissociation(
            resolved_at=resolved.measured_at if resolved is not None else None,
            minutes_to_resolution=minutes_to_resolution,
            last_severity=assessments[-1].severity if assessments else None,
            assessments=[
                Assessment(
                    id=a.id,
                    measured_at=a.measured_at,
                    severity=a.severity,
                    cadss=a.cadss,
                    shows_dissociation=shows_dissociation(a.severity, a.cadss),
                )
                for a in assessments
            ],
        ),
        next_assessment_due_at=next_due,
        vitals_near_baseline=near,
        discharge_ready=not blockers,
        discharge_blockers=blockers,
    )


def _status(
    within: float, overdue_after: float, since_end: float, to_resolution: float | None
) -> Any:
    if to_resolution is not None:
        if to_resolution <= within:
            return "resolved_within_30"
        return "resolved_within_60" if to_resolution <= overdue_after else "resolved_after_60"
    return "pending" if since_end < overdue_after else "unresolved_overdue"


def _blockers(
    db: Session,
    infusion: Any,
    protocol: ProtocolBody,
    at: datetime,
    since_end: float,
    resolved: bool,
    observations: list[Any],
    vomiting: list[Any],
    near: bool,
) -> list[Any]:
    rules = protocol.recovery
    blockers: list[Any] = []
    minimum = (
        rules.min_observation_intranasal_min
        if infusion.route == Route.INTRANASAL
        else rules.min_observation_min
    )
    if since_end < minimum:
        blockers.append("min_observation_time")
    if not resolved:
        blockers.append("dissociation_unresolved")
    sedation = [o for o in observations if o.kind == "sedation"]
    if sedation and sedation[-1].moaas < 5:
        blockers.append("sedation")
    if not near:
        blockers.append("vitals_not_near_baseline")
    if _vomited(vomiting):
        blockers.append("vomiting")
    if _open_high_alerts(db, infusion, at):
        blockers.append("open_high_alerts")
    return blockers


def _vomited(vomiting: list[Any]) -> bool:
    return any((o.severity or 0) >= 1 for o in vomiting)


def _open_high_alerts(db: Session, infusion: Any, at: datetime) -> bool:
    """Any active high alert, acknowledged or not. A discharge dated back counts only the
    alerts that were high by then (evidence measured later, or an escalation after it, did not
    stand in its way); judged at the present, every active high alert counts (its evidence may
    lie up to the allowed clock skew ahead)."""
    high = [
        a for a in alert_store.active_alerts(db, infusion.id).values() if a["severity"] == "high"
    ]
    if at >= utcnow() - CLOCK_SKEW:
        return bool(high)
    return any(corrections.high_by(db, infusion, a, at) for a in high)
