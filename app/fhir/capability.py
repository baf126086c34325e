"""The CapabilityStatement: exactly the interactions, searches and operations the facade has."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from app.fhir.codes import PANEL_PROFILE, PARTS, VITAL_SIGNS_PROFILE
from app.schemas import format_utc

_SD = "http://hl7.org/fhir/StructureDefinition"
OBSERVATION_SEARCH = (
    ("encounter", "reference", "Encounter/<id>: the session's Observations"),
    ("patient", "reference", "Patient/<id>: the Observations of all the patient's sessions"),
    ("code", "token", "[system]|[code], comma-separated for any of several"),
    ("category", "token", "vital-signs, exam (symptoms) or survey (MOAA/S, CADSS)"),
    ("identifier", "token", "[system]|value: given at create, or Vigil's own; alone: the clinic"),
    ("_lastUpdated", "date", "gt, ge, lt, le or eq and an instant with a timezone offset"),
    ("_count", "number", "page size (1-500, default 50); Bundle.link next pages on"),
)


def _read() -> dict[str, Any]:
    return {"code": "read"}


def capability_statement(now: datetime, base: str) -> dict[str, Any]:
    vital_profiles = [f"{_SD}/{p.profile}" for p in PARTS if p.profile is not None]
    vital_profiles.append(f"{_SD}/{PANEL_PROFILE}")
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": format_utc(now),
        "publisher": "Vigil",
        "kind": "instance",
        "software": {"name": "Vigil"},
        "implementation": {"description": "Vigil FHIR R4 facade", "url": base},
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "json"],
        "rest": [
            {
                "mode": "server",
                "security": {
                    "description": "Every request but this one needs "
                    "Authorization: Bearer <Vigil API key> (roles nurse, clinician, ehr)."
                },
                "resource": [
                    {"type": "Patient", "versioning": "no-version", "interaction": [_read()]},
                    {
                        "type": "Encounter",
                        "versioning": "no-version",
                        "interaction": [_read()],
                        "operation": [
                            {
                                "name": "everything",
                                "definition": "http://hl7.org/fhir/OperationDefinition/"
                                "Encounter-everything",
                                "documentation": "The Patient, the Encounter, every Observation "
                                "and the session's alerts as DetectedIssue, in one searchset.",
                            }
                        ],
                    },
                    {
                        "type": "Observation",
                        "supportedProfile": [VITAL_SIGNS_PROFILE, *vital_profiles],
                        "versioning": "no-version",
                        "interaction": [
                            _read(),
                            {"code": "search-type"},
                            {
                                "code": "create",
                                "documentation": "A vital-signs Observation of an Encounter "
                                "becomes a reading of that session.",
                            },
                        ],
                        "conditionalCreate": True,
                        "searchParam": [
                            {"name": name, "type": kind, "documentation": doc}
                            for name, kind, doc in OBSERVATION_SEARCH
                        ],
                    },
                ],
            }
        ],
    }
