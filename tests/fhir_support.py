"""Helpers for the FHIR tests: R4B validation of every resource, and Observations to post."""

from __future__ import annotations

from typing import Any

import httpx
from fhir.resources.R4B import get_fhir_model_class

from tests.factories import Caller, World, ago

FHIR_JSON = "application/fhir+json"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
KIND_SYSTEM = "https://vigil.example/fhir/CodeSystem/observation-kind"


def valid(resource: dict[str, Any]) -> dict[str, Any]:
    """``resource`` once the fhir.resources R4B model of its type accepts it (and every resource
    inside a Bundle too); returned for chaining."""
    get_fhir_model_class(resource["resourceType"]).model_validate(resource)
    for entry in resource.get("entry", []):
        valid(entry["resource"])
    return resource


def fhir_body(response: httpx.Response, status: int = 200) -> dict[str, Any]:
    """The FHIR resource of a response, once status, media type and R4B validity are checked."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(FHIR_JSON), response.headers
    return valid(response.json())


def outcome(response: httpx.Response, status: int) -> dict[str, Any]:
    """An OperationOutcome error with ``status``."""
    body = fhir_body(response, status)
    assert body["resourceType"] == "OperationOutcome", body
    assert body["issue"] and all(i["severity"] == "error" for i in body["issue"]), body
    return body


def codes(resource: dict[str, Any]) -> set[str]:
    return {c["code"] for c in resource["code"]["coding"]}


def resources(bundle: dict[str, Any], kind: str | None = None) -> list[dict[str, Any]]:
    found = [e["resource"] for e in bundle.get("entry", [])]
    return [r for r in found if kind is None or r["resourceType"] == kind]


def quantity(value: float, unit: str) -> dict[str, Any]:
    return {"value": value, "unit": unit, "system": UCUM, "code": unit}


def vital(
    session: dict[str, Any], code: str, value: float | None = None, unit: str = "/min", **extra: Any
) -> dict[str, Any]:
    """A vital-signs Observation of ``session`` as an EHR would post it."""
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "status": "final",
        "category": [{"coding": [{"system": CATEGORY, "code": "vital-signs"}]}],
        "code": {"coding": [{"system": LOINC, "code": code}]},
        "subject": {"reference": f"Patient/{session['patient_id']}"},
        "encounter": {"reference": f"Encounter/{session['id']}"},
        "effectiveDateTime": ago(1),
    }
    if value is not None:
        resource["valueQuantity"] = quantity(value, unit)
    return {**resource, **extra}


def blood_pressure(
    session: dict[str, Any], systolic: float, diastolic: float, **extra: Any
) -> dict[str, Any]:
    components = [
        {"code": {"coding": [{"system": LOINC, "code": "8480-6"}]},
         "valueQuantity": quantity(systolic, "mm[Hg]")},
        {"code": {"coding": [{"system": LOINC, "code": "8462-4"}]},
         "valueQuantity": quantity(diastolic, "mm[Hg]")},
    ]  # fmt: skip
    return vital(session, "85354-9", component=components, **extra)


def post(caller: Caller, resource: Any, **headers: str) -> httpx.Response:
    return caller.post(
        "/fhir/R4/Observation", json=resource, headers={"Content-Type": FHIR_JSON, **headers}
    )


def search(caller: Caller, **params: Any) -> dict[str, Any]:
    return fhir_body(caller.get("/fhir/R4/Observation", params=params))


def everything(world: World, session: dict[str, Any]) -> dict[str, Any]:
    return fhir_body(world.ehr.get(f"/fhir/R4/Encounter/{session['id']}/$everything"))
