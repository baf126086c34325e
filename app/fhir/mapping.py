"""Vigil's records as FHIR R4 resources: pure functions of plain values."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from app.fhir.codes import (
    ACT_CODE,
    ALERT_ACTION,
    ALERT_ID,
    ALERT_RULE,
    API_KEY_ID,
    CADSS,
    CATEGORY,
    DIASTOLIC,
    KINDS,
    OBSERVATION_ID,
    PANEL_CATEGORY,
    PANEL_CODING,
    PANEL_PROFILE,
    PANEL_SUFFIX,
    PART_BY_SUFFIX,
    PARTS,
    READING_ID,
    SEVERITIES,
    SEVERITY,
    SNOMED,
    SYSTOLIC,
    UCUM,
    VITAL_SIGNS_PROFILE,
    Coding,
    Part,
    kind_codings,
)
from app.fhir.params import ALL, Selection
from app.schemas import format_utc

_SD = "http://hl7.org/fhir/StructureDefinition"
_CATEGORY_DISPLAY = {"vital-signs": "Vital Signs", "exam": "Exam", "survey": "Survey"}
# DetectedIssue.severity (API.md): high -> high, medium -> moderate, low -> low.
ISSUE_SEVERITY = {"high": "high", "medium": "moderate", "low": "low"}


def _when(value: datetime | None) -> str | None:
    return format_utc(value) if value is not None else None


def instant(value: datetime) -> str:
    """meta.lastUpdated, always to the microsecond, so a client that searches ``_lastUpdated``
    with a value it was given compares at the precision the server stores."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def last_updated(entry: Any) -> datetime:
    """When a reading or observation last changed: stored, or marked entered-in-error."""
    return entry.entered_in_error_at or entry.recorded_at  # type: ignore[no-any-return]


def _concept(codings: Iterable[Coding], text: str | None = None) -> dict[str, Any]:
    concept: dict[str, Any] = {
        "coding": [{"system": s, "code": c, "display": d} for s, c, d in codings]
    }
    if text is not None:
        concept["text"] = text
    return concept


def _quantity(value: float, unit: str) -> dict[str, Any]:
    return {"value": value, "unit": unit, "system": UCUM, "code": unit}


def patient(p: Any) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Patient",
        "id": str(p.id),
        "meta": {"lastUpdated": instant(p.updated_at)},
        "identifier": [{"system": f"urn:vigil:clinic:{p.clinic_id}:mrn", "value": p.mrn}],
        "name": [{"text": p.display_name}],
    }
    if p.birth_year is not None:
        resource["birthDate"] = f"{p.birth_year:04d}"
    return resource


def encounter_status(infusion: Any) -> str:
    if infusion.status == "scheduled":
        return "planned"
    if infusion.status in ("in_progress", "recovery"):
        return "in-progress"
    if infusion.status == "aborted" and infusion.started_at is None:
        return "cancelled"
    return "finished"


def encounter(infusion: Any) -> dict[str, Any]:
    period = {
        "start": _when(infusion.started_at),
        "end": _when(infusion.discharged_at or infusion.aborted_at),
    }
    resource: dict[str, Any] = {
        "resourceType": "Encounter",
        "id": str(infusion.id),
        "meta": {"lastUpdated": instant(infusion.updated_at)},
        "status": encounter_status(infusion),
        "class": {"system": ACT_CODE, "code": "AMB", "display": "ambulatory"},
        "subject": {"reference": f"Patient/{infusion.patient_id}"},
    }
    if period["start"] is not None:
        resource["period"] = {k: v for k, v in period.items() if v is not None}
    return resource


def _entry(
    entry: Any,
    resource_id: str,
    meta: dict[str, Any],
    identifiers: list[dict[str, str]],
    category: str,
    code: dict[str, Any],
    patient_id: Any,
) -> dict[str, Any]:
    """What every Observation of a reading or side-effect entry says, in FHIR's element order."""
    return {
        "resourceType": "Observation",
        "id": resource_id,
        "meta": {"lastUpdated": instant(last_updated(entry)), **meta},
        "identifier": identifiers,
        "status": "entered-in-error" if entry.status == "entered-in-error" else "final",
        "category": [_concept([(CATEGORY, category, _CATEGORY_DISPLAY[category])])],
        "code": code,
        "subject": {"reference": f"Patient/{patient_id}"},
        "encounter": {"reference": f"Encounter/{entry.infusion_id}"},
        "effectiveDateTime": _when(entry.measured_at),
        "issued": _when(entry.recorded_at),
    }


