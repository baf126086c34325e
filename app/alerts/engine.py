"""Judging evidence against the protocol, in the transaction that stores the evidence."""

from __future__ import annotations

import uuid
from datetime import datetime
from types import SimpleNamespace
from typing import Any

from prometheus_client import Counter
from sqlalchemy import bindparam, func, select, update
from sqlalchemy.orm import Session

from app.alerts import lifecycle, store
from app.alerts.models import Alert, AlertEvidence
from app.alerts.news2 import CARRY_FORWARD, DEFAULT_CARRY_FORWARD, News2, compute
from app.alerts.rules import (
    SEVERITY_RANK,
    Finding,
    deadline_of,
    grade,
    news2_finding,
    observation_finding,
    reading_findings,
    time_finding,
)
from app.db import table_of
from app.hotpath import Prepared
from app.infusions.models import Infusion
from app.infusions.schemas import InfusionStatus as S
from app.infusions.timeline import phase_at
from app.observations.models import Observation
from app.observations.schemas import SYMPTOM_KINDS
from app.protocol import service as protocols
from app.protocol.schemas import ProtocolBody
from app.readings.models import CARRIED_FORWARD, Reading
from app.recovery.rules import resolution

ALERTS_RAISED = Counter(
    "vigil_alerts_raised_total", "Alerts opened or escalated", ["rule", "severity"]
)

_readings = table_of(Reading)
_observations = table_of(Observation)
_infusions = table_of(Infusion)
_alerts = table_of(Alert)
_evidence = table_of(AlertEvidence)
_NEWS2_FIELDS = ("id", "measured_at", "heart_rate", "systolic", "diastolic", "spo2", "respiratory_rate",
                 "temperature_c", "consciousness", "on_oxygen")  # fmt: skip
# Per NEWS2 parameter: the latest valid value of the session measured in [since, until].
_LATEST_WITH = {
    name: Prepared(
        select(_readings.c.measured_at, _readings.c[name].label("value"))
        .where(
            _readings.c.infusion_id == bindparam("infusion_id"),
            _readings.c.status == "final",
            _readings.c[name].is_not(None),
            _readings.c.measured_at >= bindparam("since"),
            _readings.c.measured_at <= bindparam("until"),
            _readings.c.id != bindparam("id"),
        )
        .order_by(_readings.c.measured_at.desc(), _readings.c.id.desc())
        .limit(1)
    )
    for name in CARRIED_FORWARD
}
_LAST_READING_AT = Prepared(
    select(func.max(_readings.c.measured_at).label("at")).where(
        _readings.c.infusion_id == bindparam("infusion_id"), _readings.c.status == "final"
    )
)
_POST_ASSESSMENTS = Prepared(
    select(
        _observations.c.id,
        _observations.c.measured_at,
        _observations.c.severity,
        _observations.c.cadss,
    )
    .where(
        _observations.c.infusion_id == bindparam("infusion_id"),
        _observations.c.status == "final",
        _observations.c.kind == "dissociation",
        _observations.c.measured_at > bindparam("ended_at"),  # after the end, not at it
    )
    .order_by(_observations.c.measured_at, _observations.c.id)
)
_READINGS_FROM = Prepared(
    select(*(_readings.c[name] for name in _NEWS2_FIELDS))
    .where(
        _readings.c.infusion_id == bindparam("infusion_id"),
        _readings.c.status == "final",
        _readings.c.measured_at >= bindparam("since"),
    )
    .order_by(_readings.c.measured_at, _readings.c.id)
)
# The reading rules that hold in one phase only (PROTOCOL.md: a rise is judged after the start,
# reduced consciousness during recovery).
PHASE_RULES = {"intra": frozenset({"bp.rise_from_baseline"}),
               "post": frozenset({"consciousness.reduced"})}  # fmt: skip
# The notes the discharge and abort transitions resolve a session's alerts with.
CLOSING_NOTES = {S.DISCHARGED: "session discharged", S.ABORTED: "session aborted"}
_SET_NEXT_CHECK = Prepared(
    update(_infusions)
    .where(_infusions.c.id == bindparam("infusion_id"))
    .values(next_check_at=bindparam("at"))
)


