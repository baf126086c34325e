"""Encounter/$everything: the Patient, the Encounter, every Observation, and the session's alerts
as DetectedIssue with their severity, evidence and what people did about them."""

from __future__ import annotations

from typing import Any

from tests.factories import World, ago, alert_action, alert_items, create_entry
from tests.fhir_support import everything, outcome, resources, search

ALERT_RULE = "https://vigil.example/fhir/CodeSystem/alert-rule"


def issues_by_rule(bundle: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found = resources(bundle, "DetectedIssue")
    return {i["code"]["coding"][0]["code"]: i for i in found}


def test_everything_holds_the_patient_the_encounter_and_every_observation(world: World) -> None:
    session = world.session(state="in_progress")
    wrong = world.reading(session, measured_at=ago(6), heart_rate=180)
    world.nurse.post(f"/v1/readings/{wrong['id']}/entered-in-error", json={"reason": "typo"})
    kept = world.reading(session, measured_at=ago(4), heart_rate=84, spo2=98, consciousness="alert")
    create_entry(world, session, "observations", kind="dissociation", severity=1, cadss=8)
    bundle = everything(world, session)
    assert bundle["type"] == "searchset" and bundle["total"] == len(bundle["entry"])
    [patient] = resources(bundle, "Patient")
    [encounter] = resources(bundle, "Encounter")
    assert patient["id"] == session["patient_id"] and encounter["id"] == session["id"]
    searched = resources(search(world.ehr, encounter=session["id"], _count=500))
    assert resources(bundle, "Observation") == searched  # the same resources, in the same order
    statuses = {r["id"]: r["status"] for r in searched}
    assert statuses[f"{wrong['id']}-hr"] == statuses[f"{wrong['id']}-panel"] == "entered-in-error"
    # each reading's vital signs panel follows its members
    ids = [r["id"] for r in searched]
    assert ids.index(f"{kept['id']}-panel") == ids.index(f"{kept['id']}-spo2") + 1
    panel = next(r for r in searched if r["id"] == f"{kept['id']}-panel")
    assert statuses[panel["id"]] == "final" and "valueQuantity" not in panel
    assert panel["hasMember"] == [
        {"reference": f"Observation/{kept['id']}-hr"}, {"reference": f"Observation/{kept['id']}-spo2"},
    ]  # fmt: skip
    # vital signs and a panel of the baseline (HR, BP) and of both readings; the dissociation
    assert len(resources(bundle, "Observation")) == (2 + 1) + (1 + 1) + (2 + 1) + 1
    for entry in bundle["entry"]:
        resource = entry["resource"]
        if resource["resourceType"] != "DetectedIssue":
            assert entry["fullUrl"].endswith(
                f"/fhir/R4/{resource['resourceType']}/{resource['id']}"
            )


def test_alerts_are_detected_issues_with_severity_evidence_and_mitigation(world: World) -> None:
    session = world.session(state="in_progress")
    first = world.reading(session, measured_at=ago(8), heart_rate=135, systolic=165, diastolic=90)
    second = world.reading(session, measured_at=ago(6), heart_rate=140)
    sedated = create_entry(world, session, "observations", kind="sedation", moaas=3)
    alerts = {a["rule"]: a for a in alert_items(world.nurse, session_id=session["id"])}
    assert (
        alert_action(world.nurse, alerts["hr.high"], "acknowledge", note="rechecking").status_code
        == 200
    )
    assert (
        alert_action(world.clinician, alerts["hr.high"], "resolve", note="settled").status_code
        == 200
    )
    alerts = {a["rule"]: a for a in alert_items(world.nurse, session_id=session["id"])}

    issues = issues_by_rule(everything(world, session))
    assert set(issues) == set(alerts)
    for rule, issue in issues.items():
        alert = alerts[rule]
        assert issue["id"] == alert["id"]
        assert issue["code"]["coding"][0]["system"] == ALERT_RULE
        assert (
            issue["severity"]
            == {"high": "high", "medium": "moderate", "low": "low"}[alert["severity"]]
        )
        assert issue["patient"] == {"reference": f"Patient/{session['patient_id']}"}
        assert issue["identifiedDateTime"] == alert["first_seen_at"]
        assert issue["detail"] == alert["message"]

    hr = issues["hr.high"]
    assert hr["status"] == "final"
    assert hr["implicated"] == [
        {"reference": f"Observation/{first['id']}-hr"}, {"reference": f"Observation/{second['id']}-hr"},
    ]  # fmt: skip
    acknowledged, resolved = hr["mitigation"]
    assert acknowledged["date"] == alerts["hr.high"]["acknowledged_at"]
    assert acknowledged["action"]["coding"][0]["code"] == "acknowledged"
    assert "rechecking" in acknowledged["action"]["text"]
    assert acknowledged["author"]["identifier"]["value"] == str(world.nurse.key_id)
    assert resolved["date"] == alerts["hr.high"]["resolved_at"]
    assert "settled" in resolved["action"]["text"]
    assert resolved["author"]["identifier"]["value"] == str(world.clinician.key_id)

    bp = issues["bp.systolic.high"]
    assert bp["status"] == "preliminary" and bp["severity"] == "moderate"
    assert bp["implicated"] == [{"reference": f"Observation/{first['id']}-bp"}]
    assert "mitigation" not in bp
    sedation = issues["sedation.deep"]
    assert sedation["implicated"] == [{"reference": f"Observation/{sedated['id']}"}]
    implicated = {i["reference"] for issue in issues.values() for i in issue.get("implicated", [])}
    assert not [i for i in implicated if i.endswith("-panel")]  # the vital signs raised them
    observations = {
        f"Observation/{r['id']}" for r in resources(everything(world, session), "Observation")
    }
    assert implicated <= observations


def test_a_news2_alert_implicates_every_vital_of_its_reading(world: World) -> None:
    session = world.session(state="in_progress")
    reading = world.reading(
        session, measured_at=ago(2), heart_rate=135, systolic=95, diastolic=60, spo2=91,
        respiratory_rate=26, temperature_c=39.5, consciousness="voice",
    )  # fmt: skip
    issue = issues_by_rule(everything(world, session))["news2"]
    assert issue["severity"] == "high"
    assert [i["reference"] for i in issue["implicated"]] == [
        f"Observation/{reading['id']}-{part}" for part in ("hr", "bp", "spo2", "rr", "temp")
    ]


def test_reduced_consciousness_implicates_the_vitals_of_its_reading(world: World) -> None:
    session = world.session(state="recovery")
    reading = world.reading(session, measured_at=ago(1), heart_rate=80, consciousness="voice")
    issue = issues_by_rule(everything(world, session))["consciousness.reduced"]
    assert issue["severity"] == "high"
    assert issue["implicated"] == [{"reference": f"Observation/{reading['id']}-hr"}]


def test_time_based_and_entered_in_error_alerts(world: World) -> None:
    session = world.session(state="in_progress")  # started 25 minutes ago, no reading since
    wrong = world.reading(session, measured_at=ago(30, seconds=-30), spo2=85)  # before the start
    world.nurse.post(f"/v1/readings/{wrong['id']}/entered-in-error", json={"reason": "probe off"})
    issues = issues_by_rule(everything(world, session))
    overdue = issues["vitals.overdue"]
    assert overdue["severity"] == "low" and overdue["status"] == "preliminary"
    assert "implicated" not in overdue
    spo2 = issues["spo2.low"]
    assert spo2["status"] == "entered-in-error"
    assert spo2["implicated"] == [{"reference": f"Observation/{wrong['id']}-spo2"}]
    [resolved] = spo2["mitigation"]
    assert resolved["action"]["text"] == "Resolved: entered-in-error: probe off"
    assert "author" not in resolved  # resolved by the server, not a person


def test_an_active_alert_no_longer_implicates_evidence_since_entered_in_error(
    world: World,
) -> None:
    session = world.session(state="in_progress")
    kept = world.reading(session, measured_at=ago(6), heart_rate=118)
    voided = world.reading(session, measured_at=ago(4), heart_rate=121)
    world.nurse.post(f"/v1/readings/{voided['id']}/entered-in-error", json={"reason": "typo"})
    [alert] = alert_items(world.nurse, session_id=session["id"], status="active")
    assert alert["rule"] == "hr.high" and alert["reading_id"] == kept["id"]
    issue = issues_by_rule(everything(world, session))["hr.high"]
    assert issue["status"] == "preliminary"
    assert issue["implicated"] == [{"reference": f"Observation/{kept['id']}-hr"}]


def test_everything_is_for_the_clinics_clinical_readers(world: World) -> None:
    session = world.session(state="in_progress")
    path = f"/fhir/R4/Encounter/{session['id']}/$everything"
    outcome(world.other_nurse.get(path), 404)
    outcome(world.dashboard.get(path), 403)
    outcome(world.client.get(path), 401)
    for role in ("nurse", "clinician", "ehr"):
        assert getattr(world, role).get(path).status_code == 200