def reading_parts(reading: Any, only: Sequence[str] | None = None) -> list[Part]:
    """The parts a reading has values for (of ``only``, when given), in PARTS order."""
    return [
        part
        for part in PARTS
        if getattr(reading, part.field) is not None and (only is None or part.suffix in only)
    ]


def reading_suffixes(reading: Any, selection: Selection = ALL) -> list[str]:
    """The id suffixes of the Observations a reading makes (of those selected), in their order:
    its parts, then the panel of them all (a reading with no part has no panel)."""
    parts = reading_parts(reading)
    chosen = [part.suffix for part in parts if part.suffix in selection.parts]
    return [*chosen, PANEL_SUFFIX] if selection.panel and parts else chosen


def reading_resource(
    reading: Any, suffix: str, patient_id: Any, identifiers: Sequence[tuple[str, str]] = ()
) -> dict[str, Any]:
    """The Observation ``<reading id>-<suffix>``: one of the reading's parts, or its panel."""
    if suffix == PANEL_SUFFIX:
        return vital_signs_panel(reading, patient_id, identifiers)
    return reading_observation(reading, PART_BY_SUFFIX[suffix], patient_id, identifiers)


def _reading_identifiers(reading: Any, given: Sequence[tuple[str, str]]) -> list[dict[str, str]]:
    """Those a client sent when it created the reading through FHIR, then Vigil's own."""
    client_ids = [{"system": s, "value": v} if s else {"value": v} for s, v in given]
    return [*client_ids, {"system": READING_ID, "value": str(reading.id)}]


def reading_observation(
    reading: Any, part: Part, patient_id: Any, identifiers: Sequence[tuple[str, str]] = ()
) -> dict[str, Any]:
    """One Observation of a reading: a vital sign (blood pressure as a panel).

    ``identifiers`` are those a client sent when it created the reading through FHIR.
    """
    profile = {"profile": [VITAL_SIGNS_PROFILE, f"{_SD}/{part.profile}"]} if part.profile else {}
    resource = _entry(
        reading, f"{reading.id}-{part.suffix}", profile, _reading_identifiers(reading, identifiers),
        part.category, _concept(part.codings), patient_id,
    )  # fmt: skip
    if part.suffix == "bp":
        resource["component"] = [
            {"code": _concept([SYSTOLIC]), "valueQuantity": _quantity(reading.systolic, "mm[Hg]")},
            {"code": _concept([DIASTOLIC]), "valueQuantity": _quantity(reading.diastolic, "mm[Hg]")},
        ]  # fmt: skip
    else:
        assert part.unit is not None
        resource["valueQuantity"] = _quantity(getattr(reading, part.field), part.unit)
    if getattr(reading, "device_id", None):
        resource["device"] = {"display": reading.device_id}
    return resource


def vital_signs_panel(
    reading: Any, patient_id: Any, identifiers: Sequence[tuple[str, str]] = ()
) -> dict[str, Any]:
    """The reading as a whole (R4 vitalspanel): no value of its own, its parts as hasMember."""
    profile = {"profile": [VITAL_SIGNS_PROFILE, f"{_SD}/{PANEL_PROFILE}"]}
    resource = _entry(
        reading, f"{reading.id}-{PANEL_SUFFIX}", profile, _reading_identifiers(reading, identifiers),
        PANEL_CATEGORY, _concept([PANEL_CODING]), patient_id,
    )  # fmt: skip
    if getattr(reading, "device_id", None):  # the one device that measured every member
        resource["device"] = {"display": reading.device_id}
    resource["hasMember"] = [
        {"reference": f"Observation/{reading.id}-{part.suffix}"} for part in reading_parts(reading)
    ]
    return resource


def _severity(level: int) -> dict[str, Any]:
    code, display, snomed = SEVERITIES[level]
    return _concept([(SEVERITY, code, display), (SNOMED, snomed, display)], text=code)


