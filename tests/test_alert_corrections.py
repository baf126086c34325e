"""Alerts stay true to their evidence: updates, late entries into closed sessions, corrections."""

from __future__ import annotations

from typing import Any

import pytest

from tests.factories import (
    World,
    ago,
    alert_items,
    parse_time,
    post_observation,
    raised,
    shifted,
    started,
)
from tests.factories import acknowledge_alert as acknowledge

Json = dict[str, Any]


def alert(world: World, alert_id: str) -> Json:
    response = world.nurse.get(f"/v1/alerts/{alert_id}")
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def void(world: World, entry: Json, what: str = "readings") -> None:
    url = f"/v1/{what}/{entry['id']}/entered-in-error"
    response = world.nurse.post(url, json={"reason": "wrong patient"})
    assert response.status_code == 200, response.text


def same(a: str | None, b: str | None) -> bool:
    return a is not None and b is not None and parse_time(a) == parse_time(b)


# --- late entries into a discharged or aborted session --------------------------------------
def closed(world: World, how: str) -> Json:
    """A session started 40 and ended 35 minutes ago, then discharged (with override) or aborted."""
    session = started(world, minutes_ago=40)
    world.transition(session, "end", at=ago(35))
    if how == "discharged":
        return world.transition(
            session, "discharge", world.clinician, override_reason="transferred to ward"
        )
    return world.transition(session, "abort", reason="patient asked to stop")


@pytest.mark.parametrize("how", ["discharged", "aborted"])
def test_a_late_reading_into_a_closed_session_leaves_its_alerts_resolved(
    world: World, how: str
) -> None:
    session = closed(world, how)
    cursor = world.dashboard.get("/v1/alerts").json()["changes_cursor"]
    late = world.reading(session, measured_at=ago(38), heart_rate=140)
    found = raised(late, "hr.high")
    assert (found["status"], found["resolution_note"]) == ("resolved", f"session {how}")
    assert found["resolved_at"] is not None and found["value"] == 140
    assert alert(world, found["id"]) == found
    assert alert_items(world.nurse, session_id=session["id"], status="active") == []
    assert found in alert_items(world.dashboard, changed_after=cursor)


@pytest.mark.parametrize("how", ["discharged", "aborted"])
def test_a_late_observation_into_a_closed_session_leaves_its_alert_resolved(
    world: World, how: str
) -> None:
    session = closed(world, how)
    late = post_observation(world, session, kind="vomiting", severity=2, measured_at=ago(30))
    found = raised(late, "symptom.vomiting")
    assert (found["status"], found["resolution_note"]) == ("resolved", f"session {how}")
    assert alert(world, found["id"]) == found
    assert alert_items(world.nurse, session_id=session["id"], status="active") == []


def test_a_late_batch_into_a_closed_session_shows_every_alert_as_it_stands(world: World) -> None:
    session = closed(world, "aborted")
    body = {"readings": [{"measured_at": ago(m), "heart_rate": 140} for m in (39, 38)]}
    response = world.nurse.post(f"/v1/sessions/{session['id']}/readings:batch", json=body)
    assert response.status_code == 201, response.text
    items = response.json()["items"]
    alerts = [a for item in items for a in item["alerts"] if a["rule"] == "hr.high"]
    assert len(alerts) == 2 and len({a["id"] for a in alerts}) == 1
    assert {(a["status"], a["resolution_note"], a["count"]) for a in alerts} == {
        ("resolved", "session aborted", 2)
    }


# --- an updated alert's value and threshold come from the same finding --------------------------
@pytest.mark.parametrize(
    ("first", "then", "value", "threshold"),
    [((165, 80), (150, 106), 106, 105), ((150, 106), (165, 80), 165, 160)],
)
def test_updated_rise_from_baseline_takes_value_and_threshold_from_one_component(
    world: World, first: tuple[int, int], then: tuple[int, int], value: int, threshold: int
) -> None:
    session = world.session()
    world.reading(session, measured_at=ago(28), systolic=120, diastolic=80)
    session = world.transition(session, "start", at=ago(25))
    rise = "bp.rise_from_baseline"
    sys_, dia = first
    opened = raised(world.reading(session, measured_at=ago(6), systolic=sys_, diastolic=dia), rise)
    sys_, dia = then
    updated = raised(world.reading(session, measured_at=ago(5), systolic=sys_, diastolic=dia), rise)
    assert (updated["id"], updated["count"]) == (opened["id"], 2)
    assert (updated["value"], updated["threshold"]) == (value, threshold)
    assert str(value) in updated["message"]
    assert alert(world, updated["id"]) == updated


