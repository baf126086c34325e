"""How an alert changes: opening, escalation, clearing and latching, resolution (PROTOCOL.md).

Pure functions on an alert's fields as a dict; the service stores what they return.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from app.alerts.rules import SEVERITY_RANK, Finding

OPENED, UPDATED, RESOLVED = "alert.opened", "alert.updated", "alert.resolved"


def open_alert(
    finding: Finding,
    *,
    infusion: Any,
    seen_at: datetime,
    now: datetime,
    protocol_version: int,
    reading_id: uuid.UUID | None = None,
    observation_id: uuid.UUID | None = None,
    first_seen_at: datetime | None = None,
) -> dict[str, Any]:
    return {
        "id": uuid.uuid4(),
        "clinic_id": infusion.clinic_id,
        "infusion_id": infusion.id,
        "patient_id": infusion.patient_id,
        "rule": finding.rule,
        "severity": finding.severity,
        "status": "open",
        "message": finding.message,
        "value": finding.value,
        "threshold": finding.threshold,
        "first_seen_at": first_seen_at or seen_at,
        "last_seen_at": seen_at,
        "count": 1,
        "reading_id": reading_id,
        "observation_id": observation_id,
        "cleared_at": None,
        "acknowledged_at": None,
        "acknowledged_by": None,
        "acknowledgement_note": None,
        "resolved_at": None,
        "resolved_by": None,
        "resolution_note": None,
        "protocol_version": protocol_version,
        "created_at": now,
        "updated_at": now,
        "change_seq": 0,
    }


def violate(
    alert: dict[str, Any],
    finding: Finding,
    *,
    seen_at: datetime,
    reading_id: uuid.UUID | None = None,
    observation_id: uuid.UUID | None = None,
) -> dict[str, Any]:
    """A further violation: count it, raise the severity if it rose (never lower it).

    An acknowledgement answers the severity it was given at: an alert that escalates after
    one is open again, to be acknowledged anew (its earlier acknowledgement stays in the
    alert's change history and the audit log).

    Value, message and threshold describe the latest violation together: one rule may judge
    several limits at one severity (bp.rise_from_baseline: systolic or diastolic), so the
    threshold follows the latest finding whenever that finding is of the alert's severity.
    """
    changed = {**alert, "count": alert["count"] + 1}
    assert finding.severity is not None
    if seen_at < alert["first_seen_at"]:  # a late entry measured earlier: the alert began then
        changed["first_seen_at"] = seen_at
    if SEVERITY_RANK[finding.severity] > SEVERITY_RANK[alert["severity"]]:
        changed.update(severity=finding.severity, threshold=finding.threshold)
        if alert["status"] == "acknowledged":  # seen at a lesser severity: ask again
            changed.update(status="open", acknowledged_at=None, acknowledged_by=None,
                           acknowledgement_note=None)  # fmt: skip
    if seen_at >= alert["last_seen_at"]:  # a late entry does not replace newer evidence
        changed.update(last_seen_at=seen_at, value=finding.value, message=finding.message)
        if finding.severity == changed["severity"]:
            changed["threshold"] = finding.threshold
        if reading_id or observation_id:
            changed.update(reading_id=reading_id, observation_id=observation_id)
    if alert["cleared_at"] is not None and seen_at >= alert["cleared_at"]:
        changed["cleared_at"] = None
    return changed


def clear(alert: dict[str, Any], *, at: datetime, now: datetime) -> dict[str, Any] | None:
    """Later evidence that no longer violates: acknowledged alerts resolve, open ones latch."""
    if at < alert["last_seen_at"] or alert["cleared_at"] is not None:
        return None
    changed = {**alert, "cleared_at": at}
    if alert["status"] == "acknowledged":
        changed = resolve(changed, now=now, note="cleared")
    return changed


def resolve(
    alert: dict[str, Any], *, now: datetime, note: str, by: uuid.UUID | None = None
) -> dict[str, Any]:
    return {
        **alert,
        "status": "resolved",
        "resolved_at": now,
        "resolved_by": by,
        "resolution_note": note,
    }


def acknowledge(
    alert: dict[str, Any], *, now: datetime, by: uuid.UUID, note: str | None
) -> dict[str, Any]:
    """A person has seen it (a latched alert that already cleared is then resolved, as its own
    change: see ``service.acknowledge``)."""
    return {**alert, "status": "acknowledged", "acknowledged_at": now, "acknowledged_by": by,
            "acknowledgement_note": note}  # fmt: skip


def event_kind(before: dict[str, Any] | None, after: dict[str, Any]) -> str:
    if before is None:
        return OPENED
    return RESOLVED if after["status"] == "resolved" else UPDATED
