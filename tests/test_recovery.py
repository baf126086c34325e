"""Post-infusion recovery: dissociation status, vitals near baseline, discharge and its gates."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from tests.factories import (
    Caller,
    World,
    after_end,
    ago,
    assess,
    expect_problem,
    parse_time,
    post_observation,
    recovering,
    shifted,
)

Json = dict[str, Any]
FIELDS = {
    "session_id", "infusion_ended_at", "minutes_since_end", "status", "dissociation",
    "next_assessment_due_at", "vitals_near_baseline", "discharge_ready", "discharge_blockers",
}  # fmt: skip
EPS = 1e-6  # exact durations, up to float rounding


def recovery(world: World, session: Json, caller: Caller | None = None) -> Json:
    response = (caller or world.nurse).get(f"/v1/sessions/{session['id']}/recovery")
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def same(a: str | None, b: str | None) -> bool:
    return a is not None and b is not None and parse_time(a) == parse_time(b)


def discharge(world: World, session: Json, caller: Caller | None = None, **body: Any) -> Any:
    return (caller or world.nurse).post(f"/v1/sessions/{session['id']}/discharge", json=body)


def session_alerts(world: World, session: Json, rule: str | None = None) -> list[Json]:
    response = world.dashboard.get("/v1/alerts", params={"session_id": session["id"]})
    assert response.status_code == 200, response.text
    return [a for a in response.json()["items"] if rule is None or a["rule"] == rule]


def sedation(world: World, session: Json, moaas: int, measured_at: str) -> None:
    body = {"kind": "sedation", "moaas": moaas, "measured_at": measured_at}
    response = world.nurse.post(f"/v1/sessions/{session['id']}/observations", json=body)
    assert response.status_code == 201, response.text


def ready(world: World, **kwargs: Any) -> Json:
    """Resolved at +15 and a post reading like the baseline at +20: nothing blocks."""
    session = recovering(world, **kwargs)
    assess(world, session, 15)
    world.reading(session, measured_at=after_end(session, 20), systolic=122, diastolic=76)
    return session


# --- the recovery picture ---------------------------------------------------------------------
def test_before_the_end_the_infusion_has_not_ended(world: World) -> None:
    body = recovery(world, world.session(state="in_progress"))
    assert set(body) == FIELDS
    assert (body["status"], body["infusion_ended_at"], body["minutes_since_end"]) == (
        "infusion_not_ended", None, None,
    )  # fmt: skip
    assert body["next_assessment_due_at"] is None
    assert body["discharge_ready"] is False


def test_before_the_end_every_blocker_that_already_applies_is_listed(world: World) -> None:
    session = world.session(state="in_progress")
    base = ["min_observation_time", "dissociation_unresolved", "vitals_not_near_baseline"]
    assert recovery(world, session)["discharge_blockers"] == base
    post_observation(world, session, kind="vomiting", severity=1, measured_at=ago(4))
    world.reading(session, measured_at=ago(3), systolic=185, diastolic=95)  # a high alert
    assert recovery(world, session)["discharge_blockers"] == [*base, "vomiting", "open_high_alerts"]


def test_pending_shows_exact_minutes_since_end_and_the_first_assessment_due(world: World) -> None:
    session = recovering(world, ended=40)
    before = datetime.now(UTC)
    body = recovery(world, session, world.dashboard)
    after = datetime.now(UTC)
    end = parse_time(session["infusion_ended_at"])
    assert set(body) == FIELDS and body["session_id"] == session["id"]
    assert same(body["infusion_ended_at"], session["infusion_ended_at"])
    assert body["status"] == "pending"
    low, high = ((t - end).total_seconds() / 60 for t in (before, after))
    assert low - EPS <= body["minutes_since_end"] <= high + EPS
    assert body["minutes_since_end"] != int(body["minutes_since_end"])  # fractions, not rounded
    assert body["dissociation"] == {
        "resolved_at": None, "minutes_to_resolution": None, "last_severity": None, "assessments": [],
    }  # fmt: skip
    assert same(body["next_assessment_due_at"], after_end(session, 15))
    assert body["vitals_near_baseline"] is False  # no post-infusion reading yet
    other = world.other_nurse.get(f"/v1/sessions/{session['id']}/recovery")
    expect_problem(other, 404, "not-found")


@pytest.mark.parametrize(
    ("seconds", "status"),
    [(750, "resolved_within_30"), (30 * 60, "resolved_within_30"), (30 * 60 + 1, "resolved_within_60"),
     (60 * 60, "resolved_within_60"), (60 * 60 + 1, "resolved_after_60")],
)  # fmt: skip
def test_resolution_status_boundaries_compare_exact_durations(
    world: World, seconds: int, status: str
) -> None:
    session = recovering(world, started=150, ended=100)
    found = assess(world, session, 0, seconds=seconds)
    body = recovery(world, session)
    assert body["status"] == status
    assert body["dissociation"]["minutes_to_resolution"] == pytest.approx(seconds / 60, abs=EPS)
    assert same(body["dissociation"]["resolved_at"], found["measured_at"])
    assert body["next_assessment_due_at"] is None


@pytest.mark.parametrize(
    ("ended", "severity", "status"),
    [(58, 2, "pending"), (61, 2, "unresolved_overdue"), (90, None, "unresolved_overdue")],
)
def test_unresolved_is_pending_until_60_minutes_and_silence_is_not_recovery(
    world: World, ended: float, severity: int | None, status: str
) -> None:
    session = recovering(world, ended=ended)
    world.reading(session, measured_at=after_end(session, 20), systolic=120, diastolic=75)
    if severity is not None:
        assess(world, session, 10, severity)
    body = recovery(world, session)
    assert (body["status"], body["dissociation"]["resolved_at"]) == (status, None)
    assert "dissociation_unresolved" in body["discharge_blockers"]


def test_a_relapse_makes_it_unresolved_again_until_the_next_resolution(world: World) -> None:
    session = recovering(world, ended=50)
    assess(world, session, 10, 0)
    assert recovery(world, session)["status"] == "resolved_within_30"
    assess(world, session, 25, 1)
    body = recovery(world, session)
    assert body["status"] == "pending"
    assert body["dissociation"]["resolved_at"] is None
    assert body["dissociation"]["last_severity"] == 1
    assert same(body["next_assessment_due_at"], after_end(session, 40))
    assess(world, session, 40, 0)
    body = recovery(world, session)
    assert body["status"] == "resolved_within_60"
    assert body["dissociation"]["minutes_to_resolution"] == pytest.approx(40, abs=EPS)
    assert body["dissociation"]["last_severity"] == 0


@pytest.mark.parametrize(
    ("cadss", "shows", "status"), [(4, False, "resolved_within_30"), (5, True, "pending")]
)
def test_cadss_above_4_shows_dissociation(
    world: World, cadss: int, shows: bool, status: str
) -> None:
    session = recovering(world, ended=40)
    assess(world, session, 10, 0, cadss=cadss)
    body = recovery(world, session)
    assert body["status"] == status
    assert [a["shows_dissociation"] for a in body["dissociation"]["assessments"]] == [shows]


def test_an_assessment_entered_in_error_does_not_resolve(world: World) -> None:
    session = recovering(world, started=120, ended=70)
    wrong = assess(world, session, 65, 0)
    assert recovery(world, session)["status"] == "resolved_after_60"
    # The end and the assessment were entered late: no poll saw the session unresolved.
    assert session_alerts(world, session, "dissociation.unresolved") == []
    response = world.nurse.post(
        f"/v1/observations/{wrong['id']}/entered-in-error", json={"reason": "wrong patient"}
    )
    assert response.status_code == 200, response.text
    body = recovery(world, session)
    assert body["status"] == "unresolved_overdue"
    assert body["dissociation"]["resolved_at"] is None
    assert "dissociation_unresolved" in body["discharge_blockers"]
    again = session_alerts(world, session, "dissociation.unresolved")
    assert [a["severity"] for a in again if a["status"] == "open"] == ["medium"]


def test_assessments_are_listed_in_time_order_and_only_after_the_end(world: World) -> None:
    session = recovering(world, ended=50)
    post_observation(
        world, session, kind="dissociation", severity=3, measured_at=after_end(session, -5)
    )
    late = assess(world, session, 30, 0, cadss=2)
    early = assess(world, session, 10, 2, cadss=30)
    middle = assess(world, session, 20, 1)
    body = recovery(world, session)
    listed = body["dissociation"]["assessments"]
    assert [a["id"] for a in listed] == [early["id"], middle["id"], late["id"]]
    assert all(
        set(a) == {"id", "measured_at", "severity", "cadss", "shows_dissociation"} for a in listed
    )
    assert [(a["severity"], a["cadss"], a["shows_dissociation"]) for a in listed] == [
        (2, 30, True), (1, None, True), (0, 2, False),
    ]  # fmt: skip
    assert same(listed[0]["measured_at"], early["measured_at"])
    assert body["dissociation"]["last_severity"] == 0
    assert body["dissociation"]["minutes_to_resolution"] == pytest.approx(30, abs=EPS)


def test_an_assessment_measured_at_the_end_itself_is_not_after_it(world: World) -> None:
    session = recovering(world, started=120, ended=70)
    assess(world, session, 0, 0)
    body = recovery(world, session)
    assert body["dissociation"]["assessments"] == []
    assert (body["status"], body["dissociation"]["resolved_at"]) == ("unresolved_overdue", None)
    assert body["dissociation"]["minutes_to_resolution"] is None
    [alert] = session_alerts(world, session, "dissociation.unresolved")
    assert alert["status"] == "open"
    just_after = assess(world, session, 0, 0, seconds=1)
    body = recovery(world, session)
    assert [a["id"] for a in body["dissociation"]["assessments"]] == [just_after["id"]]
    assert body["dissociation"]["minutes_to_resolution"] == pytest.approx(1 / 60, abs=EPS)
    assert body["status"] == "resolved_within_30"
    [done] = session_alerts(world, session, "dissociation.unresolved")
    assert (done["status"], done["resolution_note"]) == ("resolved", "condition ended")


def test_next_assessment_is_due_15_minutes_after_the_last_until_resolved(world: World) -> None:
    session = recovering(world, ended=40)
    assert same(recovery(world, session)["next_assessment_due_at"], after_end(session, 15))
    assess(world, session, 14, 2, seconds=30)
    assert same(recovery(world, session)["next_assessment_due_at"], after_end(session, 29.5))
    assess(world, session, 28, 0)
    assert recovery(world, session)["next_assessment_due_at"] is None


@pytest.mark.parametrize(
    ("baseline", "post", "near"),
    [  # relative limits (inclusive), then absolute limits (strict)
        ((130, 85, 85), (150, 95, 105), True), ((130, 85, 85), (151, 95, 105), False),
        ((130, 85, 85), (150, 96, 105), False), ((130, 85, 85), (150, 95, 106), False),
        ((100, 60, 60), (139, 89, 99), True), ((100, 60, 60), (140, 89, 99), False),
        ((100, 60, 60), (139, 90, 99), False), ((100, 60, 60), (139, 89, 100), False),
        # A baseline without a pulse: a pulse now can only be judged by the absolute limit.
        ((130, 85, None), (120, 80, 125), False), ((130, 85, None), (120, 80, 99), True),
        ((135, 88, None), (150, 95, 95), False),
    ],
)  # fmt: skip
def test_vitals_near_baseline(
    world: World, baseline: tuple[int, int, int | None], post: tuple[int, int, int], near: bool
) -> None:
    keys = ("systolic", "diastolic", "heart_rate")
    session = recovering(world, ended=40, baseline=dict(zip(keys, baseline, strict=True)))
    assess(world, session, 10)
    world.reading(session, measured_at=after_end(session, 20), **dict(zip(keys, post, strict=True)))
    body = recovery(world, session)
    assert body["vitals_near_baseline"] is near
    assert ("vitals_not_near_baseline" in body["discharge_blockers"]) is not near


def test_the_latest_post_infusion_reading_decides(world: World) -> None:
    session = recovering(world, ended=40)
    world.reading(session, measured_at=after_end(session, 25), systolic=121, diastolic=77)
    world.reading(session, measured_at=after_end(session, 10), systolic=158, diastolic=97)
    assert recovery(world, session)["vitals_near_baseline"] is True


def test_each_vital_is_judged_by_its_latest_post_infusion_value(world: World) -> None:
    """A later reading of the heart rate alone is not ignored, and a later blood pressure
    taken without a pulse keeps the pulse taken before it (baseline 124/78, pulse 72)."""
    session = recovering(world, ended=40)
    world.reading(session, measured_at=after_end(session, 10), systolic=122, diastolic=76)
    assert recovery(world, session)["vitals_near_baseline"] is True
    world.reading(session, measured_at=after_end(session, 20), heart_rate=115)
    body = recovery(world, session)
    assert body["vitals_near_baseline"] is False
    assert "vitals_not_near_baseline" in body["discharge_blockers"]
    world.reading(
        session, measured_at=after_end(session, 25), systolic=123, diastolic=77, heart_rate=None
    )
    assert recovery(world, session)["vitals_near_baseline"] is False  # the pulse is still 115
    world.reading(session, measured_at=after_end(session, 28), heart_rate=84)
    assert recovery(world, session)["vitals_near_baseline"] is True


# --- discharge blockers -----------------------------------------------------------------------
ALL = [
    "min_observation_time", "dissociation_unresolved", "sedation", "vitals_not_near_baseline",
    "vomiting", "open_high_alerts",
]  # fmt: skip
CASES = {  # case: (recovering(...) arguments, the blockers)
    "ready": ({}, []),
    "too_soon": ({"ended": 25}, ["min_observation_time"]),
    "intranasal": ({"started": 150, "ended": 100, "route": "intranasal"}, ["min_observation_time"]),
    "unresolved": ({}, ["dissociation_unresolved"]),
    "sedated": ({}, ["sedation"]),
    "far_from_baseline": ({}, ["vitals_not_near_baseline"]),
    "no_post_reading": ({}, ["vitals_not_near_baseline"]),
    "vomited": ({}, ["vomiting"]),
    "high_alert_open": ({}, ["open_high_alerts"]),
    "high_alert_acknowledged": ({}, ["open_high_alerts"]),
    "everything": ({"ended": 25}, ALL),
}


def build(world: World, case: str) -> Json:
    """A session 40 min (or as CASES says) into recovery with only ``case`` in the way."""
    session = recovering(world, **CASES[case][0])
    assess(world, session, 15, 2 if case in ("unresolved", "everything") else 0)
    if case != "no_post_reading":
        world.reading(session, measured_at=after_end(session, 20), systolic=122, diastolic=76)
    if case in ("sedated", "everything"):
        sedation(world, session, 5, after_end(session, 16))
        sedation(world, session, 4 if case == "sedated" else 3, after_end(session, 18))
    if case in ("far_from_baseline", "everything"):  # 150/95: not within +20/+10, not < 140/90
        world.reading(session, measured_at=after_end(session, 21), systolic=150, diastolic=95)
    if case in ("vomited", "everything"):
        post_observation(world, session, kind="vomiting", severity=1, measured_at=ago(4))
    if case.startswith("high_alert") or case == "everything":
        reading = world.reading(session, measured_at=ago(2), spo2=88)  # spo2.low, high
        [alert] = [a for a in reading["alerts"] if a["severity"] == "high"]
        if case == "high_alert_acknowledged":
            acked = world.nurse.post(f"/v1/alerts/{alert['id']}/acknowledge", json={})
            assert acked.json()["status"] == "acknowledged", acked.text
    return session


@pytest.mark.parametrize("case", list(CASES))
def test_discharge_blockers_alone_and_together(world: World, case: str) -> None:
    session, blockers = build(world, case), CASES[case][1]
    body = recovery(world, session)
    assert sorted(body["discharge_blockers"]) == sorted(blockers)
    assert body["discharge_ready"] is (not blockers)
    response = discharge(world, session)
    if blockers:
        problem = expect_problem(response, 409, "discharge-blocked")
        assert sorted(problem["blockers"]) == sorted(blockers)
        assert world.nurse.get(f"/v1/sessions/{session['id']}").json()["status"] == "recovery"
    else:
        assert response.status_code == 200, response.text
        assert response.json()["status"] == "discharged"
        assert response.json()["discharge_override"] is None


@pytest.mark.parametrize(("route", "minimum"), [("iv", 30), ("intranasal", 120)])
def test_discharge_is_judged_at_its_time_minimum_observation(
    world: World, route: str, minimum: int
) -> None:
    session = ready(world, started=minimum + 60, ended=minimum + 10, route=route)
    early = discharge(world, session, at=after_end(session, minimum - 1, seconds=59))
    assert expect_problem(early, 409, "discharge-blocked")["blockers"] == ["min_observation_time"]
    at = after_end(session, minimum)
    response = discharge(world, session, at=at)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "discharged"
    assert same(response.json()["discharged_at"], at)


def test_vomiting_during_the_infusion_counts_within_the_window(world: World) -> None:
    session = ready(world, ended=50)
    post_observation(
        world, session, kind="vomiting", severity=2, measured_at=after_end(session, -5)
    )
    within = discharge(world, session, at=after_end(session, 25))  # 30:00 after vomiting
    assert sorted(expect_problem(within, 409, "discharge-blocked")["blockers"]) == [
        "min_observation_time", "vomiting",
    ]  # fmt: skip
    after = discharge(world, session, at=after_end(session, 25, seconds=1))
    assert expect_problem(after, 409, "discharge-blocked")["blockers"] == ["min_observation_time"]
    assert "vomiting" not in recovery(world, session)["discharge_blockers"]


def test_a_high_alert_counts_from_when_its_evidence_was_measured(world: World) -> None:
    session = ready(world, ended=50)
    reading = world.reading(session, measured_at=after_end(session, 45), spo2=85)
    [alert] = [a for a in reading["alerts"] if a["severity"] == "high"]
    assert recovery(world, session)["discharge_blockers"] == ["open_high_alerts"]
    at_45 = discharge(world, session, at=after_end(session, 45))
    assert expect_problem(at_45, 409, "discharge-blocked")["blockers"] == ["open_high_alerts"]
    before = discharge(world, session, at=after_end(session, 44))  # the alert came later
    assert before.status_code == 200, before.text
    assert session_alerts(world, session, "spo2.low")[0]["id"] == alert["id"]


def test_discharge_is_judged_at_its_time_vomiting_and_later_entries(world: World) -> None:
    session = ready(world, ended=50)  # resolved at +15, post reading at +20
    early = expect_problem(
        discharge(world, session, at=after_end(session, 14)), 409, "discharge-blocked"
    )
    assert sorted(early["blockers"]) == [
        "dissociation_unresolved", "min_observation_time", "vitals_not_near_baseline",
    ]  # fmt: skip
    post_observation(
        world, session, kind="vomiting", severity=1, measured_at=after_end(session, 10)
    )
    blocked = discharge(world, session, at=after_end(session, 40))  # 30:00 after vomiting
    assert expect_problem(blocked, 409, "discharge-blocked")["blockers"] == ["vomiting"]
    response = discharge(world, session, at=after_end(session, 40, seconds=1))
    assert response.status_code == 200, response.text
    [alert] = session_alerts(world, session, "symptom.vomiting")  # left open until discharge
    assert (alert["status"], alert["resolution_note"]) == ("resolved", "session discharged")


def test_only_a_clinician_overrides_the_blockers_and_it_is_recorded(world: World) -> None:
    session = recovering(world, ended=20)
    expect_problem(discharge(world, session, override_reason="I am sure"), 403, "forbidden")
    assert world.nurse.get(f"/v1/sessions/{session['id']}").json()["status"] == "recovery"
    response = discharge(world, session, world.clinician, override_reason="escorted home by family")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "discharged" and body["discharged_at"] is not None
    override = body["discharge_override"]
    assert override["reason"] == "escorted home by family"
    assert sorted(override["reasons"]) == [
        "dissociation_unresolved", "min_observation_time", "vitals_not_near_baseline",
    ]  # fmt: skip
    assert override["by"] == str(world.clinician.key_id)
    stored = world.nurse.get(f"/v1/sessions/{session['id']}").json()
    assert stored["discharge_override"]["reason"] == "escorted home by family"


def test_an_override_discharge_resolves_high_and_time_alerts_too(world: World) -> None:
    session = recovering(world, started=120, ended=70)
    high = world.reading(session, measured_at=ago(2), spo2=88)["alerts"][0]
    assert world.nurse.post(f"/v1/alerts/{high['id']}/acknowledge", json={}).status_code == 200
    active = {
        a["rule"]: a["severity"]
        for a in session_alerts(world, session)
        if a["status"] != "resolved"
    }
    assert active == {"dissociation.unresolved": "medium", "spo2.low": "high"}
    done = discharge(world, session, world.clinician, override_reason="transferred to ED")
    assert done.status_code == 200, done.text
    assert sorted(done.json()["discharge_override"]["reasons"]) == [
        "dissociation_unresolved", "open_high_alerts", "vitals_not_near_baseline",
    ]  # fmt: skip
    for alert in session_alerts(world, session):
        if alert["rule"] in active:
            assert (alert["status"], alert["resolution_note"]) == ("resolved", "session discharged")


def test_an_alert_that_became_high_after_a_dated_back_discharge_does_not_block_it(
    world: World,
) -> None:
    session = ready(world, ended=50)
    world.reading(session, measured_at=after_end(session, 30), spo2=92)  # medium
    escalated = world.reading(session, measured_at=after_end(session, 45), spo2=85)
    [alert] = [a for a in escalated["alerts"] if a["rule"] == "spo2.low"]
    assert (alert["severity"], alert["count"]) == ("high", 2)
    at_45 = discharge(world, session, at=after_end(session, 45))
    assert expect_problem(at_45, 409, "discharge-blocked")["blockers"] == ["open_high_alerts"]
    at_40 = discharge(world, session, at=after_end(session, 40))  # it was medium then
    assert at_40.status_code == 200, at_40.text


def test_readings_after_discharge_are_409_but_late_entries_are_accepted(world: World) -> None:
    session = ready(world, ended=45)
    assert discharge(world, session, at=after_end(session, 35)).status_code == 200
    late = world.nurse.post(
        f"/v1/sessions/{session['id']}/readings",
        json={"measured_at": after_end(session, 34), "heart_rate": 70},
    )
    assert late.status_code == 201, late.text
    after = world.nurse.post(
        f"/v1/sessions/{session['id']}/readings", json={"measured_at": ago(1), "heart_rate": 70}
    )
    expect_problem(after, 409, "conflict")


# --- the dissociation.unresolved time alert ---------------------------------------------------
@pytest.mark.parametrize(
    ("ended", "severity", "threshold"), [(58, None, None), (70, "medium", 60), (125, "high", 120)]
)
def test_unresolved_alert_by_time_then_condition_ended(
    world: World, ended: float, severity: str | None, threshold: int | None
) -> None:
    session = recovering(world, started=ended + 50, ended=ended)
    found = session_alerts(world, session, "dissociation.unresolved")
    if threshold is None:
        assert found == []
        return
    [alert] = found
    assert (alert["severity"], alert["status"], alert["threshold"]) == (severity, "open", threshold)
    assert ended - 0.1 <= alert["value"] <= ended + 1
    assert same(alert["first_seen_at"], after_end(session, 60))
    assert same(alert["last_seen_at"], after_end(session, threshold))
    assert recovery(world, session)["status"] == "unresolved_overdue"
    assess(world, session, ended - 10, 1)
    [still] = session_alerts(world, session, "dissociation.unresolved")
    assert still["status"] == "open"
    assess(world, session, ended - 5, 0)
    [done] = session_alerts(world, session, "dissociation.unresolved")
    assert (done["status"], done["resolution_note"]) == ("resolved", "condition ended")
    assert recovery(world, session)["status"] == "resolved_after_60"


# --- a session from baseline to discharge -------------------------------------------------------
def test_a_realistic_session_end_to_end(world: World) -> None:
    nurse, session = world.nurse, world.session()
    vitals = {"systolic": 118, "diastolic": 76, "heart_rate": 70, "spo2": 98}
    base = world.reading(session, measured_at=ago(118), **vitals)
    assert base["phase"] == "pre"
    started = world.transition(session, "start", at=ago(115))
    assert started["status"] == "in_progress" and started["baseline"]["reading_id"] == base["id"]
    start = started["started_at"]
    rise: Json | None = None
    for minute, (sys, dia, hr) in zip(
        (10, 20, 30, 40), ((128, 80, 76), (140, 86, 80), (150, 88, 84), (158, 92, 88)), strict=True
    ):
        vitals = {"systolic": sys, "diastolic": dia, "heart_rate": hr, "spo2": 97}
        reading = world.reading(session, measured_at=shifted(start, minute), **vitals)
        assert reading["phase"] == "intra"
        rises = [a for a in reading["alerts"] if a["rule"] == "bp.rise_from_baseline"]
        if minute < 40:
            assert rises == []
        else:  # the peak, 40 minutes in: 158 ≥ 118 + 40
            [rise] = rises
            assert (rise["severity"], rise["status"]) == ("medium", "open")
    assert rise is not None
    acked = nurse.post(f"/v1/alerts/{rise['id']}/acknowledge", json={"note": "rechecking"})
    assert acked.status_code == 200 and acked.json()["status"] == "acknowledged"
    world.reading(
        session, measured_at=shifted(start, 50), systolic=136, diastolic=84, heart_rate=78
    )
    [cleared] = session_alerts(world, session, "bp.rise_from_baseline")
    assert (cleared["status"], cleared["resolution_note"]) == ("resolved", "cleared")
    session = world.transition(session, "end", at=shifted(start, 60))
    assert session["status"] == "recovery"
    picture = recovery(world, session)
    assert (picture["status"], picture["discharge_ready"]) == ("pending", False)
    assert same(picture["next_assessment_due_at"], after_end(session, 15))
    world.reading(
        session, measured_at=after_end(session, 10), systolic=126, diastolic=80, heart_rate=74
    )
    for minute, severity, cadss, status in (
        (15, 2, 28, "pending"), (30, 1, 9, "pending"), (45, 0, 3, "resolved_within_60"),
    ):  # fmt: skip
        assess(world, session, minute, severity, cadss=cadss)
        picture = recovery(world, session)
        assert picture["status"] == status
        assert picture["dissociation"]["last_severity"] == severity
        if status == "pending":
            assert same(picture["next_assessment_due_at"], after_end(session, minute + 15))
    assert picture["dissociation"]["minutes_to_resolution"] == pytest.approx(45, abs=EPS)
    assert picture["next_assessment_due_at"] is None
    assert picture["vitals_near_baseline"] is True
    assert (picture["discharge_ready"], picture["discharge_blockers"]) == (True, [])
    done = discharge(world, session)
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "discharged" and done.json()["discharge_override"] is None
    assert all(a["status"] == "resolved" for a in session_alerts(world, session))