def side_effect_observation(obs: Any, patient_id: Any) -> dict[str, Any]:
    """A side effect or assessment: symptoms and dissociation carry their severity as a coded
    value, sedation its MOAA/S score and dissociation its CADSS total as integers."""
    display = KINDS[obs.kind][0]
    resource = _entry(
        obs, str(obs.id), {}, [{"system": OBSERVATION_ID, "value": str(obs.id)}],
        KINDS[obs.kind][2], _concept(kind_codings(obs.kind), text=display), patient_id,
    )  # fmt: skip
    if obs.kind == "sedation":
        resource["valueInteger"] = obs.moaas
    else:
        resource["valueCodeableConcept"] = _severity(obs.severity)
    if obs.kind == "dissociation" and obs.cadss is not None:
        resource["component"] = [{"code": _concept([CADSS]), "valueInteger": obs.cadss}]
    if obs.note:
        resource["note"] = [{"text": obs.note}]
    return resource


def _key_author(key_id: Any) -> dict[str, Any]:
    return {"identifier": {"system": API_KEY_ID, "value": str(key_id)}, "display": "API key"}


def issue_status(alert: dict[str, Any]) -> str:
    """Active alerts may still change (preliminary); a resolved one is final, unless what raised
    it was entered in error."""
    if alert["status"] != "resolved":
        return "preliminary"
    note = alert["resolution_note"] or ""
    return "entered-in-error" if note.startswith("entered-in-error") else "final"


def detected_issue(alert: dict[str, Any], implicated: Sequence[str]) -> dict[str, Any]:
    """An alert; ``implicated`` are the ids of the Observations that raised it."""
    resource: dict[str, Any] = {
        "resourceType": "DetectedIssue",
        "id": str(alert["id"]),
        "meta": {"lastUpdated": instant(alert["updated_at"])},
        "identifier": [{"system": ALERT_ID, "value": str(alert["id"])}],
        "status": issue_status(alert),
        "code": _concept([(ALERT_RULE, alert["rule"], alert["rule"])], text=alert["message"]),
        "severity": ISSUE_SEVERITY[alert["severity"]],
        "patient": {"reference": f"Patient/{alert['patient_id']}"},
        "identifiedDateTime": _when(alert["first_seen_at"]),
        "detail": alert["message"],
    }
    if implicated:
        resource["implicated"] = [{"reference": f"Observation/{i}"} for i in implicated]
    mitigation = []
    if alert["acknowledged_at"] is not None:
        note = alert.get("acknowledgement_note")
        action = {
            "action": _concept(
                [(ALERT_ACTION, "acknowledged", "Acknowledged")],
                text=f"Acknowledged: {note}" if note else "Acknowledged",
            ),
            "date": _when(alert["acknowledged_at"]),
        }
        if alert["acknowledged_by"] is not None:
            action["author"] = _key_author(alert["acknowledged_by"])
        mitigation.append(action)
    if alert["resolved_at"] is not None:
        action = {
            "action": _concept(
                [(ALERT_ACTION, "resolved", "Resolved")],
                text=f"Resolved: {alert['resolution_note']}",
            ),
            "date": _when(alert["resolved_at"]),
        }
        if alert["resolved_by"] is not None:
            action["author"] = _key_author(alert["resolved_by"])
        mitigation.append(action)
    if mitigation:
        resource["mitigation"] = mitigation
    return resource


# Resources served on their own have their URL; an alert is only found through $everything.
_NOT_READ_ALONE = frozenset({"DetectedIssue"})


def _full_url(resource: dict[str, Any], base: str) -> str:
    if resource["resourceType"] in _NOT_READ_ALONE:
        return f"urn:uuid:{resource['id']}"
    return f"{base}/{resource['resourceType']}/{resource['id']}"


def bundle(
    resources: Sequence[dict[str, Any]],
    *,
    base: str,
    total: int | None = None,
    self_url: str | None = None,
    next_url: str | None = None,
) -> dict[str, Any]:
    """A searchset Bundle of ``resources`` (each a match)."""
    links = []
    if self_url is not None:
        links.append({"relation": "self", "url": self_url})
    if next_url is not None:
        links.append({"relation": "next", "url": next_url})
    out: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset"}
    out["total"] = len(resources) if total is None else total
    if links:
        out["link"] = links
    if resources:  # FHIR JSON has no empty arrays
        out["entry"] = [
            {"fullUrl": _full_url(r, base), "resource": r, "search": {"mode": "match"}}
            for r in resources
        ]
    return out
