"""Vigil's records as FHIR R4 resources (vital-signs profile): pure functions of plain values."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from app.schemas import format_utc

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
READING_SYSTEM = "urn:vigil:reading"

# field -> (id suffix, codings, unit); blood pressure is a panel of its own below.
VITALS: dict[str, tuple[str, list[tuple[str, str]], str]] = {
    "heart_rate": ("hr", [("8867-4", "Heart rate")], "/min"),
    "spo2": ("spo2", [("2708-6", "Oxygen saturation in Arterial blood"),
                      ("59408-5", "Oxygen saturation in Arterial blood by Pulse oximetry")], "%"),
    "respiratory_rate": ("rr", [("9279-1", "Respiratory rate")], "/min"),
    "temperature_c": ("temp", [("8310-5", "Body temperature")], "Cel"),
}  # fmt: skip
ORDER = ("heart_rate", "blood_pressure", "spo2", "respiratory_rate", "temperature_c")


def _when(value: datetime | None) -> str | None:
    return format_utc(value) if value is not None else None


def _quantity(value: float, unit: str) -> dict[str, Any]:
    return {"value": value, "unit": unit, "system": UCUM, "code": unit}


def patient(p: Any) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Patient",
        "id": str(p.id),
        "meta": {"lastUpdated": _when(p.updated_at)},
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
        "meta": {"lastUpdated": _when(infusion.updated_at)},
        "status": encounter_status(infusion),
        "class": {"system": ACT_CODE, "code": "AMB", "display": "ambulatory"},
        "subject": {"reference": f"Patient/{infusion.patient_id}"},
    }
    if period["start"] is not None:
        resource["period"] = {k: v for k, v in period.items() if v is not None}
    return resource


def reading_observations(reading: Any, patient_id: Any) -> list[dict[str, Any]]:
    """One Observation per vital sign of the reading (blood pressure as a panel), in ORDER."""
    base = {
        "resourceType": "Observation",
        "meta": {"lastUpdated": _when(reading.entered_in_error_at or reading.recorded_at)},
        "status": "entered-in-error" if reading.status == "entered-in-error" else "final",
        "category": [
            {"coding": [{"system": CATEGORY, "code": "vital-signs", "display": "Vital Signs"}]}
        ],
        "subject": {"reference": f"Patient/{patient_id}"},
        "encounter": {"reference": f"Encounter/{reading.infusion_id}"},
        "effectiveDateTime": _when(reading.measured_at),
        "issued": _when(reading.recorded_at),
        "identifier": [{"system": READING_SYSTEM, "value": str(reading.id)}],
    }
    out = []
    for field in ORDER:
        if field == "blood_pressure":
            if reading.systolic is None:
                continue
            out.append({
                **base,
                "id": f"{reading.id}-bp",
                "code": {"coding": [{"system": LOINC, "code": "85354-9", "display": "Blood pressure panel"}]},
                "component": [
                    {"code": {"coding": [{"system": LOINC, "code": "8480-6", "display": "Systolic blood pressure"}]},
                     "valueQuantity": _quantity(reading.systolic, "mm[Hg]")},
                    {"code": {"coding": [{"system": LOINC, "code": "8462-4", "display": "Diastolic blood pressure"}]},
                     "valueQuantity": _quantity(reading.diastolic, "mm[Hg]")},
                ],
            })  # fmt: skip
            continue
        value = getattr(reading, field)
        if value is None:
            continue
        suffix, codings, unit = VITALS[field]
        out.append({
            **base,
            "id": f"{reading.id}-{suffix}",
            "code": {"coding": [{"system": LOINC, "code": c, "display": d} for c, d in codings]},
            "valueQuantity": _quantity(value, unit),
        })  # fmt: skip
    return out


def bundle(
    resources: list[dict[str, Any]], total: int, self_url: str, next_url: str | None, base: str
) -> dict[str, Any]:
    links = [{"relation": "self", "url": self_url}]
    if next_url is not None:
        links.append({"relation": "next", "url": next_url})
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": total,
        "link": links,
        "entry": [
            {
                "fullUrl": f"{base}/{r['resourceType']}/{r['id']}",
                "resource": r,
                "search": {"mode": "match"},
            }
            for r in resources
        ],
    }


def capability_statement(now: datetime) -> dict[str, Any]:
    read = [{"code": "read"}]
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": format_utc(now),
        "kind": "instance",
        "software": {"name": "Vigil"},
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "json"],
        "rest": [
            {
                "mode": "server",
                "security": {"description": "Authorization: Bearer <Vigil API key>"},
                "resource": [
                    {"type": "Patient", "interaction": read},
                    {"type": "Encounter", "interaction": read},
                    {
                        "type": "Observation",
                        "profile": "http://hl7.org/fhir/StructureDefinition/vitalsigns",
                        "interaction": [{"code": "search-type"}],
                        "searchParam": [
                            {"name": "encounter", "type": "reference"},
                            {"name": "patient", "type": "reference"},
                            {"name": "_count", "type": "number"},
                        ],
                    },
                ],
            }
        ],
    }