def test_a_lower_violation_keeps_the_limit_of_the_current_severity(world: World) -> None:
    session = started(world)
    world.reading(session, measured_at=ago(6), heart_rate=135)
    later = raised(world.reading(session, measured_at=ago(5), heart_rate=115), "hr.high")
    assert (later["severity"], later["value"], later["threshold"]) == ("high", 115, 130)


# --- entering in error the evidence that cleared or last violated ---------------------------
def test_voiding_the_reading_that_cleared_an_alert_unclears_it(world: World) -> None:
    session = started(world)
    opened = raised(world.reading(session, measured_at=ago(6), heart_rate=135), "hr.high")
    clearing = world.reading(session, measured_at=ago(5), heart_rate=80)
    assert same(alert(world, opened["id"])["cleared_at"], clearing["measured_at"])
    void(world, clearing)
    now = alert(world, opened["id"])
    assert (now["status"], now["cleared_at"]) == ("open", None)
    acked = acknowledge(world, opened)
    assert (acked["status"], acked["resolution_note"]) == ("acknowledged", None)


def test_voiding_one_clearing_reading_leaves_the_next_one_clearing(world: World) -> None:
    session = started(world)
    opened = raised(world.reading(session, measured_at=ago(6), heart_rate=135), "hr.high")
    first = world.reading(session, measured_at=ago(5), heart_rate=80)
    second = world.reading(session, measured_at=ago(4), heart_rate=82)
    world.reading(session, measured_at=ago(3), systolic=128, diastolic=80)  # no heart rate
    void(world, first)
    assert same(alert(world, opened["id"])["cleared_at"], second["measured_at"])
    done = acknowledge(world, opened)
    assert (done["status"], done["resolution_note"]) == ("resolved", "cleared")


def test_voiding_the_latest_violation_takes_value_and_times_from_the_remaining_one(
    world: World,
) -> None:
    session = started(world)
    first = world.reading(session, measured_at=ago(6), heart_rate=135)
    clearing = world.reading(session, measured_at=ago(5), heart_rate=80)
    latest = world.reading(session, measured_at=ago(4), heart_rate=120)
    opened = raised(latest, "hr.high")
    assert (opened["value"], opened["cleared_at"], opened["count"]) == (120, None, 2)
    void(world, latest)
    now = alert(world, opened["id"])
    assert (now["status"], now["severity"], now["value"], now["threshold"]) == (
        "open", "high", 135, 130,
    )  # fmt: skip
    assert now["reading_id"] == first["id"] and "135" in now["message"]
    assert same(now["last_seen_at"], first["measured_at"])
    assert same(now["cleared_at"], clearing["measured_at"])


def test_voiding_the_observation_that_cleared_an_alert_unclears_it(world: World) -> None:
    session = started(world)
    vomit = post_observation(world, session, kind="vomiting", severity=1, measured_at=ago(6))
    opened = raised(vomit, "symptom.vomiting")
    clearing = post_observation(world, session, kind="vomiting", severity=0, measured_at=ago(5))
    assert same(alert(world, opened["id"])["cleared_at"], clearing["measured_at"])
    void(world, clearing, "observations")
    assert alert(world, opened["id"])["cleared_at"] is None


def test_voiding_the_symptom_that_cleared_symptom_severe_unclears_it(world: World) -> None:
    session = started(world)
    nausea = post_observation(world, session, kind="nausea", severity=3, measured_at=ago(6))
    opened = raised(nausea, "symptom.severe")
    settled = post_observation(world, session, kind="nausea", severity=1, measured_at=ago(5))
    assert same(alert(world, opened["id"])["cleared_at"], settled["measured_at"])
    void(world, settled, "observations")
    assert alert(world, opened["id"])["cleared_at"] is None


