"""Patients: registration, MRN uniqueness per clinic, contraindications, reads, edits, who may."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.factories import World, parse_time, problem

CONTRAINDICATIONS = [
    "hypertension_uncontrolled",
    "cardiovascular_disease",
    "stroke_history",
    "aneurysm",
    "hyperthyroidism",
    "hepatic_disease_severe",
    "psychosis_history",
    "substance_use_disorder",
    "pregnancy",
    "intracranial_pressure_raised",
]


def by_mrn(world: World, mrn: str, role: str = "nurse") -> list[dict[str, Any]]:
    response = getattr(world, role).get("/v1/patients", params={"mrn": mrn})
    assert response.status_code == 200, response.text
    return response.json()["items"]  # type: ignore[no-any-return]


# --- registering ---------------------------------------------------------------------------


def test_registering_a_patient_returns_it_with_the_fields_sent(world: World) -> None:
    body = {
        "mrn": "MRN-0001",
        "display_name": "Ada Lovelace",
        "birth_year": 1985,
        "contraindications": ["pregnancy"],
    }
    response = world.nurse.post("/v1/patients", json=body)

    assert response.status_code == 201, response.text
    patient = response.json()
    uuid.UUID(patient["id"])
    assert patient["mrn"] == "MRN-0001"
    assert patient["display_name"] == "Ada Lovelace"
    assert patient["birth_year"] == 1985
    assert patient["contraindications"] == ["pregnancy"]
    parse_time(patient["created_at"])


def test_birth_year_and_contraindications_are_optional(world: World) -> None:
    response = world.nurse.post("/v1/patients", json={"mrn": "M-2", "display_name": "Bo"})

    assert response.status_code == 201, response.text
    assert response.json()["birth_year"] is None
    assert response.json()["contraindications"] == []


def test_a_clinician_may_register_a_patient(world: World) -> None:
    patient = world.patient(world.clinician, mrn="CLIN-1")

    assert by_mrn(world, "CLIN-1")[0]["id"] == patient["id"]


@pytest.mark.parametrize("missing", ["mrn", "display_name"])
def test_a_patient_without_mrn_or_name_is_rejected(world: World, missing: str) -> None:
    body = {"mrn": "M-3", "display_name": "Cy"}
    del body[missing]

    body = problem(world.nurse.post("/v1/patients", json=body), 422, "validation")
    assert body["errors"]


def test_an_unknown_field_in_a_new_patient_is_rejected(world: World) -> None:
    response = world.nurse.post(
        "/v1/patients", json={"mrn": "M-4", "display_name": "Di", "ssn": "123"}
    )

    problem(response, 422, "validation")
    assert by_mrn(world, "M-4") == []


def test_an_mrn_is_unique_within_a_clinic(world: World) -> None:
    first = world.patient(mrn="DUP-1")

    response = world.clinician.post("/v1/patients", json={"mrn": "DUP-1", "display_name": "Ed"})

    problem(response, 409, "conflict")
    assert [p["id"] for p in by_mrn(world, "DUP-1")] == [first["id"]]


def test_the_same_mrn_may_be_registered_in_another_clinic(world: World) -> None:
    ours = world.patient(mrn="SHARED-7")

    theirs = world.patient(world.other_nurse, mrn="SHARED-7")

    assert theirs["id"] != ours["id"]
    assert [p["id"] for p in by_mrn(world, "SHARED-7")] == [ours["id"]]
    assert [p["id"] for p in by_mrn(world, "SHARED-7", "other_nurse")] == [theirs["id"]]


def test_an_unknown_contraindication_code_is_rejected(world: World) -> None:
    response = world.nurse.post(
        "/v1/patients",
        json={"mrn": "CI-X", "display_name": "Flo", "contraindications": ["asthma"]},
    )

    body = problem(response, 422, "validation")
    assert body["errors"]
    assert by_mrn(world, "CI-X") == []


@pytest.mark.parametrize("code", CONTRAINDICATIONS)
def test_every_contraindication_code_of_the_protocol_is_accepted(world: World, code: str) -> None:
    patient = world.patient(contraindications=[code])

    assert patient["contraindications"] == [code]
    assert world.nurse.get(f"/v1/patients/{patient['id']}").json()["contraindications"] == [code]


def test_a_patient_may_carry_all_contraindications_at_once(world: World) -> None:
    patient = world.patient(contraindications=CONTRAINDICATIONS)

    assert sorted(patient["contraindications"]) == sorted(CONTRAINDICATIONS)


def test_contraindications_keep_the_order_given_without_repeats(world: World) -> None:
    given = ["pregnancy", "aneurysm", "pregnancy"]
    patient = world.patient(contraindications=given)
    assert patient["contraindications"] == ["pregnancy", "aneurysm"]
    url = f"/v1/patients/{patient['id']}"
    assert world.nurse.get(url).json()["contraindications"] == ["pregnancy", "aneurysm"]
    changed = world.nurse.patch(url, json={"contraindications": ["stroke_history", "aneurysm"]})
    assert changed.json()["contraindications"] == ["stroke_history", "aneurysm"], changed.text


# --- reading -------------------------------------------------------------------------------


def test_a_patient_is_read_back_by_id(world: World) -> None:
    patient = world.patient(mrn="READ-1", birth_year=1970, contraindications=["aneurysm"])

    response = world.nurse.get(f"/v1/patients/{patient['id']}")

    assert response.status_code == 200, response.text
    assert response.json() == patient


def test_an_unknown_patient_id_is_not_found(world: World) -> None:
    problem(world.nurse.get(f"/v1/patients/{uuid.uuid4()}"), 404, "not-found")


def test_a_patient_is_found_by_mrn(world: World) -> None:
    world.patient(mrn="FIND-0")
    wanted = world.patient(mrn="FIND-1")

    response = world.nurse.get("/v1/patients", params={"mrn": "FIND-1"})

    assert response.status_code == 200, response.text
    assert response.json()["items"] == [wanted]
    assert response.json()["next_cursor"] is None


def test_an_unknown_mrn_finds_no_patient(world: World) -> None:
    world.patient(mrn="THERE-1")

    assert by_mrn(world, "NOT-THERE") == []


# --- changing ------------------------------------------------------------------------------


def test_patch_changes_the_display_name_and_keeps_the_rest(world: World) -> None:
    patient = world.patient(mrn="P-1", birth_year=1990, contraindications=["pregnancy"])

    response = world.nurse.patch(
        f"/v1/patients/{patient['id']}", json={"display_name": "Jordan Renamed"}
    )

    assert response.status_code == 200, response.text
    stored = world.nurse.get(f"/v1/patients/{patient['id']}").json()
    assert stored["display_name"] == "Jordan Renamed"
    assert (stored["mrn"], stored["birth_year"]) == ("P-1", 1990)
    assert stored["contraindications"] == ["pregnancy"]


def test_patch_replaces_the_contraindications(world: World) -> None:
    patient = world.patient(contraindications=["pregnancy"])
    url = f"/v1/patients/{patient['id']}"

    changed = world.clinician.patch(url, json={"contraindications": ["stroke_history"]})
    assert changed.status_code == 200, changed.text
    assert world.nurse.get(url).json()["contraindications"] == ["stroke_history"]

    cleared = world.nurse.patch(url, json={"contraindications": []})
    assert cleared.status_code == 200, cleared.text
    assert world.nurse.get(url).json()["contraindications"] == []


def test_patch_rejects_an_unknown_contraindication(world: World) -> None:
    patient = world.patient(contraindications=["pregnancy"])
    url = f"/v1/patients/{patient['id']}"

    problem(world.nurse.patch(url, json={"contraindications": ["flu"]}), 422, "validation")
    assert world.nurse.get(url).json()["contraindications"] == ["pregnancy"]


@pytest.mark.parametrize(
    "body",
    [
        {"mrn": "CHANGED"},
        {"display_name": "New Name", "mrn": "CHANGED"},
        {"nickname": "Jo"},
        {"clinic_id": str(uuid.uuid4())},
        {"display_name": None},
        {"contraindications": None, "display_name": "New Name"},
    ],
    ids=["mrn", "mrn-with-name", "unknown-field", "clinic_id", "null-name", "null-list"],
)
def test_patch_of_mrn_or_an_unknown_field_is_rejected(world: World, body: dict[str, Any]) -> None:
    patient = world.patient(mrn="KEEP-1")
    url = f"/v1/patients/{patient['id']}"

    problem(world.nurse.patch(url, json=body), 422, "validation")
    assert world.nurse.get(url).json() == patient


def test_patients_are_never_deleted(world: World) -> None:
    patient = world.patient()
    url = f"/v1/patients/{patient['id']}"

    response = world.clinician.request("DELETE", url)

    assert response.status_code in (404, 405)
    assert world.nurse.get(url).status_code == 200


# --- tenancy and roles ---------------------------------------------------------------------


def test_another_clinics_patient_is_not_found_for_read_or_change(world: World) -> None:
    theirs = world.patient(world.other_nurse, mrn="THEIRS-1", display_name="Their Patient")
    url = f"/v1/patients/{theirs['id']}"

    problem(world.nurse.get(url), 404, "not-found")
    problem(world.clinician.patch(url, json={"display_name": "Hijacked"}), 404, "not-found")
    assert by_mrn(world, "THEIRS-1") == []
    assert world.other_nurse.get(url).json()["display_name"] == "Their Patient"


@pytest.mark.parametrize("role", ["dashboard", "admin"])
def test_dashboards_and_admins_may_not_read_patients(world: World, role: str) -> None:
    patient = world.patient(mrn="SECRET-1")
    caller = getattr(world, role)

    problem(caller.get(f"/v1/patients/{patient['id']}"), 403, "forbidden")
    problem(caller.get("/v1/patients", params={"mrn": "SECRET-1"}), 403, "forbidden")


@pytest.mark.parametrize("role", ["dashboard", "admin", "ehr"])
def test_only_bedside_roles_may_register_or_change_patients(world: World, role: str) -> None:
    patient = world.patient(display_name="Original")
    caller = getattr(world, role)

    created = caller.post("/v1/patients", json={"mrn": "NOPE-1", "display_name": "No"})
    changed = caller.patch(f"/v1/patients/{patient['id']}", json={"display_name": "Changed"})

    problem(created, 403, "forbidden")
    problem(changed, 403, "forbidden")
    assert by_mrn(world, "NOPE-1") == []
    assert world.nurse.get(f"/v1/patients/{patient['id']}").json()["display_name"] == "Original"


def test_an_ehr_may_read_patients(world: World) -> None:
    patient = world.patient(mrn="EHR-1")

    response = world.ehr.get(f"/v1/patients/{patient['id']}")

    assert response.status_code == 200, response.text
    assert response.json() == patient
    assert by_mrn(world, "EHR-1", "ehr") == [patient]


def test_patients_need_an_api_key(world: World) -> None:
    patient = world.patient()

    problem(world.client.get(f"/v1/patients/{patient['id']}"), 401, "unauthorized")
    anonymous = world.client.post("/v1/patients", json={"mrn": "ANON", "display_name": "X"})
    problem(anonymous, 401, "unauthorized")
