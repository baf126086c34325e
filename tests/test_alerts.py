"""Alerts: acknowledging, resolving, latching, automatic resolution, polling, time rules, SSE."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.schemas import encode_cursor
from tests.factories import (
    World,
    ago,
    alert_items,
    caller_for,
    create_entry,
    expect_problem,
    metric_samples,
    new_key,
    parse_time,
    raised,
    shifted,
    started,
)
from tests.factories import alert_action as act
from tests.live import AlertStream, alert_stream, live_server, live_world  # noqa: F401
from tests.live import alert_change as of

Json = dict[str, Any]
HIGH_BP = {"systolic": 185, "diastolic": 95}  # bp.systolic.high (high), bp.rise_from_baseline
SHOCK = {"systolic": 185, "diastolic": 115, "heart_rate": 135, "spo2": 88, "respiratory_rate": 6}


def alert(world: World, alert_id: str) -> Json:
    response = world.nurse.get(f"/v1/alerts/{alert_id}")
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def recent(text: str) -> bool:
    return abs(datetime.now(UTC) - parse_time(text)) < timedelta(minutes=1)


@pytest.mark.parametrize(
    ("role", "allowed"), [("nurse", True), ("clinician", True), ("dashboard", False)]
)
def test_bedside_roles_acknowledge_and_their_key_is_recorded(
    world: World, role: str, allowed: bool
) -> None:
    opened = raised(world.reading(started(world), measured_at=ago(5), **HIGH_BP))
    response = act(getattr(world, role), opened, "acknowledge", note="re-checking")
    if not allowed:
        expect_problem(response, 403, "forbidden")
        assert alert(world, opened["id"])["status"] == "open"
        return
    assert response.status_code == 200, response.text
    acked = response.json()
    assert acked["status"] == "acknowledged" and recent(acked["acknowledged_at"])
    assert acked["acknowledged_by"] == str(getattr(world, role).key_id)
    assert alert(world, opened["id"]) == acked


def test_only_a_clinician_resolves_with_a_note_and_resolution_is_final(world: World) -> None:
    opened = raised(world.reading(started(world), measured_at=ago(5), **HIGH_BP))
    expect_problem(act(world.nurse, opened, "resolve", note="fine"), 403, "forbidden")
    expect_problem(act(world.clinician, opened, "resolve"), 422, "validation")
    expect_problem(act(world.clinician, opened, "resolve", note="  "), 422, "validation")
    assert alert(world, opened["id"])["status"] == "open"
    response = act(world.clinician, opened, "resolve", note="white-coat effect, re-measured")
    assert response.status_code == 200, response.text
    resolved = response.json()
    assert resolved["status"] == "resolved" and recent(resolved["resolved_at"])
    assert resolved["resolved_by"] == str(world.clinician.key_id)
    assert resolved["resolution_note"] == "white-coat effect, re-measured"
    assert alert(world, opened["id"]) == resolved
    # A resolved alert is final.
    expect_problem(act(world.nurse, opened, "acknowledge"), 409, "invalid-transition")
    expect_problem(act(world.clinician, opened, "resolve", note="again"), 409, "invalid-transition")
    assert alert(world, opened["id"]) == resolved


def test_a_cleared_open_alert_stays_open_until_acknowledged_then_resolves(world: World) -> None:
    session = started(world)
    opened = raised(world.reading(session, measured_at=ago(6), **HIGH_BP))
    clearing = world.reading(session, measured_at=ago(4), systolic=128, diastolic=80)
    latched = alert(world, opened["id"])
    assert latched["status"] == "open"
    assert parse_time(latched["cleared_at"]) == parse_time(clearing["measured_at"])
    response = act(world.nurse, opened, "acknowledge")
    assert response.status_code == 200, response.text
    done = response.json()
    assert (done["status"], done["resolution_note"]) == ("resolved", "cleared")
    assert done["acknowledged_by"] == str(world.nurse.key_id) and done["resolved_at"]


def test_a_cleared_acknowledged_alert_resolves_by_itself(world: World) -> None:
    session = started(world)
    opened = raised(world.reading(session, measured_at=ago(6), **HIGH_BP))
    assert act(world.nurse, opened, "acknowledge").status_code == 200
    world.reading(session, measured_at=ago(4), systolic=128, diastolic=80)
    done = alert(world, opened["id"])
    assert (done["status"], done["resolution_note"]) == ("resolved", "cleared")


def test_a_violation_after_clearing_unlatches_the_alert(world: World) -> None:
    session = started(world)
    opened = raised(world.reading(session, measured_at=ago(6), **HIGH_BP))
    world.reading(session, measured_at=ago(5), systolic=128, diastolic=80)
    again = raised(world.reading(session, measured_at=ago(4), **HIGH_BP))
    assert (again["id"], again["cleared_at"], again["count"]) == (opened["id"], None, 2)
    assert act(world.nurse, opened, "acknowledge").json()["status"] == "acknowledged"


def test_severity_rises_with_the_evidence_and_never_falls(world: World) -> None:
    session = started(world)
    medium = raised(world.reading(session, measured_at=ago(6), systolic=165, diastolic=90))
    high = raised(world.reading(session, measured_at=ago(5), systolic=183, diastolic=90))
    later = raised(world.reading(session, measured_at=ago(4), systolic=166, diastolic=90))
    assert medium["id"] == high["id"] == later["id"]
    assert (medium["severity"], medium["threshold"]) == ("medium", 160)
    assert (high["severity"], high["threshold"]) == ("high", 180)
    assert (later["severity"], later["threshold"], later["value"]) == ("high", 180, 166)
    assert later["count"] == 3
    assert parse_time(later["last_seen_at"]) > parse_time(later["first_seen_at"])


def test_an_acknowledged_alert_that_escalates_is_open_again(world: World) -> None:
    session = started(world)
    medium = raised(world.reading(session, measured_at=ago(6), systolic=165, diastolic=90))
    acked = act(world.nurse, medium, "acknowledge", note="re-checking").json()
    assert acked["status"] == "acknowledged"
    # The same severity again: the acknowledgement still answers it.
    same = raised(world.reading(session, measured_at=ago(5), systolic=170, diastolic=90))
    assert (same["status"], same["acknowledged_by"]) == ("acknowledged", str(world.nurse.key_id))
    # High now: what was acknowledged was a lesser danger, so it asks for attention again.
    high = raised(world.reading(session, measured_at=ago(4), systolic=185, diastolic=90))
    assert (high["id"], high["severity"], high["status"], high["count"]) == (
        medium["id"], "high", "open", 3,
    )  # fmt: skip
    assert (high["acknowledged_at"], high["acknowledged_by"]) == (None, None)
    assert alert(world, medium["id"]) == high
    active = world.nurse.get("/v1/alerts", params={"session_id": session["id"], "status": "open"})
    assert medium["id"] in [a["id"] for a in active.json()["items"]]  # dashboards show it
    again = act(world.clinician, medium, "acknowledge").json()
    assert (again["status"], again["acknowledged_by"]) == (
        "acknowledged", str(world.clinician.key_id),
    )  # fmt: skip


def test_a_late_entry_measured_earlier_moves_first_seen_back_not_last_seen(world: World) -> None:
    session = started(world)
    first, earlier = ago(5), ago(10)
    opened = raised(world.reading(session, measured_at=first, **HIGH_BP))
    late = raised(world.reading(session, measured_at=earlier, **HIGH_BP))  # a tablet syncing late
    assert late["id"] == opened["id"] and late["count"] == 2
    assert parse_time(late["first_seen_at"]) == parse_time(earlier)
    assert parse_time(late["last_seen_at"]) == parse_time(first)
    assert late["reading_id"] == opened["reading_id"]  # the latest evidence stays the reference


def test_a_late_violation_is_cleared_by_a_normal_value_measured_after_it(world: World) -> None:
    session = started(world, minutes_ago=20)
    normal = world.reading(session, measured_at=ago(5), heart_rate=80)
    opened = raised(world.reading(session, measured_at=ago(10), heart_rate=120), "hr.high")
    assert opened["status"] == "open"  # latched, as in bedside order: a person must see it
    assert parse_time(opened["cleared_at"]) == parse_time(normal["measured_at"])
    done = act(world.nurse, opened, "acknowledge").json()
    assert (done["status"], done["resolution_note"]) == ("resolved", "cleared")


def test_a_late_violation_after_a_clearing_stays_cleared_by_the_later_normal_value(
    world: World,
) -> None:
    session = started(world, minutes_ago=20)
    opened = raised(world.reading(session, measured_at=ago(12), heart_rate=120), "hr.high")
    world.reading(session, measured_at=ago(10), heart_rate=80)
    latest = world.reading(session, measured_at=ago(4), heart_rate=82)
    late = world.reading(session, measured_at=ago(7), heart_rate=125)
    again = raised(late, "hr.high")
    assert (again["id"], again["count"], again["value"]) == (opened["id"], 2, 125)
    assert again["last_seen_at"] == late["measured_at"]
    assert parse_time(again["cleared_at"]) == parse_time(latest["measured_at"])
    # In bedside order the late value is the latest violation, and the same normal value after it
    # cleared the alert: the acknowledgement resolves it.
    assert act(world.nurse, opened, "acknowledge").json()["resolution_note"] == "cleared"


def test_a_late_sedation_finding_is_cleared_by_a_later_assessment(world: World) -> None:
    session = started(world, minutes_ago=20)
    later = create_entry(
        world, session, "observations", kind="sedation", measured_at=ago(5), moaas=5
    )
    late = create_entry(
        world, session, "observations", kind="sedation", measured_at=ago(10), moaas=2
    )
    [opened] = late["alerts"]
    assert (opened["rule"], opened["severity"]) == ("sedation.deep", "high")
    assert parse_time(opened["cleared_at"]) == parse_time(later["measured_at"])
    assert act(world.nurse, opened, "acknowledge").json()["resolution_note"] == "cleared"


def test_a_late_entry_that_completes_a_later_readings_news2_raises_its_alert(
    world: World,
) -> None:
    session = started(world, minutes_ago=20)
    later = world.reading(session, measured_at=ago(4), heart_rate=135)
    assert later["news2"]["complete"] is False
    assert "news2" not in [a["rule"] for a in later["alerts"]]
    # Its own NEWS2 is 4 (no alert); carried into the later reading they make 7.
    late = world.reading(
        session, measured_at=ago(8), respiratory_rate=22, spo2=94, systolic=105, diastolic=70,
        heart_rate=70, consciousness="alert", temperature_c=37.0,
    )  # fmt: skip
    assert late["news2"]["score"] == 4
    [news2] = [a for a in late["alerts"] if a["rule"] == "news2"]
    assert (news2["severity"], news2["value"], news2["threshold"]) == ("high", 7, 7)
    assert news2["reading_id"] == later["id"]
    assert news2["first_seen_at"] == news2["last_seen_at"] == later["measured_at"]
    [stored] = [
        a for a in alert_items(world.nurse, session_id=session["id"]) if a["rule"] == "news2"
    ]
    assert stored == news2
    [row] = [r for r in world.dashboard.get("/v1/board").json()["items"]
             if r["session_id"] == session["id"]]  # fmt: skip
    assert row["latest_reading"]["news2"]["score"] == 7  # the board and the alerts agree


def test_a_late_entry_does_not_count_a_later_readings_news2_twice(world: World) -> None:
    session = started(world, minutes_ago=30)
    world.reading(
        session, measured_at=ago(20), respiratory_rate=16, spo2=98, systolic=124, diastolic=78,
        heart_rate=72, consciousness="alert", temperature_c=36.8,
    )  # fmt: skip
    severe = world.reading(
        session, measured_at=ago(4), respiratory_rate=26, spo2=91, heart_rate=135,
        systolic=124, diastolic=78, consciousness="alert",
    )  # temperature carried from 20 minutes before  # fmt: skip
    opened = raised(severe, "news2")
    assert (opened["severity"], opened["count"]) == ("high", 1)
    late = world.reading(session, measured_at=ago(8), temperature_c=39.5)  # carried into it
    assert [a for a in late["alerts"] if a["rule"] == "news2"] == []
    assert alert(world, opened["id"])["count"] == 1


def test_a_session_entered_late_in_bedside_order_raises_no_time_alert_of_the_sync(
    world: World,
) -> None:
    """A tablet back from offline syncs a whole infusion: each write leaves a gap to now, but only
    a poll raises time alerts, and the next entry ends that gap before anyone could see it."""
    session = world.session()
    world.reading(session, measured_at=ago(62), systolic=124, diastolic=78, heart_rate=72)
    world.transition(session, "start", at=ago(60))
    answers = [
        world.reading(session, measured_at=ago(minutes), heart_rate=74, systolic=126, diastolic=80)
        for minutes in range(55, 0, -10)
    ]
    assert [a for answer in answers for a in answer["alerts"]] == []
    assert alert_items(world.dashboard, session_id=session["id"]) == []
    # A real gap is still seen by the next poll.
    gap = world.session()
    world.reading(gap, measured_at=ago(22), systolic=124, diastolic=78)
    world.transition(gap, "start", at=ago(20))
    [due] = alert_items(world.dashboard, session_id=gap["id"])
    assert (due["rule"], due["severity"], due["status"]) == ("vitals.overdue", "low", "open")


def test_entering_the_only_remaining_evidence_in_error_resolves_the_alert(world: World) -> None:
    session = started(world)
    first = world.reading(session, measured_at=ago(6), **HIGH_BP)
    second = world.reading(session, measured_at=ago(5), systolic=182, diastolic=92)
    assert raised(second)["id"] == raised(first)["id"] and raised(second)["count"] == 2

    def enter_in_error(reading: Json, reason: str) -> None:
        url = f"/v1/readings/{reading['id']}/entered-in-error"
        assert world.nurse.post(url, json={"reason": reason}).status_code == 200

    enter_in_error(first, "typo")  # the second reading still violates
    assert alert(world, raised(first)["id"])["status"] == "open"
    enter_in_error(second, "cuff on wrong arm")
    for rule in ("bp.systolic.high", "bp.rise_from_baseline"):
        done = alert(world, raised(second, rule)["id"])
        assert (done["status"], done["resolution_note"]) == (
            "resolved",
            "entered-in-error: cuff on wrong arm",
        )


def test_abort_resolves_the_sessions_alerts(world: World) -> None:
    session = started(world)
    reading = world.reading(session, measured_at=ago(5), **SHOCK)
    assert len(reading["alerts"]) == 6
    world.transition(session, "abort", reason="patient asked to stop")
    for opened in reading["alerts"]:
        done = alert(world, opened["id"])
        assert (done["status"], done["resolution_note"]) == ("resolved", "session aborted")
    assert alert_items(world.nurse, session_id=session["id"], status="active") == []


def test_a_violation_after_resolution_opens_a_new_alert(world: World) -> None:
    session = started(world)
    first = raised(world.reading(session, measured_at=ago(6), **HIGH_BP))
    assert act(world.clinician, first, "resolve", note="treated").status_code == 200
    again = raised(world.reading(session, measured_at=ago(4), **HIGH_BP))
    assert again["id"] != first["id"]
    assert (again["status"], again["count"]) == ("open", 1)
    assert alert(world, first["id"])["status"] == "resolved"


def test_listing_filters_by_status_severity_and_session(world: World) -> None:
    one, two = started(world), started(world)
    reading = world.reading(one, measured_at=ago(5), **HIGH_BP)
    sys_high, rise = raised(reading), raised(reading, "bp.rise_from_baseline")
    hr = raised(world.reading(two, measured_at=ago(5), heart_rate=115), "hr.high")
    assert (sys_high["severity"], rise["severity"], hr["severity"]) == ("high", "medium", "medium")
    assert act(world.nurse, rise, "acknowledge").status_code == 200
    assert act(world.clinician, hr, "resolve", note="anxious, settled").status_code == 200

    def ids(**params: Any) -> set[str]:
        return {a["id"] for a in alert_items(world.dashboard, **params)}

    assert ids() == {sys_high["id"], rise["id"], hr["id"]}
    assert ids(status="open") == {sys_high["id"]}
    assert ids(status="acknowledged") == {rise["id"]}
    assert ids(status="resolved") == {hr["id"]}
    assert ids(status="active") == {sys_high["id"], rise["id"]}
    assert ids(severity="high") == {sys_high["id"]}
    assert ids(severity="medium") == {rise["id"], hr["id"]}
    assert ids(session_id=two["id"]) == {hr["id"]}
    assert ids(status="active", severity="medium", session_id=one["id"]) == {rise["id"]}
    expect_problem(world.nurse.get("/v1/alerts", params={"status": "snoozed"}), 422, "validation")


def test_another_clinic_never_sees_the_alerts(world: World) -> None:
    session = started(world)
    opened = raised(world.reading(session, measured_at=ago(5), **HIGH_BP))
    assert alert_items(world.other_nurse) == []
    assert alert_items(world.other_nurse, session_id=session["id"]) == []
    expect_problem(world.other_nurse.get(f"/v1/alerts/{opened['id']}"), 404, "not-found")
    expect_problem(act(world.other_nurse, opened, "acknowledge"), 404, "not-found")
    expect_problem(act(world.other_clinician, opened, "resolve", note="x"), 404, "not-found")
    assert alert(world, opened["id"])["status"] == "open"


def test_changes_cursor_is_always_a_string(world: World) -> None:
    clinic = world.global_admin.post("/v1/clinics", json={"name": "Empty Clinic"}).json()
    fresh = caller_for(world, new_key(world, "dashboard", clinic["id"]))
    for caller in (world.nurse, world.other_nurse, fresh):
        body = caller.get("/v1/alerts").json()
        assert body["items"] == [] and body["next_cursor"] is None
        assert isinstance(body["changes_cursor"], str) and body["changes_cursor"]
        again = caller.get("/v1/alerts", params={"changed_after": body["changes_cursor"]})
        assert again.status_code == 200 and again.json()["items"] == []


def test_changed_after_returns_only_alerts_changed_since(world: World) -> None:
    session = started(world)
    reading = world.reading(session, measured_at=ago(5), **HIGH_BP)
    first = world.dashboard.get("/v1/alerts").json()
    assert {a["id"] for a in first["items"]} == {a["id"] for a in reading["alerts"]}
    cursor = first["changes_cursor"]
    assert alert_items(world.dashboard, changed_after=cursor) == []
    acked = act(world.nurse, raised(reading), "acknowledge").json()
    changed = world.dashboard.get("/v1/alerts", params={"changed_after": cursor}).json()
    assert changed["items"] == [acked]
    assert changed["changes_cursor"] != cursor
    assert alert_items(world.dashboard, changed_after=changed["changes_cursor"]) == []
    hr = raised(world.reading(started(world), measured_at=ago(3), heart_rate=131), "hr.high")
    assert alert_items(world.dashboard, changed_after=changed["changes_cursor"]) == [hr]


def test_walking_next_cursor_never_skips_an_alert(world: World) -> None:
    reading = world.reading(started(world), measured_at=ago(5), **SHOCK)
    everyone = {a["id"]: a for a in reading["alerts"]}
    page = world.dashboard.get("/v1/alerts", params={"limit": 2}).json()
    seen = {a["id"]: a for a in page["items"]}
    assert len(seen) == 2 and page["next_cursor"]
    changing = {next(iter(seen)), next(i for i in everyone if i not in seen)}
    for alert_id in changing:  # both move to the end of the change order
        assert act(world.nurse, everyone[alert_id], "acknowledge").status_code == 200
    while page["next_cursor"]:
        params = {"limit": 2, "cursor": page["next_cursor"]}
        page = world.dashboard.get("/v1/alerts", params=params).json()
        seen.update({a["id"]: a for a in page["items"]})
    assert set(seen) == set(everyone)
    assert {i for i, a in seen.items() if a["status"] == "acknowledged"} == changing


def test_etag_answers_304_until_an_alert_changes(world: World) -> None:
    session = started(world)
    opened = raised(world.reading(session, measured_at=ago(5), **HIGH_BP))
    first = world.dashboard.get("/v1/alerts")
    etag = first.headers["etag"]
    unchanged = world.dashboard.get("/v1/alerts", headers={"If-None-Match": etag})
    assert unchanged.status_code == 304 and unchanged.content == b""
    assert unchanged.headers["etag"] == etag
    assert act(world.nurse, opened, "acknowledge").status_code == 200
    after_ack = world.dashboard.get("/v1/alerts", headers={"If-None-Match": etag})
    assert after_ack.status_code == 200 and after_ack.headers["etag"] != etag
    [acked] = [a for a in after_ack.json()["items"] if a["id"] == opened["id"]]
    assert acked["status"] == "acknowledged"


# --- time rules: judged whenever alerts are read -------------------------------------------------
def overdue(world: World, session: Json) -> list[Json]:
    found = alert_items(world.dashboard, session_id=session["id"])
    return [a for a in found if a["rule"] == "vitals.overdue"]


@pytest.mark.parametrize(
    ("minutes", "severity", "threshold"), [(20, "low", 15), (35, "medium", 30)]
)
def test_vitals_overdue_is_seen_by_a_poll(
    world: World, minutes: int, severity: str, threshold: int
) -> None:
    session = started(world, minutes_ago=minutes)
    [found] = overdue(world, session)
    assert (found["severity"], found["status"], found["threshold"]) == (severity, "open", threshold)
    assert minutes - 0.1 <= found["value"] <= minutes + 1
    start = session["started_at"]
    assert parse_time(found["first_seen_at"]) == parse_time(shifted(start, 15))
    assert parse_time(found["last_seen_at"]) == parse_time(shifted(start, threshold))
    assert found["protocol_version"] == 1


@pytest.mark.parametrize(
    ("limit", "before", "severity"), [(15, [], "low"), (30, ["low"], "medium")]
)
def test_vitals_overdue_changes_once_its_deadline_passes(
    world: World, limit: int, before: list[str], severity: str
) -> None:
    session = started(world, minutes_ago=limit - 6 / 60)  # the deadline is 6 seconds away
    first = world.dashboard.get("/v1/alerts", params={"session_id": session["id"]})
    assert [a["severity"] for a in first.json()["items"]] == before
    etag, deadline = first.headers["etag"], time.monotonic() + 30
    while time.monotonic() < deadline:  # polling, bounded
        polled = world.dashboard.get(
            "/v1/alerts", params={"session_id": session["id"]}, headers={"If-None-Match": etag}
        )
        if polled.status_code == 200:
            break
        assert polled.status_code == 304
        time.sleep(0.5)
    [found] = polled.json()["items"]
    assert found["rule"] == "vitals.overdue"
    assert (found["severity"], found["threshold"]) == (severity, limit)
    start = session["started_at"]
    assert parse_time(found["first_seen_at"]) == parse_time(shifted(start, 15))
    assert parse_time(found["last_seen_at"]) == parse_time(shifted(start, limit))


def test_reading_one_alert_after_its_deadline_shows_the_escalation(world: World) -> None:
    session = started(world, minutes_ago=30 - 4 / 60)  # medium is 4 seconds away
    [low] = overdue(world, session)
    assert low["severity"] == "low"
    deadline = time.monotonic() + 10
    while (found := alert(world, low["id"]))["severity"] == "low" and time.monotonic() < deadline:
        time.sleep(0.5)  # polling GET /v1/alerts/{id} only, bounded
    assert (found["severity"], found["threshold"]) == ("medium", 30)


@pytest.mark.parametrize("ending", ["reading", "end"])
def test_vitals_overdue_ends_with_a_reading_or_the_infusions_end(world: World, ending: str) -> None:
    session = started(world, minutes_ago=20)
    [found] = overdue(world, session)
    if ending == "reading":
        reading = world.reading(session, measured_at=ago(0.5), heart_rate=76)
        assert raised(reading, "vitals.overdue")["status"] == "resolved"
    else:
        world.transition(session, "end")
    done = alert(world, found["id"])
    assert (done["status"], done["resolution_note"]) == ("resolved", "condition ended")
    assert [a["status"] for a in overdue(world, session)] == ["resolved"]


# --- a real multi-process server: the alert stream and concurrent posts ------------------------
def following(stream: AlertStream, world: World) -> None:
    """Make sure ``stream`` is live, with changes in a session of its own."""
    primer = started(world)
    stream.follow(lambda: world.reading(primer, measured_at=ago(1), heart_rate=135)["session_id"])


def test_stream_sends_opened_updated_and_resolved(
    live_world: World,  # noqa: F811
    alert_stream: Callable[..., AlertStream],  # noqa: F811
) -> None:
    world = live_world
    stream = alert_stream(world.dashboard.headers)
    assert stream.status_code == 200 and stream.content_type.startswith("text/event-stream")
    following(stream, world)
    session = started(world)
    opened = raised(world.reading(session, measured_at=ago(5), **HIGH_BP))
    event = stream.until(of(session["id"], "bp.systolic.high"))[-1]
    assert (event.event, event.data) == ("alert.opened", opened) and event.id
    acked = act(world.nurse, opened, "acknowledge").json()
    event = stream.until(of(session["id"], "bp.systolic.high", status="acknowledged"))[-1]
    assert (event.event, event.data) == ("alert.updated", acked)
    resolved = act(world.clinician, opened, "resolve", note="settled").json()
    event = stream.until(of(session["id"], "bp.systolic.high", status="resolved"))[-1]
    assert (event.event, event.data) == ("alert.resolved", resolved)


def test_acknowledging_a_cleared_alert_streams_the_acknowledgement_then_the_resolution(
    live_world: World,  # noqa: F811
    alert_stream: Callable[..., AlertStream],  # noqa: F811
) -> None:
    world = live_world
    stream = alert_stream(world.dashboard.headers)
    following(stream, world)
    session = started(world)
    opened = raised(world.reading(session, measured_at=ago(5), **HIGH_BP))
    world.reading(session, measured_at=ago(4), systolic=122, diastolic=76)  # cleared, latched
    resolved = act(world.nurse, opened, "acknowledge").json()
    assert (resolved["status"], resolved["resolution_note"]) == ("resolved", "cleared")
    seen = stream.until(of(session["id"], "bp.systolic.high", status="resolved"))
    acked, done = [e for e in seen if of(session["id"], "bp.systolic.high")(e)][-2:]
    assert (acked.event, acked.data["status"]) == ("alert.updated", "acknowledged")
    assert acked.data["acknowledged_at"] == resolved["acknowledged_at"]
    assert (done.event, done.data) == ("alert.resolved", resolved)


def test_last_event_id_resumes_without_loss_or_duplicate(
    live_world: World,  # noqa: F811
    alert_stream: Callable[..., AlertStream],  # noqa: F811
) -> None:
    world = live_world
    first = alert_stream(world.nurse.headers)
    following(first, world)
    session = started(world)
    reading = world.reading(session, measured_at=ago(6), **HIGH_BP)
    act(world.nurse, raised(reading), "acknowledge")
    world.reading(session, measured_at=ago(5), systolic=190, diastolic=96)
    seen = first.until(of(session["id"], "bp.rise_from_baseline", count=2))
    start = next(i for i, e in enumerate(seen) if of(session["id"], "bp.systolic.high")(e))
    assert len(seen[start:]) == 5, seen  # 2 opened, 1 acknowledged, 2 updated
    resumed = alert_stream(world.nurse.headers, last_event_id=seen[start].id)
    act(world.nurse, raised(reading, "bp.rise_from_baseline"), "acknowledge")
    marker = of(session["id"], "bp.rise_from_baseline", status="acknowledged")
    expected = [(e.id, e.event, e.data) for e in [*seen[start + 1 :], first.until(marker)[-1]]]
    assert [(e.id, e.event, e.data) for e in resumed.until(marker)] == expected


def test_a_client_closing_its_stream_mid_replay_is_a_normal_end(
    live_world: World,  # noqa: F811
    tmp_path: Path,
) -> None:
    """A dashboard that reconnects drops the stream it had, often in the middle of a replay:
    the server ends that stream quietly, without an error in its log."""
    world = live_world
    for _ in range(4):  # dozens of changes to replay
        session = started(world)
        for minutes in (6, 5, 4):
            world.reading(session, measured_at=ago(minutes), heart_rate=140 - minutes, spo2=89)
    headers = {**world.dashboard.headers, "Last-Event-ID": encode_cursor(0)}
    for _ in range(8):
        with (
            httpx.Client(base_url=str(world.client.base_url), timeout=10) as client,
            client.stream("GET", "/v1/alerts/stream", headers=headers) as response,
        ):
            assert response.status_code == 200
            next(response.iter_raw())  # the first events, then hang up
    time.sleep(1)
    log = (tmp_path / "server.log").read_text(errors="replace")
    assert "Traceback" not in log and "unhandled error" not in log, log[-3000:]
    assert world.client.get("/healthz").status_code == 200


def test_a_stream_without_last_event_id_starts_from_now(
    live_world: World,  # noqa: F811
    alert_stream: Callable[..., AlertStream],  # noqa: F811
) -> None:
    world = live_world
    older = started(world)
    world.reading(older, measured_at=ago(5), **SHOCK)
    stream = alert_stream(world.dashboard.headers)
    following(stream, world)  # its first event is a change made after it connected


def test_what_a_stream_shows_is_audited_and_a_revoked_key_hears_nothing_more(
    live_world: World,  # noqa: F811
    alert_stream: Callable[..., AlertStream],  # noqa: F811
) -> None:
    world = live_world
    made = new_key(world, "dashboard")
    stream = alert_stream({"Authorization": f"Bearer {made['key']}"})
    following(stream, world)
    session = started(world)
    raised(world.reading(session, measured_at=ago(5), **HIGH_BP))
    stream.until(of(session["id"], "bp.systolic.high"))
    log = world.global_admin.get("/v1/audit", params={"actor_key_id": made["id"]}).json()
    assert ("alert.stream", "Session", session["id"]) in {
        (e["action"], e["resource_type"], e["resource_id"]) for e in log["items"]
    }
    revoked = world.global_admin.post(f"/v1/api-keys/{made['id']}/revoke")
    assert revoked.status_code == 200, revoked.text
    world.reading(session, measured_at=ago(4), heart_rate=140)  # a change for the clinic
    assert stream.ended(timeout=15), "the stream of a revoked key stayed open"
    assert all(e.data["rule"] != "hr.high" for e in iter(lambda: stream.poll(0.1), None))


def test_concurrent_violations_make_one_alert_that_counts_them_all(
    live_world: World,  # noqa: F811
    live_server: str,  # noqa: F811
) -> None:
    world, session, base_url = live_world, started(live_world), live_server
    barrier = threading.Barrier(20)
    url = f"/v1/sessions/{session['id']}/readings"

    def post(index: int) -> httpx.Response:
        body = {"measured_at": ago(5, seconds=-10 * index), **HIGH_BP}
        with httpx.Client(base_url=base_url, headers=world.nurse.headers, timeout=60) as http:
            barrier.wait(timeout=30)
            return http.post(url, json=body)

    with ThreadPoolExecutor(max_workers=20) as pool:
        answers = list(pool.map(post, range(20)))
    assert [a.status_code for a in answers] == [201] * 20, [a.text for a in answers]
    stored = {r["id"] for r in world.readings(session)}
    assert {a.json()["id"] for a in answers} <= stored and len(stored) == 21
    every = alert_items(world.nurse, session_id=session["id"])
    for rule in ("bp.systolic.high", "bp.rise_from_baseline"):
        [one] = [a for a in every if a["rule"] == rule]
        assert (one["status"], one["count"]) == ("open", 20)


def test_metrics_add_up_every_worker(
    live_world: World,  # noqa: F811
    live_server: str,  # noqa: F811
) -> None:
    """Two workers: every scrape, whichever worker answers it, counts the requests and the
    alerts of both, and no count ever goes back."""
    world = live_world
    reading = world.reading(started(world), measured_at=ago(2), spo2=85)
    assert raised(reading, "spo2.low")["severity"] == "high"
    for _ in range(20):  # each on a new connection, so both workers answer some
        assert world.client.get("/healthz").status_code == 200
    health = (("method", "GET"), ("route", "/healthz"), ("status", "200"))
    alerts = (("rule", "spo2.low"), ("severity", "high"))
    seen = []
    for _ in range(8):
        text = world.client.get("/metrics").text
        assert metric_samples(text, "vigil_alerts_raised_total").get(alerts, 0) >= 1, text
        seen.append(metric_samples(text, "vigil_http_requests_total")[health])
    assert seen[0] >= 20 and seen == sorted(seen), seen