def protocol_of(db: Session, infusion: Any) -> ProtocolBody:
    return protocols.protocol(db, infusion.clinic_id, infusion.protocol_version)


def _apply(
    db: Session,
    infusion: Any,
    active: dict[str, dict[str, Any]],
    findings: list[Finding],
    *,
    seen_at: datetime,
    now: datetime,
    reading_id: uuid.UUID | None = None,
    observation_id: uuid.UUID | None = None,
) -> list[dict[str, Any]]:
    """Open, update, clear or latch the session's alerts for these findings."""
    changed = []
    for finding in findings:
        alert = active.get(finding.rule)
        if finding.severity is not None:
            if alert is None:
                after = lifecycle.open_alert(
                    finding, infusion=infusion, seen_at=seen_at, now=now, protocol_version=infusion.protocol_version,
                    reading_id=reading_id, observation_id=observation_id,
                )  # fmt: skip
                ALERTS_RAISED.labels(finding.rule, finding.severity).inc()
            else:
                after = lifecycle.violate(
                    alert,
                    finding,
                    seen_at=seen_at,
                    reading_id=reading_id,
                    observation_id=observation_id,
                )
                if after["severity"] != alert["severity"]:
                    ALERTS_RAISED.labels(finding.rule, after["severity"]).inc()
            if after["last_seen_at"] == seen_at and after["cleared_at"] is None:
                after = _cleared_meanwhile(db, infusion, after, now)
            stored = store.save(db, alert, after, now)
            store.add_evidence(
                db, stored["id"], reading_id=reading_id, observation_id=observation_id
            )
        elif alert is not None:
            cleared = lifecycle.clear(alert, at=seen_at, now=now)
            if cleared is None:
                continue
            stored = store.save(db, alert, cleared, now)
        else:
            continue
        changed.append(stored)
        if stored["status"] == "resolved":
            active.pop(finding.rule, None)
        else:
            active[finding.rule] = stored
    return changed


def _cleared_meanwhile(
    db: Session, infusion: Any, alert: dict[str, Any], now: datetime
) -> dict[str, Any]:
    """A late entry's violation: evidence measured after it may no longer violate, and then
    clears the alert as it did when it arrived in bedside order."""
    from app.alerts.corrections import reclear  # corrections builds on this module

    return reclear(db, infusion, alert, now)


def evaluate_readings(
    db: Session, infusion: Any, rows: list[dict[str, Any]], baseline: Any | None, now: datetime
) -> dict[uuid.UUID, tuple[News2, list[dict[str, Any]]]]:
    """NEWS2 and the alerts each new reading opened or updated, judged in measured_at order."""
    protocol = protocol_of(db, infusion)
    active = store.active_alerts(db, infusion.id)
    results: dict[uuid.UUID, tuple[News2, list[dict[str, Any]]]] = {}
    ordered = sorted(rows, key=lambda r: (r["measured_at"], str(r["id"])))
    for row in ordered:
        at = row["measured_at"]
        news2, findings = judge_reading(db, infusion, protocol, SimpleNamespace(**row), baseline)
        changed = _apply(db, infusion, active, findings, seen_at=at, now=now, reading_id=row["id"])
        results[row["id"]] = (news2, changed)
    if ordered:
        last = _LAST_READING_AT.first(db, {"infusion_id": infusion.id})
        assert last is not None  # an aggregate: one row, and the new readings are in it
        late = [row for row in ordered if row["measured_at"] < last.at]
        if late:
            carried = _judge_news2_carried_into(db, infusion, protocol, active, late, now)
            results[late[-1]["id"]][1].extend(carried)
        time_changes = evaluate_time_rules(
            db, infusion, now, active=active, protocol=protocol, last_reading_at=last.at,
            raising=False,
        )  # fmt: skip
        results[ordered[-1]["id"]][1].extend(time_changes)
        _end_with_session(db, infusion, now, [changed for _, changed in results.values()])
    return results


