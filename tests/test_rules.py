"""Threshold rules and alert semantics over HTTP (PROTOCOL.md "Threshold rules", "Alert semantics")."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.factories import World, acknowledge_alert, active_alerts, ago, create_entry, parse_time

Row = tuple[str, dict[str, Any], str | None, float | None, float | None]
NORMAL = {"respiratory_rate": 16, "spo2": 98, "systolic": 124, "diastolic": 78,
          "heart_rate": 72, "consciousness": "alert", "temperature_c": 36.8}  # fmt: skip
LEVELS = ["alert", "confusion", "voice", "pain", "unresponsive"]
RANK = {"low": 1, "medium": 2, "high": 3}
SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))


def post(world: World, session: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return create_entry(world, session, "readings", **fields)  # exactly these fields


def observe(world: World, session: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return create_entry(world, session, "observations", **fields)


def of_rule(alerts: list[dict[str, Any]], rule: str) -> list[dict[str, Any]]:
    return [alert for alert in alerts if alert["rule"] == rule]


def one(body: dict[str, Any], rule: str) -> dict[str, Any]:
    """The single alert of ``rule`` that this POST opened or updated."""
    [alert] = of_rule(body["alerts"], rule)
    return alert


def check(world: World, session: dict[str, Any], body: dict[str, Any], rule: str, row: Row) -> None:
    """The response (and the active alerts) show ``rule`` as the row expects, or not at all."""
    _, _, severity, value, threshold = row
    raised, still = of_rule(body["alerts"], rule), of_rule(active_alerts(world, session), rule)
    if severity is None:
        assert raised == [] and still == [], (raised, still)
        return
    [alert] = raised
    assert [a["id"] for a in still] == [alert["id"]]
    assert (alert["rule"], alert["severity"], alert["status"]) == (rule, severity, "open")
    assert (alert["value"], alert["threshold"], alert["count"]) == (value, threshold, 1)
    assert alert["session_id"] == session["id"] and alert["message"]


M, H = "medium", "high"
# rule: (reading field, other fields it needs, medium limit, high limit) from PROTOCOL.md
LIMITS = {
    "bp.systolic.high": ("systolic", {"diastolic": 70}, 160, 180),
    "bp.diastolic.high": ("diastolic", {"systolic": 150}, 100, 110),
    "bp.systolic.low": ("systolic", {"diastolic": 50}, 90, 80),
    "hr.high": ("heart_rate", {}, 110, 130),
    "hr.low": ("heart_rate", {}, 50, 40),
    "spo2.low": ("spo2", {}, 93, 90),
    "rr.low": ("respiratory_rate", {}, 10, 8),
    "rr.high": ("respiratory_rate", {}, 25, None),
}


def _around(rule: str) -> list[Row]:
    """Just inside, at and just beyond each limit of a vital rule (step: towards violation)."""
    field, rest, medium, high = LIMITS[rule]
    step = -1 if high is not None and high < medium else 1
    expected = {medium - step: (None, None), medium: (M, medium), medium + step: (M, medium)}
    if high is not None:
        expected |= {high - step: (M, medium), high: (H, high), high + step: (H, high)}
    return [(rule, {field: v, **rest}, sev, None if sev is None else v, thr)
            for v, (sev, thr) in expected.items()]  # fmt: skip


VITAL_ROWS: list[Row] = [
    *(row for rule in LIMITS for row in _around(rule)),
    # relative to the session's baseline of 124/78: +40 systolic, +25 diastolic
    *[("bp.rise_from_baseline", {"systolic": v, "diastolic": 80}, sev, val, thr)
      for v, sev, val, thr in [(163, None, None, None), (164, M, 164, 164), (165, M, 165, 164)]],
    *[("bp.rise_from_baseline", {"systolic": 140, "diastolic": v}, sev, val, thr)
      for v, sev, val, thr in [(102, None, None, None), (103, M, 103, 103), (104, M, 104, 103)]],
    # complete NEWS2: aggregate 4 / 5 / 6 / 7, and a single parameter scoring 3
    ("news2", {**NORMAL, "heart_rate": 111, "spo2": 94, "temperature_c": 38.1}, None, None, None),
    ("news2", {**NORMAL, "on_oxygen": True, "spo2": 95}, None, None, None),
    ("news2", {**NORMAL, "respiratory_rate": 21, "spo2": 94, "heart_rate": 91,
               "temperature_c": 38.1}, M, 5, 5),
    ("news2", {**NORMAL, "respiratory_rate": 21, "on_oxygen": True, "heart_rate": 111}, M, 6, 5),
    ("news2", {**NORMAL, "respiratory_rate": 21, "heart_rate": 111, "spo2": 94,
               "temperature_c": 39.1}, H, 7, 7),
    ("news2", {**NORMAL, "respiratory_rate": 25}, M, 3, 5),
    ("news2", {**NORMAL, "temperature_c": 35.0}, M, 3, 5),
    ("news2", {**NORMAL, "consciousness": "voice"}, M, 3, 5),
    ("news2", {**NORMAL, "systolic": 220, "diastolic": 90, "heart_rate": 131}, M, 6, 5),
    ("news2", {**NORMAL, "spo2": 91, "consciousness": "pain", "temperature_c": 39.1}, H, 8, 7),
]  # fmt: skip


def _row_id(row: Row) -> str:
    fields = {k: v for k, v in row[1].items() if NORMAL.get(k) != v or row[0] != "news2"}
    return f"{row[0]}-" + "-".join(f"{k}={v}" for k, v in fields.items())


@pytest.mark.parametrize("row", VITAL_ROWS, ids=_row_id)
def test_reading_rule_at_and_around_its_threshold(world: World, row: Row) -> None:
    session = world.session(state="in_progress")
    body = post(world, session, **row[1])
    assert body["phase"] == "intra"
    check(world, session, body, row[0], row)


def test_incomplete_news2_raises_no_news2_alert_but_vital_rules_still_run(world: World) -> None:
    session = world.session(state="in_progress")
    body = post(world, session, respiratory_rate=30, spo2=85, systolic=85, diastolic=50,
                heart_rate=140, consciousness="alert")  # fmt: skip
    news2 = body["news2"]
    assert (news2["complete"], news2["missing"]) == (False, ["temperature_c"])
    assert news2["score"] == 12 and of_rule(body["alerts"], "news2") == []
    assert of_rule(active_alerts(world, session), "news2") == []
    rules = {a["rule"] for a in body["alerts"]}
    assert {"rr.high", "spo2.low", "bp.systolic.low", "hr.high"} <= rules


def test_reading_carries_news2_with_parameters_named_as_reading_fields(world: World) -> None:
    session = world.session(state="in_progress")
    [baseline] = world.readings(session)
    body = post(world, session, spo2=95, respiratory_rate=22, temperature_c=37.0,
                consciousness="alert", measured_at=ago(2))  # fmt: skip
    news2, params = body["news2"], body["news2"]["parameters"]
    assert (news2["score"], news2["risk"], news2["complete"], news2["missing"]) == (
        3, "low", True, [])  # fmt: skip
    assert all(set(p) == {"value", "score", "measured_at"} for p in params.values())
    assert {name: (p["value"], p["score"]) for name, p in params.items()} == {
        "respiratory_rate": (22, 2), "spo2": (95, 1), "on_oxygen": (False, 0),
        "systolic": (124, 0), "heart_rate": (72, 0), "consciousness": ("alert", 0),
        "temperature_c": (37.0, 0),
    }  # fmt: skip
    assert parse_time(params["spo2"]["measured_at"]) == parse_time(body["measured_at"])
    for carried in ("systolic", "heart_rate"):  # from the baseline, 30 minutes before
        assert parse_time(params[carried]["measured_at"]) == parse_time(baseline["measured_at"])


@pytest.mark.parametrize(("systolic", "diastolic", "value", "threshold"),
                         [(179, 100, None, None), (180, 100, 180, 180), (150, 114, None, None),
                          (150, 115, 115, 115)])  # fmt: skip
def test_rise_is_measured_from_this_sessions_latest_pre_start_reading(
    world: World, systolic: int, diastolic: int, value: int | None, threshold: int | None
) -> None:
    session = world.session(state="baseline")
    post(world, session, systolic=140, diastolic=90, heart_rate=72, measured_at=ago(28))
    session = world.transition(session, "start", at=ago(25))
    assert (session["baseline"]["systolic"], session["baseline"]["diastolic"]) == (140, 90)
    body = post(world, session, systolic=systolic, diastolic=diastolic)
    row: Row = ("", {}, None if value is None else M, value, threshold)
    check(world, session, body, "bp.rise_from_baseline", row)


def test_no_rise_from_baseline_on_a_pre_start_reading(world: World) -> None:
    session = world.session(state="baseline")
    body = post(world, session, systolic=170, diastolic=105)
    assert body["phase"] == "pre"
    assert {a["rule"] for a in body["alerts"]} == {"bp.systolic.high", "bp.diastolic.high"}
    started = world.session(state="in_progress")
    late = post(world, started, systolic=170, diastolic=105, measured_at=ago(27))
    assert late["phase"] == "pre"
    assert of_rule(late["alerts"], "bp.rise_from_baseline") == []
    assert of_rule(active_alerts(world, started), "bp.rise_from_baseline") == []


@pytest.mark.parametrize("level", LEVELS)
def test_consciousness_reduced_only_in_the_post_phase(world: World, level: str) -> None:
    for state, phase in (("baseline", "pre"), ("in_progress", "intra"), ("recovery", "post")):
        session = world.session(state=state)
        body = post(world, session, consciousness=level)
        assert body["phase"] == phase
        raised = of_rule(body["alerts"], "consciousness.reduced")
        still = of_rule(active_alerts(world, session), "consciousness.reduced")
        if phase != "post" or level == "alert":
            assert raised == [] and still == []
        else:
            [alert] = raised
            assert (alert["severity"], alert["status"]) == ("high", "open")


SYMPTOMS = ["nausea", "dizziness", "headache", "blurred_vision", "anxiety", "agitation",
            "hallucinations", "other"]  # fmt: skip
OBSERVATION_ROWS: list[Row] = [
    *[("sedation.deep", {"kind": "sedation", "moaas": v}, s, None if s is None else v, t)
      for v, s, t in [(5, None, None), (4, None, None), (3, M, 3), (2, H, 2), (1, H, 2), (0, H, 2)]],
    ("dissociation.severe", {"kind": "dissociation", "severity": 2}, None, None, None),
    ("dissociation.severe", {"kind": "dissociation", "severity": 3, "cadss": 40}, M, 3, 3),
    ("symptom.vomiting", {"kind": "vomiting", "severity": 0}, None, None, None),
    ("symptom.vomiting", {"kind": "vomiting", "severity": 1}, M, 1, 1),
    ("symptom.vomiting", {"kind": "vomiting", "severity": 3}, M, 3, 1),
    ("symptom.severe", {"kind": "vomiting", "severity": 3}, None, None, None),
    *[("symptom.severe", {"kind": kind, "severity": 2}, None, None, None) for kind in SYMPTOMS],
    *[("symptom.severe", {"kind": kind, "severity": 3}, M, 3, 3) for kind in SYMPTOMS],
]  # fmt: skip


@pytest.mark.parametrize("row", OBSERVATION_ROWS, ids=_row_id)
def test_observation_rule_at_and_around_its_threshold(world: World, row: Row) -> None:
    session = world.session(state="in_progress")
    body = observe(world, session, **row[1])
    check(world, session, body, row[0], row)


def test_alert_names_the_version_its_session_started_with(world: World) -> None:
    session = world.session(state="in_progress")
    stricter = world.nurse.get("/v1/protocol").json()
    version = stricter["version"]
    assert session["protocol_version"] == version
    sedation = one(observe(world, session, kind="sedation", moaas=2), "sedation.deep")
    assert sedation["protocol_version"] == version
    stricter["thresholds"]["hr.high"] = {"medium": 100, "high": 120}
    response = world.clinician.request("PUT", "/v1/protocol", json=stricter)
    assert response.status_code == 200, response.text
    assert response.json()["version"] == version + 1
    assert of_rule(post(world, session, heart_rate=105)["alerts"], "hr.high") == []
    alert = one(post(world, session, heart_rate=125), "hr.high")
    assert (alert["severity"], alert["protocol_version"]) == ("medium", version)
    newer = world.session(state="in_progress")
    fresh = one(post(world, newer, heart_rate=105), "hr.high")
    assert (fresh["threshold"], fresh["protocol_version"]) == (100, version + 1)


def test_news2_alert_updates_through_carry_forward_and_clears_on_a_low_score(world: World) -> None:
    session = world.session(state="in_progress")
    alert = one(
        post(world, session, **{**NORMAL, "respiratory_rate": 25}, measured_at=ago(10)), "news2"
    )
    carried = post(world, session, spo2=98, heart_rate=None, measured_at=ago(8))
    rr = carried["news2"]["parameters"]["respiratory_rate"]
    assert carried["news2"]["complete"] is True and rr["value"] == 25
    assert parse_time(rr["measured_at"]) == parse_time(alert["last_seen_at"])
    again = one(carried, "news2")
    assert (again["id"], again["count"], again["cleared_at"]) == (alert["id"], 2, None)
    normal_at = ago(5)
    cleared = one(post(world, session, **NORMAL, measured_at=normal_at), "news2")
    assert (cleared["id"], cleared["status"], cleared["value"]) == (alert["id"], "open", 3)
    assert parse_time(cleared["cleared_at"]) == parse_time(normal_at)


def test_further_violations_update_one_alert_and_never_lower_its_severity(world: World) -> None:
    session = world.session(state="in_progress")
    times = [ago(20), ago(15), ago(10), ago(5)]
    first = one(post(world, session, heart_rate=115, measured_at=times[0]), "hr.high")
    steps = [(135, "high", 130, 2), (112, "high", 130, 3), (150, "high", 130, 4)]
    for (value, severity, threshold, count), at in zip(steps, times[1:], strict=True):
        alert = one(post(world, session, heart_rate=value, measured_at=at), "hr.high")
        assert alert["id"] == first["id"] and alert["status"] == "open"
        assert (alert["severity"], alert["threshold"]) == (severity, threshold)
        assert (alert["value"], alert["count"]) == (value, count)
        assert parse_time(alert["last_seen_at"]) == parse_time(at)
        assert parse_time(alert["first_seen_at"]) == parse_time(times[0])
        assert [a["id"] for a in of_rule(active_alerts(world, session), "hr.high")] == [first["id"]]


def test_non_violating_reading_clears_an_open_alert_which_stays_latched(world: World) -> None:
    session = world.session(state="in_progress")
    alert = one(post(world, session, heart_rate=115, measured_at=ago(10)), "hr.high")
    other = post(world, session, heart_rate=None, spo2=98, measured_at=ago(8))
    assert of_rule(other["alerts"], "hr.high") == []  # another parameter: not evidence
    cleared_at = ago(5)
    cleared = one(post(world, session, heart_rate=80, measured_at=cleared_at), "hr.high")
    assert cleared["id"] == alert["id"] and cleared["status"] == "open"
    assert parse_time(cleared["cleared_at"]) == parse_time(cleared_at)
    assert [a["id"] for a in of_rule(active_alerts(world, session), "hr.high")] == [alert["id"]]
    acknowledged = acknowledge_alert(world, cleared)
    assert (acknowledged["status"], acknowledged["resolution_note"]) == ("resolved", "cleared")
    assert acknowledged["acknowledged_by"] == str(world.clinician.key_id)
    assert of_rule(active_alerts(world, session), "hr.high") == []


def test_acknowledged_alert_resolves_itself_when_cleared(world: World) -> None:
    session = world.session(state="in_progress")
    alert = one(post(world, session, spo2=92, heart_rate=None, measured_at=ago(10)), "spo2.low")
    assert acknowledge_alert(world, alert)["status"] == "acknowledged"
    resolved = one(post(world, session, spo2=97, heart_rate=None, measured_at=ago(5)), "spo2.low")
    assert resolved["id"] == alert["id"]
    assert (resolved["status"], resolved["resolution_note"]) == ("resolved", "cleared")
    assert resolved["cleared_at"] is not None and resolved["resolved_at"] is not None
    assert of_rule(active_alerts(world, session), "spo2.low") == []
    again = one(post(world, session, spo2=91, heart_rate=None, measured_at=ago(2)), "spo2.low")
    assert again["id"] != alert["id"] and (again["count"], again["status"]) == (1, "open")


def test_violation_after_clearing_clears_cleared_at(world: World) -> None:
    session = world.session(state="in_progress")
    alert = one(post(world, session, heart_rate=45, measured_at=ago(15)), "hr.low")
    cleared = one(post(world, session, heart_rate=70, measured_at=ago(10)), "hr.low")
    assert cleared["cleared_at"] is not None
    again = one(post(world, session, heart_rate=48, measured_at=ago(5)), "hr.low")
    assert again["id"] == alert["id"] and again["cleared_at"] is None
    assert (again["status"], again["count"], again["value"]) == ("open", 2, 48)
    assert acknowledge_alert(world, again)["status"] == "acknowledged"  # not cleared: stays active


def test_late_non_violating_reading_does_not_clear_newer_evidence(world: World) -> None:
    session = world.session(state="in_progress")
    alert = one(post(world, session, heart_rate=120, measured_at=ago(5)), "hr.high")
    late = post(world, session, heart_rate=80, measured_at=ago(10))
    assert of_rule(late["alerts"], "hr.high") == []
    [still] = of_rule(active_alerts(world, session), "hr.high")
    assert (still["id"], still["cleared_at"]) == (alert["id"], None)


def test_later_observation_clears_an_observation_alert(world: World) -> None:
    session = world.session(state="in_progress")

    def sedation(moaas: int, minutes: int) -> dict[str, Any]:
        body = observe(world, session, kind="sedation", moaas=moaas, measured_at=ago(minutes))
        return one(body, "sedation.deep")

    alert, deeper, cleared = sedation(3, 10), sedation(1, 8), sedation(5, 5)
    assert (deeper["id"], deeper["severity"], deeper["threshold"]) == (alert["id"], "high", 2)
    assert (cleared["id"], cleared["status"], cleared["severity"]) == (alert["id"], "open", "high")
    assert cleared["cleared_at"] is not None


def test_symptom_severe_is_cleared_only_by_the_same_symptom(world: World) -> None:
    """PROTOCOL.md: a later observation *of the same parameter* clears; a mild headache says
    nothing about severe nausea."""
    session = world.session(state="in_progress")
    severe = observe(world, session, kind="nausea", severity=3, measured_at=ago(10))
    nausea = one(severe, "symptom.severe")
    assert acknowledge_alert(world, nausea)["status"] == "acknowledged"
    observe(world, session, kind="headache", severity=1, measured_at=ago(5))
    alert = world.nurse.get(f"/v1/alerts/{nausea['id']}").json()
    assert (alert["status"], alert["cleared_at"], alert["resolution_note"]) == (
        "acknowledged", None, None)  # fmt: skip
    mild = observe(world, session, kind="nausea", severity=1, measured_at=ago(2))
    resolved = one(mild, "symptom.severe")
    assert (resolved["status"], resolved["resolution_note"]) == ("resolved", "cleared")


# --- properties ---------------------------------------------------------------------------------
BP = st.tuples(st.integers(70, 200), st.integers(40, 125)).filter(lambda bp: bp[1] < bp[0])
VITALS = st.fixed_dictionaries({}, optional={
    "heart_rate": st.integers(30, 150), "bp": BP, "spo2": st.integers(85, 100),
    "respiratory_rate": st.integers(4, 30), "on_oxygen": st.booleans(),
    "temperature_c": st.integers(340, 400).map(lambda t: t / 10),
    "consciousness": st.sampled_from(LEVELS),
}).filter(lambda r: set(r) - {"on_oxygen"})  # fmt: skip


def as_body(vitals: dict[str, Any]) -> dict[str, Any]:
    body = {k: v for k, v in vitals.items() if k != "bp"}
    if "bp" in vitals:
        body["systolic"], body["diastolic"] = vitals["bp"]
    return body


def violated(reading: dict[str, Any], phase: str, news2: dict[str, Any]) -> set[str]:
    """The rules PROTOCOL.md says this reading violates (session baseline 124/78)."""
    hr, sys, dia = reading.get("heart_rate"), reading.get("systolic"), reading.get("diastolic")
    spo2, rr = reading.get("spo2"), reading.get("respiratory_rate")
    checks = {
        "hr.high": hr is not None and hr >= 110, "hr.low": hr is not None and hr <= 50,
        "bp.systolic.high": sys is not None and sys >= 160,
        "bp.systolic.low": sys is not None and sys <= 90,
        "bp.diastolic.high": dia is not None and dia >= 100,
        "bp.rise_from_baseline": sys is not None and (sys >= 164 or dia >= 103),
        "spo2.low": spo2 is not None and spo2 <= 93,
        "rr.low": rr is not None and rr <= 10, "rr.high": rr is not None and rr >= 25,
        "consciousness.reduced": phase == "post"
        and reading.get("consciousness") not in (None, "alert"),
        "news2": news2["complete"] and (news2["score"] >= 5
                                        or any(p["score"] == 3 for p in news2["parameters"].values())),
    }  # fmt: skip
    return {rule for rule, hit in checks.items() if hit}


@SETTINGS
@given(vitals=VITALS, state=st.sampled_from(["in_progress", "recovery"]))
def test_property_every_violation_leaves_an_active_alert(
    world: World, vitals: dict[str, Any], state: str
) -> None:
    session = world.session(state=state)
    reading = as_body(vitals)
    body = post(world, session, **reading)
    expected = violated(reading, body["phase"], body["news2"])
    rules = [a["rule"] for a in active_alerts(world, session)]
    assert expected <= set(rules), (expected, rules)
    raised = {a["rule"] for a in body["alerts"]} - {"vitals.overdue"}  # time rule, re-judged
    assert raised == expected


STEPS = st.lists(
    st.one_of(st.tuples(VITALS, st.integers(1, 24)), st.just("acknowledge")), min_size=2, max_size=7
)


def run_steps(world: World, steps: list[Any]) -> list[list[dict[str, Any]]]:
    """Apply readings (at minutes ago, in any order) and acknowledgements; active alerts after each."""
    session = world.session(state="in_progress")
    snapshots = []
    for step in steps:
        if step == "acknowledge":
            for alert in active_alerts(world, session):
                if alert["status"] == "open":
                    acknowledge_alert(world, alert)
        else:
            vitals, minutes = step
            post(world, session, **as_body(vitals), measured_at=ago(minutes))
        snapshots.append(active_alerts(world, session))
    return snapshots


@SETTINGS
@given(steps=STEPS)
def test_property_never_two_active_alerts_of_one_rule(world: World, steps: list[Any]) -> None:
    for alerts in run_steps(world, steps):
        rules = [a["rule"] for a in alerts]
        assert len(rules) == len(set(rules)), rules


@SETTINGS
@given(steps=STEPS)
def test_property_severity_never_falls_while_active(world: World, steps: list[Any]) -> None:
    seen: dict[str, int] = {}
    for alerts in run_steps(world, steps):
        for alert in alerts:
            rank = RANK[alert["severity"]]
            assert rank >= seen.get(alert["id"], 0), (alert, seen)
            seen[alert["id"]] = rank


# --- transitions dated back ------------------------------------------------------------------
def test_readings_posted_before_a_start_dated_back_are_judged_for_a_rise(world: World) -> None:
    session = world.session(state="baseline")  # 124/78 measured 30 minutes ago
    early = world.reading(session, measured_at=ago(20), systolic=128, diastolic=80)
    rising = world.reading(session, measured_at=ago(15), systolic=165, diastolic=80)
    assert [a["rule"] for a in rising["alerts"]] == ["bp.systolic.high"]  # pre: no rise yet
    world.transition(session, "start", at=ago(22))  # the infusion began before both
    [rise] = [a for a in active_alerts(world, session) if a["rule"] == "bp.rise_from_baseline"]
    assert (rise["severity"], rise["value"], rise["threshold"]) == ("medium", 165, 164)
    assert (rise["reading_id"], rise["count"]) == (rising["id"], 1)
    assert parse_time(rise["first_seen_at"]) == parse_time(rising["measured_at"])
    assert early["id"] != rise["reading_id"]
    # The baseline is the reading before the start; nothing else was judged twice.
    [high] = [a for a in active_alerts(world, session) if a["rule"] == "bp.systolic.high"]
    assert high["count"] == 1


def test_readings_posted_before_an_end_dated_back_are_judged_for_consciousness(
    world: World,
) -> None:
    session = world.session(state="in_progress")  # started 25 minutes ago
    drowsy = world.reading(session, measured_at=ago(3), consciousness="voice")
    assert "consciousness.reduced" not in [a["rule"] for a in drowsy["alerts"]]  # intra
    world.transition(session, "end", at=ago(5))
    [reduced] = [a for a in active_alerts(world, session) if a["rule"] == "consciousness.reduced"]
    assert (reduced["severity"], reduced["reading_id"]) == ("high", drowsy["id"])
    board = world.dashboard.get("/v1/board").json()
    [row] = [r for r in board["items"] if r["session_id"] == session["id"]]
    assert row["alerts"]["highest"] == "high"


def test_an_end_dated_back_judges_nothing_measured_before_it(world: World) -> None:
    session = world.session(state="in_progress")
    world.reading(session, measured_at=ago(8), consciousness="voice")  # during the infusion
    world.transition(session, "end", at=ago(5))
    assert "consciousness.reduced" not in [a["rule"] for a in active_alerts(world, session)]