def test_voiding_the_only_evidence_still_resolves_the_alert(world: World) -> None:
    session = started(world)
    reading = world.reading(session, measured_at=ago(6), heart_rate=135)
    world.reading(session, measured_at=ago(5), heart_rate=80)
    void(world, reading)
    done = alert(world, raised(reading, "hr.high")["id"])
    assert (done["status"], done["resolution_note"]) == (
        "resolved",
        "entered-in-error: wrong patient",
    )


NORMAL = {"respiratory_rate": 16, "spo2": 98, "systolic": 120, "diastolic": 70,
          "heart_rate": 70, "consciousness": "alert", "temperature_c": 37.0}  # fmt: skip


def test_voiding_a_value_carried_into_news2_resolves_the_news2_alert_it_alone_raised(
    world: World,
) -> None:
    """A wrong-patient heart rate of 135 scores 3; a later reading that lacks a heart rate
    borrows it and raises NEWS2 too. Voided, the 135 leaves every score, so no valid reading
    supports the alert any longer."""
    session = started(world, minutes_ago=20)
    world.reading(session, measured_at=ago(10), **NORMAL)
    wrong = world.reading(session, measured_at=ago(8), heart_rate=135)
    borrowing = world.reading(session, measured_at=ago(6), spo2=98, heart_rate=None)
    assert borrowing["news2"]["parameters"]["heart_rate"]["value"] == 135
    opened = raised(borrowing, "news2")
    assert (opened["count"], opened["reading_id"]) == (2, borrowing["id"])
    void(world, wrong)
    done = alert(world, opened["id"])
    assert (done["status"], done["resolution_note"]) == (
        "resolved", "entered-in-error: wrong patient",
    )  # fmt: skip
    assert alert_items(world.nurse, session_id=session["id"], status="active") == []


def test_voiding_a_carried_value_keeps_the_news2_alert_on_what_still_violates(
    world: World,
) -> None:
    session = started(world, minutes_ago=20)
    world.reading(session, measured_at=ago(10), **NORMAL)
    real = world.reading(session, measured_at=ago(9), **{**NORMAL, "respiratory_rate": 26})
    wrong = world.reading(session, measured_at=ago(8), heart_rate=135)
    borrowing = world.reading(
        session, measured_at=ago(6), spo2=98, heart_rate=None
    )  # carries rr 26 and hr 135
    opened = raised(borrowing, "news2")
    assert (opened["value"], opened["count"]) == (6, 3)
    void(world, wrong)
    now = alert(world, opened["id"])
    assert (now["status"], now["severity"], now["value"]) == ("open", "medium", 3)
    assert now["reading_id"] == borrowing["id"] and same(
        now["last_seen_at"], borrowing["measured_at"]
    )
    assert real["news2"]["score"] == 3


def test_voiding_the_baseline_judges_the_rise_from_baseline_again(world: World) -> None:
    session = world.session()
    world.reading(session, measured_at=ago(14), systolic=150, diastolic=80)
    low = world.reading(session, measured_at=ago(13), systolic=100, diastolic=60)
    world.transition(session, "start", world.clinician, at=ago(12),
                     override_reason="reviewed")  # fmt: skip
    risen = world.reading(session, measured_at=ago(6), systolic=145, diastolic=80)
    opened = raised(risen, "bp.rise_from_baseline")
    void(world, low)  # the baseline is 150/80 again: 145/80 is no rise
    done = alert(world, opened["id"])
    assert (done["status"], done["resolution_note"]) == (
        "resolved", "entered-in-error: wrong patient",
    )  # fmt: skip


# --- vitals.overdue restarts its clock when a valid reading arrives -------------------------
def overdue(world: World, session: Json) -> list[Json]:
    found = alert_items(world.dashboard, session_id=session["id"])
    return [a for a in found if a["rule"] == "vitals.overdue"]