def _judge_news2_carried_into(
    db: Session,
    infusion: Any,
    protocol: ProtocolBody,
    active: dict[str, dict[str, Any]],
    late: list[dict[str, Any]],
    now: datetime,
) -> list[dict[str, Any]]:
    """Judge the NEWS2 of readings measured after late entries whose values they carry forward.

    A reading that lacked a parameter when it arrived may now carry it forward from a late
    entry measured before it: its NEWS2 can become complete, or change, and is judged again as
    it would have been in bedside order. Readings already evidence of a NEWS2 alert were
    counted and are not counted twice.
    """
    new_ids = {row["id"] for row in late}
    since = min(row["measured_at"] for row in late)
    candidates = []
    for reading in _READINGS_FROM.all(db, {"infusion_id": infusion.id, "since": since}):
        if reading.id in new_ids:
            continue
        lacking = [name for name in CARRIED_FORWARD if getattr(reading, name) is None]
        if any(
            row[name] is not None
            and row["measured_at"] <= reading.measured_at
            and reading.measured_at - row["measured_at"]
            <= CARRY_FORWARD.get(name, DEFAULT_CARRY_FORWARD)
            for name in lacking
            for row in late
        ):
            candidates.append(reading)
    if not candidates:
        return []
    counted = set(
        db.scalars(
            select(_evidence.c.reading_id)
            .join(_alerts, _alerts.c.id == _evidence.c.alert_id)
            .where(
                _alerts.c.infusion_id == infusion.id,
                _alerts.c.rule == "news2",
                _evidence.c.reading_id.in_([r.id for r in candidates]),
            )
        )
    )
    changed: list[dict[str, Any]] = []
    for reading in candidates:
        if reading.id in counted:
            continue
        news2 = compute(reading, _carry_candidates(db, infusion.id, reading))
        if not news2.complete:
            continue
        finding = news2_finding(protocol, news2)
        changed += _apply(
            db, infusion, active, [finding], seen_at=reading.measured_at, now=now,
            reading_id=reading.id,
        )  # fmt: skip
    return changed


def judge_moved_readings(
    db: Session, infusion: Any, phase: str, since: datetime, baseline: Any | None, now: datetime
) -> list[dict[str, Any]]:
    """Judge the readings a transition dated back has moved into ``phase`` by its own rules.

    A tablet may post readings before the nurse records a start or an end that came earlier:
    those readings were judged in the phase they then fell in, and now belong to a phase with
    a rule of its own. The other rules judged them already and are not judged twice.
    """
    rows = [
        row
        for row in _READINGS_FROM.all(db, {"infusion_id": infusion.id, "since": since})
        if phase_at(infusion, row.measured_at) == phase
    ]
    if not rows:
        return []
    protocol = protocol_of(db, infusion)
    active = store.active_alerts(db, infusion.id)
    changed = []
    for row in rows:
        _, findings = judge_reading(db, infusion, protocol, row, baseline, carry_forward=False)
        own = [f for f in findings if f.rule in PHASE_RULES[phase]]
        changed += _apply(
            db, infusion, active, own, seen_at=row.measured_at, now=now, reading_id=row.id
        )
    return changed


def judge_reading(
    db: Session,
    infusion: Any,
    protocol: ProtocolBody,
    reading: Any,
    baseline: Any | None,
    *,
    carry_forward: bool = True,
) -> tuple[News2, list[Finding]]:
    """A reading's NEWS2 and findings (without carry-forward its NEWS2 is the reading's own)."""
    candidates = _carry_candidates(db, infusion.id, reading) if carry_forward else []
    news2 = compute(reading, candidates)
    phase = phase_at(infusion, reading.measured_at)
    return news2, reading_findings(protocol, reading, phase=phase, baseline=baseline, news2=news2)


def observation_findings(protocol: ProtocolBody, row: Any) -> list[Finding]:
    """The observation rule this observation is judged on, as a finding (none for other kinds)."""
    kind = row["kind"]
    if kind == "sedation":
        return [observation_finding(protocol, "sedation.deep", row["moaas"], "MOAA/S")]
    if kind == "dissociation":
        label = "Dissociation severity"
        return [observation_finding(protocol, "dissociation.severe", row["severity"], label)]
    if kind == "vomiting":
        label = "Vomiting severity"
        return [observation_finding(protocol, "symptom.vomiting", row["severity"], label)]
    if kind in SYMPTOM_KINDS:
        label = f"{kind.replace('_', ' ').capitalize()} severity"
        return [observation_finding(protocol, "symptom.severe", row["severity"], label)]
    return []


