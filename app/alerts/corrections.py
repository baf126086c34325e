"""Correcting a session's alerts when a reading or observation is entered in error.

What an active alert says about its evidence (its value, last_seen_at and the entry it names,
and its cleared_at) comes from valid evidence only: when the entry it came from is voided, it
is taken from the valid evidence that remains, and an alert left without any is resolved.

Two rules judge a reading with the help of others: NEWS2 fills what a reading lacks with values
carried forward, and the rise from baseline compares with the baseline reading. Voiding any
reading may take away what made their evidence violate, so their evidence is judged again: an
alert keeps the latest evidence that still violates, and is resolved when none does.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from functools import cached_property
from typing import Any

from sqlalchemy import Table, select
from sqlalchemy.orm import Session

from app.alerts import engine, lifecycle, store
from app.alerts import queries as alert_queries
from app.alerts.models import AlertEvidence
from app.alerts.rules import OBSERVATION_RULES, READING_RULES, TIME_RULES, Finding
from app.db import table_of
from app.infusions.service import baseline_of
from app.observations.models import Observation
from app.observations.schemas import SYMPTOM_KINDS
from app.readings.models import Reading

_evidence = table_of(AlertEvidence)
_readings = table_of(Reading)
_observations = table_of(Observation)
# The observation kinds each observation rule is judged on.
_KINDS = {
    "sedation.deep": ["sedation"],
    "dissociation.severe": ["dissociation"],
    "symptom.vomiting": ["vomiting"],
    "symptom.severe": [k for k in SYMPTOM_KINDS if k != "vomiting"],
}
# Reading rules whose finding depends on other readings (carried-forward values, the baseline).
_JUDGED_WITH_OTHERS = frozenset({"news2", "bp.rise_from_baseline"})


def correct(
    db: Session,
    infusion: Any,
    reason: str,
    now: datetime,
    *,
    reading_id: uuid.UUID | None = None,
    observation_id: uuid.UUID | None = None,
) -> list[dict[str, Any]]:
    """Correct the active alerts of the rules judged on this entry; re-judge the time rules."""
    voided = reading_id or observation_id
    judged_on = READING_RULES if reading_id is not None else OBSERVATION_RULES
    evidenced = {
        alert["id"]
        for alert in alert_queries.alerts_with_evidence(
            db, reading_id=reading_id, observation_id=observation_id
        )
    }
    judge = _Judge(db, infusion)
    active = store.active_alerts(db, infusion.id)
    changed = []
    for rule, alert in list(active.items()):
        if rule not in judged_on:
            continue
        after = alert
        judged_again = reading_id is not None and rule in _JUDGED_WITH_OTHERS
        if alert["id"] in evidenced or judged_again:
            # The valid evidence that still violates, latest first (judged again if need be).
            violations = (
                judge.violations(alert) if judged_again else list(_valid_evidence(db, alert))
            )
            if not violations:  # it was the only evidence, or all that made the rest violate
                after = lifecycle.resolve(alert, now=now, note=f"entered-in-error: {reason}")
            else:
                if judged_again or voided in (alert["reading_id"], alert["observation_id"]):
                    after = judge.refer_to(alert, violations[0])
                # A voided first violation no longer dates the alert nor counts in it.
                after = {**after, "count": len(violations),
                         "first_seen_at": min(v.measured_at for v in violations)}  # fmt: skip
                after = judge.recleared(after, now)
        elif alert["cleared_at"] is not None:  # this entry may be the one that cleared it
            after = judge.recleared(alert, now)
        if after == alert:
            continue
        stored = store.save(db, alert, after, now)
        changed.append(stored)
        if stored["status"] == "resolved":
            active.pop(rule)
        else:
            active[rule] = stored
    changed.extend(
        engine.evaluate_time_rules(
            db, infusion, now, active=active, protocol=judge.protocol, raising=False
        )
    )
    return changed


def reclear(db: Session, infusion: Any, alert: dict[str, Any], now: datetime) -> dict[str, Any]:
    """The alert with cleared_at as its valid evidence decides it (see ``_Judge.recleared``)."""
    return _Judge(db, infusion).recleared(alert, now)


def high_by(db: Session, infusion: Any, alert: dict[str, Any], at: datetime) -> bool:
    """Whether the active high ``alert`` was already high at bedside time ``at`` (a discharge
    dated back): some valid evidence measured by then is judged high, or, for a time rule, its
    high deadline had passed."""
    if alert["severity"] != "high" or alert["first_seen_at"] > at:
        return False
    if alert["rule"] in TIME_RULES:  # last_seen_at is the deadline of its current severity
        return bool(alert["last_seen_at"] <= at)
    judge = _Judge(db, infusion)
    for entry in _valid_evidence(db, alert):
        if entry.measured_at > at:
            continue
        finding = judge.finding(alert["rule"], entry)
        if finding is not None and finding.severity == "high":
            return True
    return False


class _Judge:
    """Judges stored entries again for one rule, as the engine judged them when they arrived."""

    def __init__(self, db: Session, infusion: Any) -> None:
        self.db, self.infusion = db, infusion
        self.protocol = engine.protocol_of(db, infusion)

    def finding(self, rule: str, entry: Any) -> Finding | None:
        """The entry's finding for ``rule``; None if the rule is not judged on it."""
        if rule in OBSERVATION_RULES:
            findings = engine.observation_findings(self.protocol, entry._asdict())
        else:
            _, findings = engine.judge_reading(
                self.db, self.infusion, self.protocol, entry, self.baseline,
                carry_forward=rule == "news2",
            )  # fmt: skip
        return next((f for f in findings if f.rule == rule), None)

    @cached_property
    def baseline(self) -> Any | None:
        started = self.infusion.started_at is not None
        return baseline_of(self.db, self.infusion) if started else None

    def violations(self, alert: dict[str, Any]) -> list[Any]:
        """The alert's valid evidence that, judged again, still violates its rule, latest first."""
        return [e for e in _valid_evidence(self.db, alert) if self._violates(alert["rule"], e)]

    def _violates(self, rule: str, entry: Any) -> bool:
        finding = self.finding(rule, entry)
        return finding is not None and finding.severity is not None

    def refer_to(self, alert: dict[str, Any], entry: Any) -> dict[str, Any]:
        """The alert as its latest valid evidence ``entry`` describes it (severity never falls)."""
        key = "observation_id" if alert["rule"] in OBSERVATION_RULES else "reading_id"
        after = {**alert, "last_seen_at": entry.measured_at, key: entry.id}
        finding = self.finding(alert["rule"], entry)
        if finding is not None and finding.severity is not None:
            after.update(value=finding.value, message=finding.message)
            if finding.severity == alert["severity"]:
                after["threshold"] = finding.threshold
        return after

    def recleared(self, alert: dict[str, Any], now: datetime) -> dict[str, Any]:
        """cleared_at from the valid evidence: the first entry since the last violation that no
        longer violates, else none (an acknowledged alert that clears resolves, as ever)."""
        cleared = None
        rule = alert["rule"]
        for entry in _since_last_violation(self.db, self.infusion.id, alert):
            if entry.id in (alert["reading_id"], alert["observation_id"]):
                continue
            finding = self.finding(rule, entry)
            if finding is None or finding.severity is not None:
                continue
            if rule == "symptom.severe" and engine.any_symptom_still_severe(
                self.db, self.infusion.id, self.protocol, entry.measured_at
            ):
                continue
            cleared = entry.measured_at
            break
        if cleared == alert["cleared_at"]:
            return alert
        unlatched = {**alert, "cleared_at": None}
        if cleared is None:
            return unlatched
        return lifecycle.clear(unlatched, at=cleared, now=now) or unlatched


def _entries_of(rule: str) -> tuple[Table, Any]:
    """The entries a rule is judged on, and the evidence column that names them."""
    if rule in OBSERVATION_RULES:
        return _observations, _evidence.c.observation_id
    return _readings, _evidence.c.reading_id


def _valid_evidence(db: Session, alert: dict[str, Any]) -> Any:
    """The alert's valid evidence, latest first."""
    table, column = _entries_of(alert["rule"])
    query = (
        select(table)
        .join(_evidence, column == table.c.id)
        .where(_evidence.c.alert_id == alert["id"], table.c.status == "final")
        .order_by(table.c.measured_at.desc(), table.c.id.desc())
    )
    return db.execute(query)


def _since_last_violation(db: Session, infusion_id: uuid.UUID, alert: dict[str, Any]) -> Any:
    """The session's valid entries the alert's rule is judged on, from its last violation on."""
    table, _ = _entries_of(alert["rule"])
    query = select(table).where(
        table.c.infusion_id == infusion_id,
        table.c.status == "final",
        table.c.measured_at >= alert["last_seen_at"],
    )
    if table is _observations:
        query = query.where(table.c.kind.in_(_KINDS[alert["rule"]]))
    return db.execute(query.order_by(table.c.measured_at, table.c.id))
