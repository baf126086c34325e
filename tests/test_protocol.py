"""The clinic protocol: PROTOCOL.md's defaults, new versions, and sessions keeping theirs."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from pydantic import ValidationError

from app.protocol.defaults import DEFAULT_PROTOCOL
from app.protocol.schemas import DIRECTIONS, PLAUSIBLE, ProtocolUpdate, contradictions
from app.protocol.service import from_storage
from tests.factories import World, ago, error_locs, expect_problem, shifted, started

Json = dict[str, Any]
# PROTOCOL.md "Threshold rules": rule -> (low, medium, high); None where the rule has no level.
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
    "dissociation.severe": (None, 3, None),
    "symptom.vomiting": (None, 1, None),
    "symptom.severe": (None, 3, None),
    "vitals.overdue": (15, 30, None),
    "dissociation.unresolved": (None, 60, 120),
}
LEVELS = ("low", "medium", "high")
DROP = object()  # in a revision: leave this key out of the body
FAST_HEART = {"thresholds": {"hr.high": {"medium": 100, "high": 120}}}


def current(world: World) -> Json:
    response = world.nurse.get("/v1/protocol")
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def _revise(document: Json, changes: Json) -> None:
    for key, value in changes.items():
        if value is DROP:
            document.pop(key, None)
        elif isinstance(value, dict) and isinstance(document.get(key), dict):
            _revise(document[key], value)
        else:
            document[key] = copy.deepcopy(value)


def revised(world: World, changes: Json) -> Json:
    """The protocol in force, as GET answers it without its version, with ``changes`` merged in."""
    document = {k: v for k, v in current(world).items() if k != "version"}
    _revise(document, changes)
    return document


def put(world: World, body: Json) -> Json:
    response = world.clinician.request("PUT", "/v1/protocol", json=body)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def limits(protocol: Json, rule: str) -> tuple[Any, Any, Any]:
    found = protocol["thresholds"][rule]
    return found.get("low"), found.get("medium"), found.get("high")


def alert_of(reading: Json, rule: str) -> Json | None:
    found = [a for a in reading["alerts"] if a["rule"] == rule]
    return found[0] if found else None


def hr_alert(world: World, session: Json, heart_rate: int) -> Json | None:
    return alert_of(world.reading(session, measured_at=ago(1), heart_rate=heart_rate), "hr.high")


def test_the_default_protocol_is_version_1_with_protocol_md_numbers(world: World) -> None:
    protocol = current(world)
    assert protocol["version"] == 1
    assert set(protocol["thresholds"]) == set(DEFAULTS)
    for rule, expected in DEFAULTS.items():
        assert limits(protocol, rule) == expected, rule
        has = {level for level, limit in zip(LEVELS, expected, strict=True) if limit is not None}
        assert set(protocol["thresholds"][rule]) == has, rule  # no null for a level it lacks
    assert protocol["rise_from_baseline"] == {"systolic": 40, "diastolic": 25}
    assert protocol["screening"] == {"systolic_max": 140, "diastolic_max": 90}


@pytest.mark.parametrize("role", ["clinician", "ehr"])
def test_clinical_roles_read_the_protocol(world: World, role: str) -> None:
    response = getattr(world, role).get("/v1/protocol")
    assert response.status_code == 200 and response.json()["version"] == 1


def test_get_edit_put_stores_a_new_version_that_a_new_session_follows(world: World) -> None:
    document = current(world)
    document["thresholds"]["hr.high"]["medium"] = 100
    stored = put(world, document)  # sent back as GET gave it, version and all
    assert stored == {**document, "version": 2}
    assert current(world) == stored
    session = started(world)
    assert session["protocol_version"] == 2
    alert = hr_alert(world, session, 100)
    assert alert is not None
    assert (alert["severity"], alert["threshold"], alert["protocol_version"]) == ("medium", 100, 2)


def test_a_clinician_stores_a_new_version(world: World) -> None:
    stored = put(world, revised(world, FAST_HEART))  # no version field: the server numbers it
    assert stored["version"] == 2
    assert limits(stored, "hr.high") == (None, 100, 120)
    assert limits(stored, "bp.systolic.high") == (None, 160, 180)  # as in the version before
    assert current(world) == stored
    screening = {"screening": {"systolic_max": 150, "diastolic_max": 95}}
    assert put(world, revised(world, screening))["version"] == 3
    assert current(world)["screening"] == {"systolic_max": 150, "diastolic_max": 95}
    assert limits(current(world), "hr.high") == (None, 100, 120)


def test_a_stored_protocol_belongs_to_its_clinic(world: World) -> None:
    put(world, revised(world, FAST_HEART))
    other = world.other_nurse.get("/v1/protocol").json()
    assert other["version"] == 1 and limits(other, "hr.high") == (None, 110, 130)


@pytest.mark.parametrize("role", ["nurse", "dashboard"])
def test_only_a_clinician_changes_the_protocol(world: World, role: str) -> None:
    response = getattr(world, role).request("PUT", "/v1/protocol", json=revised(world, FAST_HEART))
    expect_problem(response, 403, "forbidden")
    assert current(world)["version"] == 1


def _rule(rule: str, **levels: Any) -> Json:
    return {"thresholds": {rule: levels}}


INVALID = [
    # A level PROTOCOL.md's table does not give the rule.
    ("rr-high-high", _rule("rr.high", high=40), ["thresholds", "rr.high", "high"]),
    ("hr-high-low", _rule("hr.high", low=100), ["thresholds", "hr.high", "low"]),
    ("overdue-high", _rule("vitals.overdue", high=60), ["thresholds", "vitals.overdue", "high"]),
    ("unresolved-low", _rule("dissociation.unresolved", low=30), ["thresholds", "dissociation.unresolved", "low"]),
    ("vomiting-low", _rule("symptom.vomiting", low=0), ["thresholds", "symptom.vomiting", "low"]),
    ("unknown-level", _rule("hr.high", critical=150), ["thresholds", "hr.high", "critical"]),
    # A level the rule has, left out or null.
    ("hr-high-null", _rule("hr.high", high=None), ["thresholds", "hr.high", "high"]),
    ("hr-high-missing", _rule("hr.high", high=DROP), ["thresholds", "hr.high", "high"]),
    ("overdue-low-missing", _rule("vitals.overdue", low=DROP), ["thresholds", "vitals.overdue", "low"]),
    ("rr-high-medium-null", _rule("rr.high", medium=None), ["thresholds", "rr.high", "medium"]),
    # A rule or a section left out, or null.
    ("rule-missing", {"thresholds": {"news2": DROP}}, ["thresholds", "news2"]),
    ("rule-null", {"thresholds": {"rr.high": None}}, ["thresholds", "rr.high"]),
    ("section-missing", {"screening": DROP}, ["screening"]),
    ("section-null", {"recovery": None}, ["recovery"]),
    ("nested-missing", {"recovery": {"near_baseline": DROP}}, ["recovery", "near_baseline"]),
    ("field-missing", {"recovery": {"vomiting_window_min": DROP}}, ["recovery", "vomiting_window_min"]),
    # bp.rise_from_baseline has its own shape: systolic and diastolic rises, no levels.
    ("rise-level", {"rise_from_baseline": {"medium": 40}}, ["rise_from_baseline", "medium"]),
    ("rise-missing", {"rise_from_baseline": {"diastolic": DROP}}, ["rise_from_baseline", "diastolic"]),
    # Numbers and names.
    ("high-below", _rule("hr.high", medium=110, high=100), ["thresholds", "hr.high"]),
    ("low-above", _rule("hr.low", medium=40, high=50), ["thresholds", "hr.low"]),
    ("overdue-order", _rule("vitals.overdue", low=30, medium=15), ["thresholds", "vitals.overdue"]),
    ("unknown-rule", _rule("hr.sky_high", medium=150), ["thresholds", "hr.sky_high"]),
    ("unknown-field", {"colour": "red"}, ["colour"]),
    ("screening", {"screening": {"pulse_max": 100}}, ["screening", "pulse_max"]),
    ("not-a-number", _rule("hr.high", medium="fast"), ["thresholds", "hr.high", "medium"]),
    ("a-boolean-limit", _rule("hr.high", medium=True), ["thresholds", "hr.high", "medium"]),
    ("a-boolean-rise", {"rise_from_baseline": {"systolic": True}}, ["rise_from_baseline", "systolic"]),
    ("a-boolean-minimum", {"recovery": {"min_observation_min": False}}, ["recovery", "min_observation_min"]),
    ("a-fractional-rise", {"rise_from_baseline": {"diastolic": 25.5}}, ["rise_from_baseline", "diastolic"]),
]  # fmt: skip


@pytest.mark.parametrize(("changes", "loc"), [pytest.param(c, loc, id=i) for i, c, loc in INVALID])
def test_an_invalid_protocol_is_rejected_and_nothing_stored(
    world: World, changes: Json, loc: list[str]
) -> None:
    before = current(world)
    response = world.clinician.request("PUT", "/v1/protocol", json=revised(world, changes))
    expect_problem(response, 422, "validation")
    assert ["body", *loc] in error_locs(response), response.text
    assert current(world) == before


def _recovery(**fields: Any) -> Json:
    return {"recovery": fields}


# A protocol contradicting itself: (changes, every loc it is rejected at, words of the msg).
CONTRADICTORY = [
    # A systolic of 165 would raise a bp.systolic.high medium and a bp.systolic.low high alert.
    ("systolic-low-above-high", _rule("bp.systolic.low", medium=170, high=165),
     [["thresholds", "bp.systolic.low", "medium"], ["thresholds", "bp.systolic.low", "high"],
      ["thresholds", "bp.systolic.high", "medium"]], "would raise both"),
    ("hr-low-above-high", _rule("hr.low", medium=120, high=115),
     [["thresholds", "hr.low", "medium"], ["thresholds", "hr.low", "high"],
      ["thresholds", "hr.high", "medium"]], "a heart rate of"),
    ("hr-low-meets-high", _rule("hr.low", medium=110, high=40),
     [["thresholds", "hr.low", "medium"], ["thresholds", "hr.high", "medium"]], "would raise both"),
    ("rr-high-below-low", _rule("rr.high", medium=9),
     [["thresholds", "rr.low", "medium"], ["thresholds", "rr.high", "medium"]], "would raise both"),
    ("spo2-above-100", _rule("spo2.low", medium=101, high=100),
     [["thresholds", "spo2.low", "medium"]], "between 0 and 100 %"),
    ("severe-at-4", _rule("symptom.severe", medium=4),
     [["thresholds", "symptom.severe", "medium"]], "between 0 and 3"),
    ("moaas-above-5", _rule("sedation.deep", medium=6, high=2),
     [["thresholds", "sedation.deep", "medium"]], "MOAA/S"),
    ("news2-above-20", _rule("news2", medium=5, high=21), [["thresholds", "news2", "high"]], "20"),
    ("systolic-below-20", _rule("bp.systolic.low", medium=90, high=10),
     [["thresholds", "bp.systolic.low", "high"]], "between 20 and 300 mmHg"),
    ("diastolic-above-200", _rule("bp.diastolic.high", medium=100, high=250),
     [["thresholds", "bp.diastolic.high", "high"]], "diastolic"),
    ("overdue-at-0", _rule("vitals.overdue", low=0, medium=30),
     [["thresholds", "vitals.overdue", "low"]], "more than 0 minutes"),
    ("unresolved-at-0", _rule("dissociation.unresolved", medium=0, high=120),
     [["thresholds", "dissociation.unresolved", "medium"]], "more than 0 minutes"),
    # A resolution at 80 minutes would read as resolved_within_30.
    ("resolved-within-after-overdue", _recovery(resolved_within_min=90, overdue_after_min=60),
     [["recovery", "resolved_within_min"], ["recovery", "overdue_after_min"]], "shorter than"),
    ("resolved-within-at-overdue", _recovery(resolved_within_min=60),
     [["recovery", "resolved_within_min"], ["recovery", "overdue_after_min"]], "shorter than"),
    # Ordered within one time rule (the check every rule's levels get).
    ("unresolved-high-before-medium", _rule("dissociation.unresolved", medium=120, high=60),
     [["thresholds", "dissociation.unresolved"]], "above the lower one"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("changes", "locs", "words"),
    [pytest.param(c, locs, w, id=i) for i, c, locs, w in CONTRADICTORY],
)
def test_a_contradictory_protocol_is_rejected_naming_each_field(
    world: World, changes: Json, locs: list[list[str]], words: str
) -> None:
    before = current(world)
    response = world.clinician.request("PUT", "/v1/protocol", json=revised(world, changes))
    body = expect_problem(response, 422, "validation")
    assert sorted(error_locs(response)) == sorted(["body", *loc] for loc in locs), response.text
    assert all(words in error["msg"] for error in body["errors"]), body["errors"]
    assert current(world) == before


def test_a_contradiction_says_why_in_words() -> None:
    document = copy.deepcopy(DEFAULT_PROTOCOL)
    document["thresholds"]["bp.systolic.low"] = {"medium": 170, "high": 165}
    with pytest.raises(ValidationError) as caught:
        ProtocolUpdate.model_validate(document)
    messages = {error["loc"]: error["msg"] for error in caught.value.errors()}
    assert messages[("thresholds", "bp.systolic.low", "high")] == (
        "bp.systolic.low high (165) must lie below bp.systolic.high's lowest limit (160 mmHg):"
        " a systolic pressure of 165 would raise both"
    )


NEAR_THE_EDGE = [
    _rule("bp.systolic.low", medium=159, high=80),  # one below bp.systolic.high's medium
    _rule("hr.high", medium=51, high=130),
    _rule("rr.high", medium=11),
    _rule("spo2.low", medium=100, high=0),
    _rule("symptom.severe", medium=3),
    _rule("sedation.deep", medium=5, high=0),
    _rule("news2", medium=19, high=20),
    _rule("vitals.overdue", low=0.5, medium=1),
    _recovery(resolved_within_min=59, overdue_after_min=60),
]


@pytest.mark.parametrize("changes", NEAR_THE_EDGE)
def test_limits_at_the_edge_of_what_is_consistent_are_stored(world: World, changes: Json) -> None:
    assert put(world, revised(world, changes))["version"] == 2


def test_the_default_protocol_is_consistent() -> None:
    assert set(PLAUSIBLE) == set(DIRECTIONS)  # every rule has the range of what it judges
    assert contradictions(ProtocolUpdate.model_validate(DEFAULT_PROTOCOL)) == []


def test_a_contradictory_version_stored_before_the_checks_still_reads() -> None:
    stored = copy.deepcopy(DEFAULT_PROTOCOL)
    stored["thresholds"]["symptom.severe"] = {"medium": 4}
    stored["recovery"]["resolved_within_min"] = 90
    body = from_storage(stored)  # sessions under it keep working; only a new PUT is refused
    assert body.thresholds["symptom.severe"].limits() == [("medium", 4)]


def test_an_empty_body_is_rejected_listing_every_section(world: World) -> None:
    response = world.clinician.request("PUT", "/v1/protocol", json={})
    expect_problem(response, 422, "validation")
    sections = ["thresholds", "rise_from_baseline", "screening", "recovery"]
    assert sorted(error_locs(response)) == sorted(["body", s] for s in sections)
    assert current(world)["version"] == 1


def test_a_partial_body_is_rejected_listing_what_it_lacks(world: World) -> None:
    response = world.clinician.request("PUT", "/v1/protocol", json=FAST_HEART)
    expect_problem(response, 422, "validation")
    missing = [["body", "thresholds", rule] for rule in DEFAULTS if rule != "hr.high"]
    missing += [["body", s] for s in ("rise_from_baseline", "screening", "recovery")]
    assert sorted(error_locs(response)) == sorted(missing)
    assert current(world)["version"] == 1


def test_a_level_the_rule_lacks_never_takes_effect(world: World) -> None:
    body = revised(world, _rule("rr.high", high=40))
    expect_problem(world.clinician.request("PUT", "/v1/protocol", json=body), 422, "validation")
    session = started(world)
    assert session["protocol_version"] == 1
    alert = alert_of(world.reading(session, measured_at=ago(1), respiratory_rate=45), "rr.high")
    assert alert is not None and (alert["severity"], alert["threshold"]) == ("medium", 25)


def test_a_version_stored_before_levels_were_checked_reads_in_the_fixed_shape() -> None:
    # Such a row held every level of every rule, null where the rule lacked it, and could give a
    # rule a level PROTOCOL.md does not (rr.high at high) or leave out one it has.
    old: Json = {
        "thresholds": {
            rule: dict(zip(LEVELS, expected, strict=True)) for rule, expected in DEFAULTS.items()
        },
        "rise_from_baseline": {"systolic": 40, "diastolic": 25},
        "screening": {"systolic_max": 150, "diastolic_max": 95},
    }
    old["thresholds"]["rr.high"]["high"] = 40
    old["thresholds"]["hr.high"] = {"low": None, "medium": 100, "high": None}
    body = from_storage(old)
    assert body.thresholds["rr.high"].limits() == [("medium", 25)]
    assert body.thresholds["hr.high"].limits() == [("medium", 100), ("high", 130)]
    assert body.thresholds["vitals.overdue"].limits() == [("low", 15), ("medium", 30)]
    assert (body.screening.systolic_max, body.recovery.min_observation_min) == (150, 30)


def test_a_started_session_keeps_its_version_and_later_ones_follow_the_new(
    world: World,
) -> None:
    before = started(world)
    scheduled = world.session()  # created before the change, follows it until it starts
    assert (before["protocol_version"], scheduled["protocol_version"]) == (1, 1)
    put(world, revised(world, FAST_HEART))
    assert world.nurse.get(f"/v1/sessions/{scheduled['id']}").json()["protocol_version"] == 2
    pre = world.reading(scheduled, measured_at=ago(4), systolic=124, diastolic=78, heart_rate=102)
    [raised_before_start] = [a for a in pre["alerts"] if a["rule"] == "hr.high"]
    assert (raised_before_start["threshold"], raised_before_start["protocol_version"]) == (100, 2)
    world.reading(scheduled, measured_at=ago(3), systolic=124, diastolic=78)
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
    put(world, revised(world, {"screening": {"systolic_max": 120, "diastolic_max": 80}}))
    session = world.session()
    world.reading(session, measured_at=ago(3), systolic=124, diastolic=78)
    response = world.nurse.post(f"/v1/sessions/{session['id']}/start", json={"at": ago(2)})
    body = expect_problem(response, 409, "screening-review-required")
    assert body["reasons"] == ["baseline_bp_above_limit"]


def test_time_rules_follow_the_sessions_protocol(world: World) -> None:
    before = started(world, 12)  # version 1: overdue from 15 minutes
    put(world, revised(world, _rule("vitals.overdue", low=10, medium=20)))
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