def evaluate_observation(
    db: Session, infusion: Any, row: dict[str, Any], now: datetime
) -> list[dict[str, Any]]:
    """The alerts an observation opened or updated; observation rules judge the latest state."""
    protocol = protocol_of(db, infusion)
    active = store.active_alerts(db, infusion.id)
    kind, at = row["kind"], row["measured_at"]
    findings = [
        finding
        for finding in observation_findings(protocol, row)
        # One alert covers every symptom: it clears only when no symptom's latest assessment
        # is still severe (a mild headache does not clear a severe nausea).
        if finding.rule != "symptom.severe"
        or finding.severity is not None
        or not any_symptom_still_severe(db, infusion.id, protocol, at)
    ]
    changed = _apply(db, infusion, active, findings, seen_at=at, now=now, observation_id=row["id"])
    if kind == "dissociation":
        changed.extend(
            evaluate_time_rules(db, infusion, now, active=active, protocol=protocol, raising=False)
        )
    _end_with_session(db, infusion, now, [changed])
    return changed


def evaluate_time_rules(
    db: Session,
    infusion: Any,
    now: datetime,
    *,
    active: dict[str, dict[str, Any]] | None = None,
    protocol: ProtocolBody | None = None,
    last_reading_at: datetime | None = None,
    raising: bool = True,
) -> list[dict[str, Any]]:
    """Judge vitals.overdue and dissociation.unresolved at ``now``; keep next_check_at in step.

    ``last_reading_at``: the session's latest valid measured_at, when the caller knows it.
    ``raising=False`` (a write): alerts whose condition ended are resolved, but none is opened,
    escalated or moved; a due one is left to the next read (next_check_at is now). A tablet
    syncing a session's entries late thus raises no overdue alert that lasts only until its
    next entry of the sync: the time rules judge what the reader of alerts sees.
    """
    protocol = protocol or protocol_of(db, infusion)
    active = store.active_alerts(db, infusion.id) if active is None else active
    changed: list[dict[str, Any]] = []
    next_checks: list[datetime] = []
    clocks: dict[str, datetime | None] = {"vitals.overdue": None, "dissociation.unresolved": None}
    if infusion.status == S.IN_PROGRESS:
        if last_reading_at is None:
            last = _LAST_READING_AT.first(db, {"infusion_id": infusion.id})
            last_reading_at = last.at if last else None
        clocks["vitals.overdue"] = max(
            t for t in (infusion.started_at, last_reading_at) if t is not None
        )
    if infusion.status == S.RECOVERY and infusion.infusion_ended_at is not None:
        assessments = _POST_ASSESSMENTS.all(
            db, {"infusion_id": infusion.id, "ended_at": infusion.infusion_ended_at}
        )
        if resolution(assessments) is None:
            clocks["dissociation.unresolved"] = infusion.infusion_ended_at
    for rule, since in clocks.items():
        alert = active.get(rule)
        finding, began = Finding(rule, None), None
        if since is not None:
            finding, next_change = time_finding(protocol, rule, since, now)
            if next_change is not None:
                next_checks.append(next_change)
            began = deadline_of(protocol, rule, since, protocol.thresholds[rule].limits()[0][0])
        # Time rules do not latch: an alert resolves when its condition ends, also when a valid
        # reading restarted the clock after the alert's began (a gap still too long opens anew).
        restarted = alert is not None and began is not None and began > alert["first_seen_at"]
        if alert is not None and (finding.severity is None or restarted):
            resolved = lifecycle.resolve(alert, now=now, note="condition ended")
            changed.append(store.save(db, alert, resolved, now))
            active.pop(rule)
            alert = None
        if since is None or finding.severity is None:
            continue
        deadline = deadline_of(protocol, rule, since, finding.severity)
        # The clock ran from a reading since entered in error: it runs from earlier now.
        moved_back = alert is not None and began is not None and began < alert["first_seen_at"]
        if not raising:
            if (
                alert is None
                or moved_back
                or SEVERITY_RANK[finding.severity] > SEVERITY_RANK[alert["severity"]]
            ):
                next_checks.append(now)
            continue
        if alert is None:
            after = lifecycle.open_alert(
                finding, infusion=infusion, seen_at=deadline, now=now, protocol_version=infusion.protocol_version,
                first_seen_at=began,
            )  # fmt: skip
            ALERTS_RAISED.labels(rule, finding.severity).inc()
        elif SEVERITY_RANK[finding.severity] > SEVERITY_RANK[alert["severity"]]:
            after = lifecycle.violate(alert, finding, seen_at=deadline)
            ALERTS_RAISED.labels(rule, finding.severity).inc()
        elif moved_back:
            after = dict(alert)
        else:
            continue
        if moved_back:  # the minutes elapsed are counted from the earlier clock, too
            after.update(first_seen_at=began, last_seen_at=deadline, value=finding.value,
                         message=finding.message)  # fmt: skip
        stored = store.save(db, alert, after, now)
        active[rule] = stored
        changed.append(stored)
    next_check = min(next_checks) if next_checks else None
    if next_check != infusion.next_check_at:
        _SET_NEXT_CHECK.execute(db, {"infusion_id": infusion.id, "at": next_check})
    return changed


