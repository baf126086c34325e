"""The FHIR R4 facade's reads: codes, units, references, paging, errors as OperationOutcome."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.factories import World, ago
from tests.fhir_support import FHIR_JSON, codes, fhir_body, outcome, resources, search


def test_metadata_needs_no_key_and_lists_what_is_supported(world: World) -> None:
    body = fhir_body(world.client.get("/fhir/R4/metadata"))
    assert body["resourceType"] == "CapabilityStatement"
    assert body["fhirVersion"].startswith("4.0")
    assert set(body["format"]) >= {"json", FHIR_JSON}
    by_type = {r["type"]: r for r in body["rest"][0]["resource"]}
    assert set(by_type) == {"Patient", "Encounter", "Observation"}
    interactions = {t: {i["code"] for i in r["interaction"]} for t, r in by_type.items()}
    assert interactions == {
        "Patient": {"read"}, "Encounter": {"read"},
        "Observation": {"read", "search-type", "create"},
    }  # fmt: skip
    observation = by_type["Observation"]
    assert observation["conditionalCreate"] is True
    assert {p["name"]: p["type"] for p in observation["searchParam"]} == {
        "encounter": "reference", "patient": "reference", "code": "token",
        "category": "token", "identifier": "token", "_lastUpdated": "date", "_count": "number",
    }  # fmt: skip
    sd = "http://hl7.org/fhir/StructureDefinition"
    assert set(observation["supportedProfile"]) == {
        f"{sd}/{name}"
        for name in ("vitalsigns", "heartrate", "bp", "oxygensat", "resprate", "bodytemp",
                     "vitalspanel")
    }  # fmt: skip
    [operation] = by_type["Encounter"]["operation"]
    assert operation["name"] == "everything"
    assert operation["definition"].endswith("/OperationDefinition/Encounter-everything")
    assert "operation" not in by_type["Patient"] and "searchParam" not in by_type["Encounter"]


def test_patient_and_encounter_read_back_as_fhir(world: World) -> None:
    patient = world.patient(mrn="MRN-77", display_name="Sam Lee", birth_year=1980)
    session = world.session(patient_id=patient["id"], state="in_progress")
    found = fhir_body(world.ehr.get(f"/fhir/R4/Patient/{patient['id']}"))
    assert found["resourceType"] == "Patient" and found["id"] == patient["id"]
    assert found["identifier"][0]["value"] == "MRN-77"
    assert found["name"] == [{"text": "Sam Lee"}] and found["birthDate"] == "1980"
    encounter = fhir_body(world.ehr.get(f"/fhir/R4/Encounter/{session['id']}"))
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
    encounter = fhir_body(world.nurse.get(f"/fhir/R4/Encounter/{session['id']}"))
    assert encounter["status"] == expected


def test_a_reading_becomes_vital_signs_observations_with_loinc_and_ucum(world: World) -> None:
    session = world.session(state="in_progress")
    reading = world.reading(
        session, measured_at=ago(2), heart_rate=88, systolic=132, diastolic=84, spo2=97,
        respiratory_rate=16, temperature_c=36.9,
    )  # fmt: skip
    bundle = search(world.ehr, encounter=f"Encounter/{session['id']}")
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "searchset"
    mine = [
        e["resource"]
        for e in bundle["entry"]
        if e["resource"]["identifier"][-1]["value"] == reading["id"]
    ]
    by_code = {frozenset(codes(r)): r for r in mine}
    assert set(by_code) == {
        frozenset({"85353-1"}), frozenset({"8867-4"}), frozenset({"85354-9"}),
        frozenset({"2708-6", "59408-5"}), frozenset({"9279-1"}), frozenset({"8310-5"}),
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
    vitals_panel = by_code[frozenset({"85353-1"})]  # the reading as a whole, valueless
    assert {m["reference"] for m in vitals_panel["hasMember"]} == {
        f"Observation/{r['id']}" for r in mine if r is not vitals_panel
    }


def test_an_entered_in_error_reading_shows_that_status(world: World) -> None:
    session = world.session(state="in_progress")
    reading = world.reading(session, measured_at=ago(1), heart_rate=150)
    world.nurse.post(
        f"/v1/readings/{reading['id']}/entered-in-error", json={"reason": "wrong patient"}
    )
    bundle = search(world.ehr, encounter=session["id"])
    statuses = {
        e["resource"]["id"]: e["resource"]["status"]
        for e in bundle["entry"]
        if reading["id"] in e["resource"]["id"]
    }
    assert statuses == {
        f"{reading['id']}-hr": "entered-in-error", f"{reading['id']}-panel": "entered-in-error",
    }  # fmt: skip


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
        bundle = fhir_body(world.ehr.get(url))
        total = bundle["total"]
        seen += [e["resource"]["id"] for e in bundle["entry"]]
        assert len(bundle["entry"]) <= 3
        url = next((link["url"] for link in bundle["link"] if link["relation"] == "next"), None)
    # the baseline reading plus 7 readings, each of HR, BP and the vital signs panel of the two
    assert len(seen) == len(set(seen)) == total == 8 * 3


def test_fhir_errors_are_operation_outcomes(world: World) -> None:
    session = world.session()
    no_key = world.client.get(f"/fhir/R4/Encounter/{session['id']}")
    assert outcome(no_key, 401)["issue"][0]["code"] == "login"
    outcome(world.dashboard.get(f"/fhir/R4/Encounter/{session['id']}"), 403)
    other = outcome(world.other_nurse.get(f"/fhir/R4/Encounter/{session['id']}"), 404)
    assert other["issue"][0]["code"] == "not-found"
    outcome(world.ehr.get("/fhir/R4/Observation"), 422)
    outcome(world.ehr.get("/fhir/R4/Nothing"), 404)
    for path in ("Patient/abc", "Encounter/abc", "Encounter/abc/$everything", "Observation/abc"):
        outcome(world.ehr.get(f"/fhir/R4/{path}"), 404)  # a FHIR id that names nothing here


@pytest.mark.parametrize(
    "how",
    [{"params": {"_format": "json"}}, {"params": {"_format": FHIR_JSON}},
     {"params": {"_format": "application/json"}}, {"headers": {"Accept": FHIR_JSON}},
     {"headers": {"Accept": "application/json"}}, {"headers": {"Accept": "text/html, */*;q=0.1"}}],
)  # fmt: skip
def test_json_is_served_as_fhir_json_however_asked_for(world: World, how: dict[str, Any]) -> None:
    session = world.session()
    response = world.ehr.get(f"/fhir/R4/Encounter/{session['id']}", **how)
    assert fhir_body(response)["id"] == session["id"]


@pytest.mark.parametrize(
    "how",
    [{"params": {"_format": "xml"}}, {"params": {"_format": "application/fhir+xml"}},
     {"headers": {"Accept": "application/fhir+xml"}}, {"headers": {"Accept": "text/turtle"}}],
)  # fmt: skip
def test_a_format_other_than_json_is_not_acceptable(world: World, how: dict[str, Any]) -> None:
    session = world.session()
    response = world.ehr.get(f"/fhir/R4/Encounter/{session['id']}", **how)
    assert outcome(response, 406)["issue"][0]["code"] == "not-supported"
    outcome(world.client.get("/fhir/R4/metadata", **how), 406)


def test_fhir_reads_are_audited(world: World) -> None:
    session = world.session(state="in_progress")
    reading = world.reading(session, measured_at=ago(1), heart_rate=80)
    world.ehr.get(f"/fhir/R4/Patient/{session['patient_id']}")
    world.ehr.get(f"/fhir/R4/Encounter/{session['id']}")
    world.ehr.get(f"/fhir/R4/Encounter/{session['id']}/$everything")
    world.ehr.get("/fhir/R4/Observation", params={"encounter": f"Encounter/{session['id']}"})
    world.ehr.get(f"/fhir/R4/Observation/{reading['id']}-hr")
    actions: set[tuple[str, str]] = set()
    for resource_id in (session["patient_id"], session["id"], reading["id"]):
        entries = world.admin.get("/v1/audit", params={"resource_id": resource_id}).json()["items"]
        actions |= {
            (e["action"], e["actor_key_id"]) for e in entries if e["action"].startswith("fhir.")
        }
    ehr = str(world.ehr.key_id)
    assert actions == {
        ("fhir.patient.read", ehr), ("fhir.encounter.read", ehr),
        ("fhir.encounter.everything", ehr), ("fhir.observation.search", ehr),
        ("fhir.observation.read", ehr),
    }  # fmt: skip


def test_an_observation_reads_back_by_its_id(world: World) -> None:
    session = world.session(state="in_progress")
    world.reading(session, measured_at=ago(2), heart_rate=90, systolic=130, diastolic=80)
    world.nurse.post(
        f"/v1/sessions/{session['id']}/observations",
        json={"measured_at": ago(1), "kind": "headache", "severity": 1},
    )
    found = resources(search(world.ehr, encounter=session["id"]))
    # the baseline's HR, BP and panel, this reading's HR, BP and panel, the headache
    assert len(found) == 7
    for resource in found:
        assert fhir_body(world.ehr.get(f"/fhir/R4/Observation/{resource['id']}")) == resource
        outcome(world.other_nurse.get(f"/fhir/R4/Observation/{resource['id']}"), 404)
    reading_id = found[0]["id"].rsplit("-", 1)[0]
    for missing in (f"{reading_id}-temp", f"{reading_id}-xyz", "not-an-id", str(uuid.uuid4())):
        outcome(world.ehr.get(f"/fhir/R4/Observation/{missing}"), 404)
