"""The clinic protocol: PROTOCOL.md's defaults, new versions, and sessions keeping theirs."""

from __future__ import annotations

from typing import Any

import pytest

from tests.factories import World, ago, expect_problem, shifted, started

Json = dict[str, Any]
# PROTOCOL.md "Threshold rules": rule -> (low, medium, high).
DEFAULTS = {
    "bp.systolic.high": (None, 160, 180),
    "bp.diastolic.high": (None, 100, 110),
    "bp.systolic.low": (None, 90, 80),
    "hr.high": (None, 110, 130),
    "hr.low": (None, 50, 40),
    "spo2.low": (None, 93, 90),
    "rr.low": (None, 10, 8),
    "rr.high": (None, 25, None),
    "news2": (None, 5, 7),
    "sedation.deep": (None, 3, 2),
    "symptom.vomiting": (None, 1, None),
    "vitals.overdue": (15, 30, None),
    "dissociation.unresolved": (None, 60, 120),
}
FAST_HEART = {"thresholds": {"hr.high": {"medium": 100, "high": 120}}}


def current(world: World) -> Json:
    response = world.nurse.get("/v1/protocol")
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def put(world: World, body: Json) -> Json:
    response = world.clinician.request("PUT", "/v1/protocol", json=body)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def limits(protocol: Json, rule: str) -> tuple[Any, Any, Any]:
    found = protocol["thresholds"][rule]
    return found.get("low"), found.get("medium"), found.get("high")


def hr_alert(world: World, session: Json, heart_rate: int) -> Json | None:
    reading = world.reading(session, measured_at=ago(1), heart_rate=heart_rate)
    found = [a for a in reading["alerts"] if a["rule"] == "hr.high"]
    return found[0] if found else None


def test_the_default_protocol_is_version_1_with_protocol_md_numbers(world: World) -> None:
    protocol = current(world)
    assert protocol["version"] == 1
    for rule, expected in DEFAULTS.items():
        assert limits(protocol, rule) == expected, rule
    assert protocol["screening"] == {"systolic_max": 140, "diastolic_max": 90}


@pytest.mark.parametrize("role", ["clinician", "ehr"])
def test_clinical_roles_read_the_protocol(world: World, role: str) -> None:
    response = getattr(world, role).get("/v1/protocol")
    assert response.status_code == 200 and response.json()["version"] == 1


def test_a_clinician_stores_a_new_version(world: World) -> None:
    stored = put(world, FAST_HEART)
    assert stored["version"] == 2
    assert limits(stored, "hr.high") == (None, 100, 120)
    assert limits(stored, "bp.systolic.high") == (None, 160, 180)  # omitted: the default
    assert current(world) == stored
    assert put(world, {"screening": {"systolic_max": 150, "diastolic_max": 95}})["version"] == 3
    assert current(world)["screening"] == {"systolic_max": 150, "diastolic_max": 95}


def test_a_stored_protocol_belongs_to_its_clinic(world: World) -> None:
    put(world, FAST_HEART)
    other = world.other_nurse.get("/v1/protocol").json()
    assert other["version"] == 1 and limits(other, "hr.high") == (None, 110, 130)


@pytest.mark.parametrize("role", ["nurse", "dashboard"])
def test_only_a_clinician_changes_the_protocol(world: World, role: str) -> None:
    response = getattr(world, role).request("PUT", "/v1/protocol", json=FAST_HEART)
    expect_problem(response, 403, "forbidden")
    assert current(world)["version"] == 1


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"thresholds": {"hr.high": {"medium": 110, "high": 100}}}, id="high-below"),
        pytest.param({"thresholds": {"hr.low": {"medium": 40, "high": 50}}}, id="low-above"),
        pytest.param({"thresholds": {"hr.sky_high": {"medium": 150}}}, id="unknown-rule"),
        pytest.param({"thresholds": {"hr.high": {"medium": 110, "critical": 150}}}, id="field"),
        pytest.param({**FAST_HEART, "colour": "red"}, id="unknown-field"),
        pytest.param({"screening": {"systolic_max": 140, "pulse_max": 100}}, id="screening"),
        pytest.param({"thresholds": {"hr.high": {"medium": "fast"}}}, id="not-a-number"),
    ],
)
def test_an_invalid_protocol_is_rejected_and_nothing_stored(world: World, body: Json) -> None:
    response = world.clinician.request("PUT", "/v1/protocol", json=body)
    expect_problem(response, 422, "validation")
    protocol = current(world)
    assert protocol["version"] == 1 and limits(protocol, "hr.high") == (None, 110, 130)


def test_a_started_session_keeps_its_version_and_later_ones_follow_the_new(
    world: World,
) -> None:
    before = started(world)
    scheduled = world.session()  # created before the change, started after it
    assert (before["protocol_version"], scheduled["protocol_version"]) == (1, 1)
    put(world, FAST_HEART)
    world.reading(scheduled, measured_at=ago(4), systolic=124, diastolic=78)
    after, late = started(world), world.transition(scheduled, "start", at=ago(2))
    assert (after["protocol_version"], late["protocol_version"]) == (2, 2)
    fetched = world.nurse.get(f"/v1/sessions/{before['id']}").json()
    assert fetched["protocol_version"] == 1

    assert hr_alert(world, before, 105) is None  # version 1: medium from 110
    old = hr_alert(world, before, 115)
    assert old is not None
    assert (old["severity"], old["threshold"], old["protocol_version"]) == ("medium", 110, 1)
    for session in (after, late):
        new = hr_alert(world, session, 100)
        assert new is not None
        assert (new["severity"], new["threshold"], new["protocol_version"]) == ("medium", 100, 2)
        escalated = hr_alert(world, session, 121)
        assert escalated is not None
        assert (escalated["severity"], escalated["threshold"]) == ("high", 120)
        assert escalated["id"] == new["id"]


def test_new_screening_limits_gate_sessions_started_later(world: World) -> None:
    put(world, {"screening": {"systolic_max": 120, "diastolic_max": 80}})
    session = world.session()
    world.reading(session, measured_at=ago(3), systolic=124, diastolic=78)
    response = world.nurse.post(f"/v1/sessions/{session['id']}/start", json={"at": ago(2)})
    body = expect_problem(response, 409, "screening-review-required")
    assert body["reasons"] == ["baseline_bp_above_limit"]


def test_time_rules_follow_the_sessions_protocol(world: World) -> None:
    before = started(world, 12)  # version 1: overdue from 15 minutes
    put(world, {"thresholds": {"vitals.overdue": {"low": 10, "medium": 20}}})
    after = started(world, 12)
    found = world.dashboard.get("/v1/alerts").json()["items"]
    assert [a["session_id"] for a in found] == [after["id"]]
    assert (found[0]["rule"], found[0]["threshold"]) == ("vitals.overdue", 10)
    assert found[0]["protocol_version"] == 2
    due = {
        row["session_id"]: row["vitals_due_at"]
        for row in world.nurse.get("/v1/board").json()["items"]
    }
    assert due[before["id"]] == shifted(before["started_at"], 15)
    assert due[after["id"]] == shifted(after["started_at"], 10)