def resolve_all(db: Session, infusion: Any, note: str, now: datetime) -> list[dict[str, Any]]:
    """Resolve every active alert of the session (it was discharged or aborted)."""
    changed = [
        store.save(db, alert, lifecycle.resolve(alert, now=now, note=note), now)
        for alert in store.active_alerts(db, infusion.id).values()
    ]
    _SET_NEXT_CHECK.execute(db, {"infusion_id": infusion.id, "at": None})
    return changed


def _end_with_session(
    db: Session, infusion: Any, now: datetime, answers: list[list[dict[str, Any]]]
) -> None:
    """A late entry into a closed session: the alerts it raised end with the session at once.

    ``answers`` are the alert lists the request returns; each alert is shown as it stands.
    """
    if infusion.status not in CLOSING_NOTES:
        return
    closed = resolve_all(db, infusion, CLOSING_NOTES[infusion.status], now)
    final = {alert["id"]: alert for alert in closed}
    for changed in answers:
        changed[:] = [final.get(alert["id"], alert) for alert in changed]


def news2_of(db: Session, infusion: Any, reading: Any) -> News2:
    """A stored reading's NEWS2, with the carry-forward it had."""
    return compute(reading, _carry_candidates(db, infusion.id, reading))


def _carry_candidates(db: Session, infusion_id: uuid.UUID, reading: Any) -> list[Any]:
    """For each NEWS2 parameter the reading lacks, the session's latest earlier valid value.

    One indexed look-up per missing parameter (none for a full set of vitals), not a scan of
    every reading in the carry-forward window.
    """
    at = reading.measured_at
    found = []
    for name, statement in _LATEST_WITH.items():
        if getattr(reading, name) is None:
            since = at - CARRY_FORWARD.get(name, DEFAULT_CARRY_FORWARD)
            row = statement.first(
                db, {"infusion_id": infusion_id, "since": since, "until": at, "id": reading.id}
            )
            if row is not None:
                found.append(
                    SimpleNamespace(
                        **{
                            **dict.fromkeys(_NEWS2_FIELDS),
                            "measured_at": row.measured_at,
                            name: row.value,
                        }
                    )
                )
    return found


def any_symptom_still_severe(
    db: Session, infusion_id: uuid.UUID, protocol: ProtocolBody, at: datetime
) -> bool:
    """Whether some symptom's latest valid observation up to ``at`` still violates symptom.severe."""
    query = (
        select(_observations.c.kind, _observations.c.severity)
        .where(
            _observations.c.infusion_id == infusion_id,
            _observations.c.status == "final",
            _observations.c.kind.in_([k for k in SYMPTOM_KINDS if k != "vomiting"]),
            _observations.c.measured_at <= at,
        )
        .order_by(_observations.c.measured_at.desc(), _observations.c.id.desc())
    )
    latest: dict[str, int] = {}
    for kind, severity in db.execute(query):
        latest.setdefault(kind, severity)
    return any(
        grade(protocol, "symptom.severe", severity) is not None for severity in latest.values()
    )
