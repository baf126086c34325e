"""The live board: one row per active session of the clinic, with an ETag for cheap polling."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.factories import World, ago, alert_action, expect_problem, parse_time, shifted, started

Json = dict[str, Any]
ROW_FIELDS = {
    "session_id", "patient", "status", "phase", "phase_started_at", "latest_reading", "alerts",
    "recovery_status", "vitals_due_at", "next_assessment_due_at",
}  # fmt: skip
# hr.high (high), bp.systolic.high (high), bp.rise_from_baseline (medium), news2 3 in one (medium)
ALARMING = {
    "heart_rate": 135, "systolic": 185, "diastolic": 95, "spo2": 97, "respiratory_rate": 16,
    "temperature_c": 36.8, "consciousness": "alert",
}  # fmt: skip


def board(world: World, caller_name: str = "dashboard", **headers: str) -> Json:
    response = getattr(world, caller_name).get("/v1/board", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["etag"]
    return response.json()  # type: ignore[no-any-return]


def rows(world: World) -> dict[str, Json]:
    return {row["session_id"]: row for row in board(world)["items"]}


def same_time(left: str | None, right: str) -> bool:
    return left is not None and parse_time(left) == parse_time(right)


def test_the_board_lists_only_the_clinics_active_sessions(world: World) -> None:
    in_chair, recovering = started(world), started(world, 12)
    world.transition(recovering, "end", at=ago(5))
    world.session()  # scheduled
    world.session(state="baseline")
    aborted = world.session(state="in_progress")
    world.transition(aborted, "abort", reason="patient asked to stop")
    discharged = world.session(state="recovery")
    world.transition(discharged, "discharge", world.clinician, override_reason="escorted home")
    world.session(world.other_nurse, state="in_progress")
    body = board(world)
    assert {row["session_id"] for row in body["items"]} == {in_chair["id"], recovering["id"]}
    assert abs(datetime.now(UTC) - parse_time(body["generated_at"])) < timedelta(minutes=1)
    assert [row["session_id"] for row in board(world, "other_nurse")["items"]] != []
    assert in_chair["id"] not in {row["session_id"] for row in board(world, "other_nurse")["items"]}


def test_a_row_in_the_chair_shows_patient_latest_reading_and_alerts(world: World) -> None:
    patient = world.patient(mrn="MRN-0042", display_name="Alex Rivera")
    session = started(world, patient_id=patient["id"])
    world.reading(session, measured_at=ago(6), heart_rate=80)
    latest = world.reading(session, measured_at=ago(3), **ALARMING)
    row = rows(world)[session["id"]]
    assert set(row) >= ROW_FIELDS
    assert row["patient"] == {
        "id": patient["id"],
        "display_name": "Alex Rivera",
        "mrn": "MRN-0042",
    }
    assert (row["status"], row["phase"]) == ("in_progress", "intra")
    assert same_time(row["phase_started_at"], session["started_at"])
    reading = row["latest_reading"]
    assert reading["id"] == latest["id"] and reading["heart_rate"] == 135
    assert reading["news2"] == latest["news2"]
    assert {"score", "risk", "complete", "missing", "parameters"} <= set(reading["news2"])
    assert (reading["news2"]["score"], reading["news2"]["complete"]) == (3, True)
    severities = sorted(a["severity"] for a in latest["alerts"])
    assert severities == ["high", "high", "medium", "medium"]
    assert row["alerts"] == {"high": 2, "medium": 2, "low": 0, "highest": "high"}
    assert row["recovery_status"] == "infusion_not_ended"
    assert same_time(row["vitals_due_at"], shifted(latest["measured_at"], 15))
    assert row["next_assessment_due_at"] is None


def test_a_row_in_recovery_shows_the_recovery_clock(world: World) -> None:
    session = started(world, 12)
    reading = world.reading(session, measured_at=ago(8), systolic=130, diastolic=80)
    ended = world.transition(session, "end", at=ago(5))
    row = rows(world)[session["id"]]
    assert (row["status"], row["phase"]) == ("recovery", "post")
    assert same_time(row["phase_started_at"], ended["infusion_ended_at"])
    assert row["latest_reading"]["id"] == reading["id"]
    assert row["recovery_status"] == "pending"
    assert same_time(row["next_assessment_due_at"], shifted(ended["infusion_ended_at"], 15))
    assert row["alerts"] == {"high": 0, "medium": 0, "low": 0, "highest": None}


def test_vitals_are_due_15_minutes_after_the_start_when_no_reading_followed(world: World) -> None:
    session = world.session()
    world.reading(session, measured_at=ago(4), systolic=124, diastolic=78, heart_rate=70)
    session = world.transition(session, "start", at=ago(2))
    row = rows(world)[session["id"]]
    assert row["latest_reading"]["systolic"] == 124  # the baseline, still the latest reading
    assert same_time(row["vitals_due_at"], shifted(session["started_at"], 15))


def test_alert_counts_are_of_active_alerts_only(world: World) -> None:
    session = started(world)
    latest = world.reading(session, measured_at=ago(3), **ALARMING)
    by_rule = {a["rule"]: a for a in latest["alerts"]}
    assert alert_action(world.nurse, by_rule["hr.high"], "acknowledge").status_code == 200
    assert rows(world)[session["id"]]["alerts"]["high"] == 2  # acknowledged is still active
    for rule in ("hr.high", "bp.systolic.high"):
        resolved = alert_action(world.clinician, by_rule[rule], "resolve", note="treated")
        assert resolved.status_code == 200
    assert rows(world)[session["id"]]["alerts"] == {
        "high": 0, "medium": 2, "low": 0, "highest": "medium",
    }  # fmt: skip


def test_an_overdue_session_shows_its_time_alert(world: World) -> None:
    session = started(world, 20)
    assert rows(world)[session["id"]]["alerts"] == {
        "high": 0, "medium": 0, "low": 1, "highest": "low",
    }  # fmt: skip


def test_etag_answers_304_until_the_data_changes(world: World) -> None:
    session = started(world)
    world.reading(session, measured_at=ago(4), heart_rate=80)
    first = world.dashboard.get("/v1/board")
    etag = first.headers["etag"]
    assert world.dashboard.get("/v1/board").headers["etag"] == etag  # generated_at aside
    unchanged = world.dashboard.get("/v1/board", headers={"If-None-Match": etag})
    assert unchanged.status_code == 304 and unchanged.content == b""
    assert unchanged.headers["etag"] == etag
    for sent in (etag.removeprefix("W/"), "*"):  # weak comparison; any current version
        again = world.dashboard.get("/v1/board", headers={"If-None-Match": sent})
        assert (again.status_code, again.headers["etag"]) == (304, etag), sent
    world.reading(session, measured_at=ago(2), heart_rate=84)
    changed = world.dashboard.get("/v1/board", headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["etag"] != etag
    assert changed.json()["items"][0]["latest_reading"]["heart_rate"] == 84


@pytest.mark.parametrize("role", ["dashboard", "nurse", "clinician", "ehr"])
def test_readers_of_the_clinic_may_see_the_board(world: World, role: str) -> None:
    session = started(world)
    assert [row["session_id"] for row in board(world, role)["items"]] == [session["id"]]


@pytest.mark.parametrize("role", ["admin", "global_admin"])
def test_an_admin_may_not_see_the_board(world: World, role: str) -> None:
    expect_problem(getattr(world, role).get("/v1/board"), 403, "forbidden")