def test_a_backfilled_reading_resolves_overdue_and_a_poll_opens_one_on_the_new_gap(
    world: World,
) -> None:
    session = started(world, minutes_ago=40)
    [stale] = overdue(world, session)
    assert stale["severity"] == "medium" and stale["value"] >= 40
    cursor = world.dashboard.get("/v1/alerts").json()["changes_cursor"]
    reading = world.reading(session, measured_at=ago(20), heart_rate=76)
    # The reading ends the alert; the gap since it is an alert for the next poll to raise (a
    # write raises no time alert: a sync's next entry would end it again at once).
    [ended] = [a for a in reading["alerts"] if a["rule"] == "vitals.overdue"]
    assert (ended["id"], ended["status"]) == (stale["id"], "resolved")
    assert ended["resolution_note"] == "condition ended"
    [fresh] = [a for a in overdue(world, session) if a["id"] != stale["id"]]
    assert (fresh["status"], fresh["severity"], fresh["threshold"]) == ("open", "low", 15)
    assert 20 - 0.1 <= fresh["value"] <= 21
    assert same(fresh["first_seen_at"], shifted(reading["measured_at"], 15))
    assert same(fresh["last_seen_at"], shifted(reading["measured_at"], 15))
    seen = {a["id"]: a["status"] for a in alert_items(world.dashboard, changed_after=cursor)}
    assert seen == {stale["id"]: "resolved", fresh["id"]: "open"}


def test_a_reading_measured_now_only_resolves_overdue(world: World) -> None:
    session = started(world, minutes_ago=40)
    [stale] = overdue(world, session)
    cursor = world.dashboard.get("/v1/alerts").json()["changes_cursor"]
    reading = world.reading(session, measured_at=ago(0.5), heart_rate=76)
    [ended] = [a for a in reading["alerts"] if a["rule"] == "vitals.overdue"]
    assert (ended["id"], ended["status"]) == (stale["id"], "resolved")
    assert [a["id"] for a in alert_items(world.dashboard, changed_after=cursor)] == [stale["id"]]


def test_a_late_entry_older_than_the_clock_leaves_overdue_as_it_is(world: World) -> None:
    session = started(world, minutes_ago=40)
    [stale] = overdue(world, session)
    reading = world.reading(session, measured_at=ago(45), heart_rate=76)  # before the start
    assert [a for a in reading["alerts"] if a["rule"] == "vitals.overdue"] == []
    [same_one] = overdue(world, session)
    assert (same_one["id"], same_one["status"]) == (stale["id"], "open")


# --- voiding the first evidence ---------------------------------------------------------------
def test_voiding_an_alerts_first_violation_dates_and_counts_it_from_the_rest(
    world: World,
) -> None:
    session = started(world, minutes_ago=20)
    first, second, third = (
        world.reading(session, measured_at=ago(minutes), heart_rate=rate)
        for minutes, rate in ((15, 131), (10, 118), (5, 120))
    )
    opened = raised(first, "hr.high")
    assert (alert(world, opened["id"])["count"], opened["severity"]) == (3, "high")
    void(world, first)
    after = alert(world, opened["id"])
    assert (after["status"], after["count"]) == ("open", 2)
    assert same(after["first_seen_at"], second["measured_at"])
    assert same(after["last_seen_at"], third["measured_at"])
    assert after["severity"] == "high"  # never lowered, though 131 is gone
    void(world, third)
    after = alert(world, opened["id"])
    assert after["count"] == 1 and same(after["last_seen_at"], second["measured_at"])


def test_voiding_the_reading_the_overdue_clock_ran_from_moves_the_alert_back(
    world: World,
) -> None:
    session = started(world, minutes_ago=40)
    reading = world.reading(session, measured_at=ago(25), heart_rate=76)
    [low] = [a for a in alert_items(world.nurse, session_id=session["id"], status="active")
             if a["rule"] == "vitals.overdue"]  # fmt: skip
    assert low["severity"] == "low"
    assert same(low["first_seen_at"], shifted(reading["measured_at"], 15))
    void(world, reading)
    [now] = [a for a in alert_items(world.nurse, session_id=session["id"], status="active")
             if a["rule"] == "vitals.overdue"]  # fmt: skip
    assert (now["id"], now["severity"], now["threshold"]) == (low["id"], "medium", 30)
    assert low["value"] == pytest.approx(25, abs=0.5)
    assert now["value"] == pytest.approx(40, abs=0.5)  # minutes since the clock really started
    assert same(now["first_seen_at"], shifted(session["started_at"], 15))
    assert same(now["last_seen_at"], shifted(session["started_at"], 30))
    board = world.dashboard.get("/v1/board").json()["items"]
    [row] = [r for r in board if r["session_id"] == session["id"]]
    assert same(row["vitals_due_at"], now["first_seen_at"])  # the board agrees
