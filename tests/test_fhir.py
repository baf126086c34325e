"""The FHIR R4 facade's reads: codes, units, references, paging, errors as OperationOutcome."""

from __future__ import annotations

from typing import Any

import pytest

from tests.factories import World, ago

FHIR_JSON = "application/fhir+json"
LOINC = "http://loinc.org"


def codes(resource: dict[str, Any]) -> set[str]:
    return {c["code"] for c in resource["code"]["coding"]}


def test_metadata_needs_no_key_and_lists_what_is_supported(world: World) -> None:
    response = world.client.get("/fhir/R4/metadata")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith(FHIR_JSON)
    body = response.json()
    assert body["resourceType"] == "CapabilityStatement"
    assert body["fhirVersion"].startswith("4.0")
    types = {r["type"] for r in body["rest"][0]["resource"]}
    assert types == {"Patient", "Encounter", "Observation"}


def test_patient_and_encounter_read_back_as_fhir(world: World) -> None:
    patient = world.patient(mrn="MRN-77", display_name="Sam Lee", birth_year=1980)
    session = world.session(patient_id=patient["id"], state="in_progress")
    found = world.ehr.get(f"/fhir/R4/Patient/{patient['id']}").json()
    assert found["resourceType"] == "Patient" and found["id"] == patient["id"]
    assert found["identifier"][0]["value"] == "MRN-77"
    assert found["name"] == [{"text": "Sam Lee"}] and found["birthDate"] == "1980"
    encounter = world.ehr.get(f"/fhir/R4/Encounter/{session['id']}").json()
    assert encounter["status"] == "in-progress"
    assert encounter["class"]["code"] == "AMB"
    assert encounter["subject"] == {"reference": f"Patient/{patient['id']}"}
    assert encounter["period"]["start"] == session["started_at"]


@pytest.mark.parametrize(
    ("state", "action", "expected"),
    [("scheduled", None, "planned"), ("recovery", None, "in-progress"),
     ("scheduled", "abort", "cancelled"), ("in_progress", "abort", "finished")],
)  # fmt: skip
def test_encounter_status_follows_the_session(
    world: World, state: str, action: str | None, expected: str
) -> None:
    session = world.session(state=state)
    if action:
        world.transition(session, action, reason="patient declined")
    assert world.nurse.get(f"/fhir/R4/Encounter/{session['id']}").json()["status"] == expected


def test_a_reading_becomes_vital_signs_observations_with_loinc_and_ucum(world: World) -> None:
    session = world.session(state="in_progress")
    reading = world.reading(
        session, measured_at=ago(2), heart_rate=88, systolic=132, diastolic=84, spo2=97,
        respiratory_rate=16, temperature_c=36.9,
    )  # fmt: skip
    bundle = world.ehr.get(
        "/fhir/R4/Observation", params={"encounter": f"Encounter/{session['id']}"}
    ).json()
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "searchset"
    mine = [
        e["resource"]
        for e in bundle["entry"]
        if e["resource"]["identifier"][0]["value"] == reading["id"]
    ]
    by_code = {frozenset(codes(r)): r for r in mine}
    assert set(by_code) == {
        frozenset({"8867-4"}), frozenset({"85354-9"}), frozenset({"2708-6", "59408-5"}),
        frozenset({"9279-1"}), frozenset({"8310-5"}),
    }  # fmt: skip
    for resource in mine:
        assert resource["category"][0]["coding"][0]["code"] == "vital-signs"
        assert resource["effectiveDateTime"] == reading["measured_at"]
        assert resource["subject"] == {"reference": f"Patient/{session['patient_id']}"}
        assert resource["encounter"] == {"reference": f"Encounter/{session['id']}"}
        assert resource["status"] == "final"
    assert by_code[frozenset({"8867-4"})]["valueQuantity"] == {
        "value": 88, "unit": "/min", "system": "http://unitsofmeasure.org", "code": "/min"
    }  # fmt: skip
    panel = by_code[frozenset({"85354-9"})]
    assert {c["code"]["coding"][0]["code"]: c["valueQuantity"]["value"] for c in panel["component"]} == {
        "8480-6": 132, "8462-4": 84,
    }  # fmt: skip
    assert panel["component"][0]["valueQuantity"]["code"] == "mm[Hg]"
    assert by_code[frozenset({"8310-5"})]["valueQuantity"]["code"] == "Cel"
    assert by_code[frozenset({"2708-6", "59408-5"})]["valueQuantity"]["code"] == "%"


def test_an_entered_in_error_reading_shows_that_status(world: World) -> None:
    session = world.session(state="in_progress")
    reading = world.reading(session, measured_at=ago(1), heart_rate=150)
    world.nurse.post(
        f"/v1/readings/{reading['id']}/entered-in-error", json={"reason": "wrong patient"}
    )
    bundle = world.ehr.get("/fhir/R4/Observation", params={"encounter": session["id"]}).json()
    statuses = {
        e["resource"]["status"] for e in bundle["entry"] if reading["id"] in e["resource"]["id"]
    }
    assert statuses == {"entered-in-error"}


def test_next_links_walk_every_observation_once(world: World) -> None:
    session = world.session(state="in_progress")
    for minutes in range(7):
        world.reading(
            session,
            measured_at=ago(10 - minutes),
            heart_rate=70 + minutes,
            systolic=120,
            diastolic=80,
        )
    url: str | None = f"/fhir/R4/Observation?patient=Patient/{session['patient_id']}&_count=3"
    seen: list[str] = []
    total = None
    while url:
        bundle = world.ehr.get(url).json()
        total = bundle["total"]
        seen += [e["resource"]["id"] for e in bundle["entry"]]
        assert len(bundle["entry"]) <= 3
        url = next((link["url"] for link in bundle["link"] if link["relation"] == "next"), None)
    # the baseline reading (HR and BP) plus 7 readings of HR and BP
    assert len(seen) == len(set(seen)) == total == 16


def test_fhir_errors_are_operation_outcomes(world: World) -> None:
    session = world.session()
    no_key = world.client.get(f"/fhir/R4/Encounter/{session['id']}")
    assert no_key.status_code == 401
    assert no_key.headers["content-type"].startswith(FHIR_JSON)
    assert no_key.json()["resourceType"] == "OperationOutcome"
    forbidden = world.dashboard.get(f"/fhir/R4/Encounter/{session['id']}")
    assert forbidden.status_code == 403 and forbidden.json()["resourceType"] == "OperationOutcome"
    other = world.other_nurse.get(f"/fhir/R4/Encounter/{session['id']}")
    assert other.status_code == 404 and other.json()["issue"][0]["code"] == "not-found"
    unscoped = world.ehr.get("/fhir/R4/Observation")
    assert unscoped.status_code == 422 and unscoped.json()["resourceType"] == "OperationOutcome"
    assert world.ehr.get("/fhir/R4/Nothing").json()["resourceType"] == "OperationOutcome"
