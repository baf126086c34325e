"""Infusion sessions: creation, listing, transitions, their times, and the screening gate."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest

from tests.factories import World, ago, iso, parse_time, problem

ROUTES = ["iv", "im", "intranasal", "sublingual", "oral"]
SESSION_FIELDS = {
    "id", "patient_id", "status", "route", "planned_duration_min", "dose_mg_per_kg",
    "protocol_version", "baseline", "created_at", "started_at", "infusion_ended_at",
    "discharged_at", "aborted_at", "abort_reason", "screening_override",
}  # fmt: skip
BODIES: dict[str, dict[str, Any]] = {"start": {}, "end": {}, "abort": {"reason": "felt unwell"}}
STAMPS = {"start": "started_at", "end": "infusion_ended_at", "abort": "aborted_at"}
LEGAL = {
    ("scheduled", "start"): "in_progress", ("in_progress", "end"): "recovery",
    ("scheduled", "abort"): "aborted", ("in_progress", "abort"): "aborted",
    ("recovery", "abort"): "aborted",
}  # fmt: skip
STATES = ["scheduled", "in_progress", "recovery", "aborted"]
BY_STATUS = {
    "scheduled": ["scheduled"], "in_progress": ["in_progress"], "recovery": ["recovery"],
    "discharged": [], "aborted": ["aborted"], "active": ["in_progress", "recovery"], None: STATES,
}  # fmt: skip
ILLEGAL = [(s, a) for s in STATES for a in BODIES if (s, a) not in LEGAL]


def session_in(world: World, state: str) -> dict[str, Any]:
    """A session in ``state``; a scheduled one already has a normal baseline."""
    if state == "scheduled":
        return world.session(state="baseline")
    if state == "aborted":
        return world.transition(world.session(state="baseline"), "abort", reason="no show")
    return world.session(state=state)


def read(world: World, session: dict[str, Any]) -> dict[str, Any]:
    response = world.nurse.get(f"/v1/sessions/{session['id']}")
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def act(
    world: World, session: dict[str, Any], action: str, role: str = "nurse", **body: Any
) -> httpx.Response:
    return getattr(world, role).post(f"/v1/sessions/{session['id']}/{action}", json=body)


def scheduled_with_bp(
    world: World, systolic: int, diastolic: int, **patient: Any
) -> dict[str, Any]:
    session = world.session(patient_id=world.patient(**patient)["id"])
    world.reading(session, measured_at=ago(20), systolic=systolic, diastolic=diastolic)
    return session


def listed(world: World, role: str = "nurse", **params: Any) -> list[str]:
    response = getattr(world, role).get("/v1/sessions", params={"limit": 500, **params})
    assert response.status_code == 200, response.text
    return [s["id"] for s in response.json()["items"]]


# --- creating and listing ------------------------------------------------------------------------


def test_a_new_session_is_scheduled_with_every_documented_field(world: World) -> None:
    patient = world.patient()
    body = {"patient_id": patient["id"], "route": "iv", "planned_duration_min": 40}
    response = world.nurse.post("/v1/sessions", json={**body, "dose_mg_per_kg": 0.5})

    assert response.status_code == 201, response.text
    session = response.json()
    assert set(session) >= SESSION_FIELDS
    assert session["status"] == "scheduled"
    assert (session["patient_id"], session["route"]) == (patient["id"], "iv")
    assert (session["planned_duration_min"], session["dose_mg_per_kg"]) == (40, 0.5)
    assert isinstance(session["protocol_version"], int)
    parse_time(session["created_at"])
    for name in ("baseline", "started_at", "infusion_ended_at", "discharged_at", "aborted_at"):
        assert session[name] is None, name
    assert session["abort_reason"] is None and session["screening_override"] is None
    assert read(world, session) == session


@pytest.mark.parametrize("route", ROUTES)
def test_every_route_is_accepted(world: World, route: str) -> None:
    assert world.session(route=route)["route"] == route


@pytest.mark.parametrize(
    "change",
    [{"route": "rectal"}, {"route": None}, {"planned_duration_min": 0}, {"colour": "red"}],
    ids=["unknown-route", "no-route", "zero-duration", "unknown-field"],
)
def test_an_invalid_session_is_rejected(world: World, change: dict[str, Any]) -> None:
    patient = world.patient()
    body = {"patient_id": patient["id"], "route": "iv", **change}
    body = {key: value for key, value in body.items() if value is not None}
    problem(world.nurse.post("/v1/sessions", json=body), 422, "validation")
    assert listed(world, patient_id=patient["id"]) == []


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("dose_mg_per_kg", True),
        ("dose_mg_per_kg", False),
        ("dose_mg_per_kg", "0.5"),
        ("dose_mg_per_kg", "1"),
        ("planned_duration_min", True),
        ("planned_duration_min", "40"),
        ("planned_duration_min", 40.5),
    ],
)
def test_a_number_sent_as_a_boolean_or_text_is_rejected(
    world: World, field: str, value: Any
) -> None:
    patient = world.patient()
    body = {"patient_id": patient["id"], "route": "iv", field: value}
    response = world.nurse.post("/v1/sessions", json=body)
    found = problem(response, 422, "validation")
    assert [e["loc"] for e in found["errors"]] == [["body", field]], found
    assert listed(world, patient_id=patient["id"]) == []


def test_a_whole_number_dose_is_a_dose(world: World) -> None:
    body = {"patient_id": world.patient()["id"], "route": "iv", "dose_mg_per_kg": 1}
    response = world.nurse.post("/v1/sessions", json=body)
    assert response.status_code == 201, response.text
    assert response.json()["dose_mg_per_kg"] == 1.0


@pytest.mark.parametrize("whose", ["unknown", "other-clinic"])
def test_a_session_for_a_patient_not_of_the_clinic_is_not_found(world: World, whose: str) -> None:
    theirs = world.patient(world.other_nurse)["id"] if whose != "unknown" else str(uuid.uuid4())
    response = world.nurse.post("/v1/sessions", json={"patient_id": theirs, "route": "iv"})
    problem(response, 404, "not-found")
    assert listed(world, "other_nurse") == listed(world) == []


@pytest.mark.parametrize("status", list(BY_STATUS))
def test_sessions_are_listed_by_status(world: World, status: str | None) -> None:
    expected = BY_STATUS[status]
    sessions = {state: session_in(world, state)["id"] for state in STATES}
    world.session(world.other_nurse, state="in_progress")
    found = listed(world, **({"status": status} if status else {}))
    assert sorted(found) == sorted(sessions[state] for state in expected)


def test_an_unknown_status_filter_is_rejected(world: World) -> None:
    problem(world.nurse.get("/v1/sessions", params={"status": "paused"}), 422, "validation")


def test_sessions_are_listed_by_patient(world: World) -> None:
    patient = world.patient()
    mine = [world.session(patient_id=patient["id"])["id"] for _ in range(2)]
    world.session()
    assert listed(world, patient_id=patient["id"]) == mine


def test_paging_with_the_cursor_walks_every_session_once(world: World) -> None:
    patient = world.patient()
    created = [world.session(patient_id=patient["id"])["id"] for _ in range(5)]
    seen: list[str] = []
    cursor: str | None = None
    for _ in range(10):
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = world.nurse.get("/v1/sessions", params=params).json()
        assert len(page["items"]) <= 2
        seen += [s["id"] for s in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break

    assert cursor is None
    assert len(seen) == len(set(seen)) == 5
    assert seen == listed(world) and set(seen) == set(created)


# --- transitions and their times -----------------------------------------------------------------


@pytest.mark.parametrize(("state", "action"), list(LEGAL), ids="-".join)
def test_a_legal_transition_moves_the_session(world: World, state: str, action: str) -> None:
    session = session_in(world, state)
    response = act(world, session, action, **BODIES[action])
    assert response.status_code == 200, response.text
    assert response.json()["status"] == LEGAL[(state, action)]
    stored = read(world, session)
    assert stored["status"] == LEGAL[(state, action)]
    parse_time(stored[STAMPS[action]])


@pytest.mark.parametrize(("state", "action"), ILLEGAL, ids="-".join)
def test_an_illegal_transition_is_refused(world: World, state: str, action: str) -> None:
    session = session_in(world, state)
    before = read(world, session)
    problem(act(world, session, action, **BODIES[action]), 409, "invalid-transition")
    assert read(world, session) == before


def test_a_session_just_into_recovery_is_not_discharged(world: World) -> None:
    session = world.session(state="recovery")  # infusion ended 5 minutes ago
    response = act(world, session, "discharge")
    assert not response.is_success, response.text  # not routed yet (404/405) or blocked (409)
    stored = read(world, session)
    assert (stored["status"], stored["discharged_at"]) == ("recovery", None)


def test_another_clinics_session_is_not_found(world: World) -> None:
    theirs = world.session(world.other_nurse, state="in_progress")
    problem(world.nurse.get(f"/v1/sessions/{theirs['id']}"), 404, "not-found")
    for action in ("end", "abort"):
        problem(act(world, theirs, action, **BODIES[action]), 404, "not-found")
    assert world.other_nurse.get(f"/v1/sessions/{theirs['id']}").json()["status"] == "in_progress"


def test_a_transition_without_at_happens_now(world: World) -> None:
    session = world.session(state="in_progress")
    before = datetime.now(UTC)
    response = world.nurse.post(f"/v1/sessions/{session['id']}/end")
    assert response.status_code == 200, response.text
    assert before <= parse_time(response.json()["infusion_ended_at"]) <= datetime.now(UTC)


def test_an_explicit_at_is_stored_and_answered_in_utc(world: World) -> None:
    session = world.session(state="baseline")
    moment = datetime.now(UTC) - timedelta(minutes=10)
    sent = moment.astimezone(timezone(timedelta(hours=1))).isoformat()
    started = act(world, session, "start", at=sent)
    assert started.status_code == 200, started.text
    assert started.json()["started_at"] == iso(moment)
    assert read(world, session)["started_at"] == iso(moment)


@pytest.mark.parametrize("seconds", [5, 90])
def test_a_transition_at_any_moment_in_the_future_is_rejected(world: World, seconds: int) -> None:
    session = world.session(state="in_progress")
    before = read(world, session)
    at = iso(datetime.now(UTC) + timedelta(seconds=seconds))
    problem(act(world, session, "end", at=at), 422, "validation")
    assert read(world, session) == before
    ended = act(world, session, "end")  # the default, now, is never in the future
    assert ended.status_code == 200, ended.text


@pytest.mark.parametrize("action", ["start", "end", "abort"])
@pytest.mark.parametrize("when", ["future", "naive"])
def test_an_at_in_the_future_or_without_offset_is_rejected(
    world: World, action: str, when: str
) -> None:
    session = session_in(world, "in_progress" if action == "end" else "scheduled")
    before = read(world, session)
    moment = datetime.now(UTC) + timedelta(minutes=5 if when == "future" else -1)
    at = iso(moment) if when == "future" else moment.replace(tzinfo=None).isoformat()
    problem(act(world, session, action, at=at, **BODIES[action]), 422, "validation")
    assert read(world, session) == before


@pytest.mark.parametrize(("state", "action"), [("in_progress", "end"), ("recovery", "abort")])
def test_an_at_before_the_previous_transition_is_rejected(
    world: World, state: str, action: str
) -> None:
    session = session_in(world, state)  # started 25 min ago, ended 5 min ago
    before = read(world, session)
    earlier = ago(26) if state == "in_progress" else ago(6)
    problem(act(world, session, action, at=earlier, **BODIES[action]), 409, "invalid-transition")
    assert read(world, session) == before


def test_a_start_may_be_dated_up_to_a_day_before_the_session_was_created(world: World) -> None:
    session = world.session()
    world.reading(session, measured_at=ago(23 * 60 + 50), systolic=118, diastolic=76)
    problem(act(world, session, "start", at=ago(24 * 60 + 10)), 422, "validation")
    at = ago(23 * 60 + 40)
    started = act(world, session, "start", at=at)
    assert started.status_code == 200, started.text
    assert started.json()["started_at"] == at
    assert started.json()["baseline"]["systolic"] == 118


# --- pre-infusion screening ----------------------------------------------------------------------


@pytest.mark.parametrize("readings", [[], [{"heart_rate": 70}]], ids=["none", "heart-rate-only"])
def test_a_start_without_a_bp_baseline_needs_review(world: World, readings: list) -> None:
    session = world.session()
    for fields in readings:
        world.reading(session, measured_at=ago(10), **fields)
    body = problem(act(world, session, "start"), 409, "screening-review-required")
    assert body["reasons"] and isinstance(body["reasons"], list)
    assert read(world, session)["baseline"] is None
    assert read(world, session)["status"] == "scheduled"


@pytest.mark.parametrize(
    ("systolic", "diastolic", "needs_review"),
    [(120, 80, False), (140, 90, False), (141, 80, True), (120, 91, True), (185, 112, True)],
)
def test_a_baseline_above_140_over_90_needs_review(
    world: World, systolic: int, diastolic: int, needs_review: bool
) -> None:
    session = scheduled_with_bp(world, systolic, diastolic)

    response = act(world, session, "start")

    if needs_review:
        assert problem(response, 409, "screening-review-required")["reasons"]
        clinician = act(world, session, "start", "clinician")  # a clinician must override too
        problem(clinician, 409, "screening-review-required")
        assert read(world, session)["status"] == "scheduled"
    else:
        assert response.status_code == 200, response.text
        assert response.json()["status"] == "in_progress"
        assert response.json()["screening_override"] is None


@pytest.mark.parametrize("when", ["at-registration", "patched-later"])
def test_a_patient_with_a_contraindication_needs_review(world: World, when: str) -> None:
    initial = ["stroke_history"] if when == "at-registration" else []
    session = scheduled_with_bp(world, 118, 76, contraindications=initial)
    url = f"/v1/patients/{session['patient_id']}"
    assert world.nurse.patch(url, json={"contraindications": ["stroke_history"]}).is_success
    body = problem(act(world, session, "start"), 409, "screening-review-required")
    assert any("stroke_history" in reason for reason in body["reasons"])


def test_a_clinicians_override_starts_and_is_recorded(world: World) -> None:
    session = scheduled_with_bp(world, 150, 95, contraindications=["aneurysm"])
    reason = "Reviewed with the patient's cardiologist; BP acceptable today"
    started = act(world, session, "start", "clinician", override_reason=reason)
    assert started.status_code == 200, started.text
    stored = read(world, session)
    assert stored["status"] == "in_progress"
    assert stored["screening_override"]["reason"] == reason


@pytest.mark.parametrize(("systolic", "diastolic"), [(150, 95), (120, 80)])
def test_a_nurse_may_not_send_an_override(world: World, systolic: int, diastolic: int) -> None:
    session = scheduled_with_bp(world, systolic, diastolic)
    problem(act(world, session, "start", override_reason="I checked"), 403, "forbidden")
    assert read(world, session)["status"] == "scheduled"


@pytest.mark.parametrize(("older", "latest", "needs_review"), [(150, 122, False), (122, 150, True)])
def test_the_baseline_so_far_is_the_latest_bp_reading(
    world: World, older: int, latest: int, needs_review: bool
) -> None:
    session = world.session()
    world.reading(session, measured_at=ago(40), systolic=older, diastolic=79)
    world.reading(session, measured_at=ago(30), systolic=latest, diastolic=79, heart_rate=66)
    world.reading(session, measured_at=ago(20), heart_rate=90)
    world.reading(session, measured_at=ago(45), systolic=older, diastolic=79)
    baseline = read(world, session)["baseline"]
    assert (baseline["systolic"], baseline["diastolic"], baseline["heart_rate"]) == (latest, 79, 66)
    assert (act(world, session, "start").status_code == 409) is needs_review


def test_a_bp_entered_in_error_drops_out_of_the_baseline(world: World) -> None:
    session = world.session()
    world.reading(session, measured_at=ago(40), systolic=122, diastolic=79)
    wrong = world.reading(session, measured_at=ago(30), systolic=210, diastolic=120)
    response = world.nurse.post(
        f"/v1/readings/{wrong['id']}/entered-in-error", json={"reason": "cuff on wrong arm"}
    )
    assert response.status_code == 200, response.text
    assert read(world, session)["baseline"]["systolic"] == 122
    assert act(world, session, "start").status_code == 200


def test_the_baseline_is_measured_before_the_start_time(world: World) -> None:
    session = world.session()
    first = ago(30)
    world.reading(session, measured_at=first, systolic=124, diastolic=78)
    world.reading(session, measured_at=ago(10), systolic=170, diastolic=100)
    started = act(world, session, "start", at=ago(20))
    assert started.status_code == 200, started.text
    assert started.json()["baseline"]["measured_at"] == first
    assert read(world, session)["baseline"]["systolic"] == 124


def test_a_reading_after_an_explicit_start_time_cannot_be_its_baseline(world: World) -> None:
    session = world.session()
    world.reading(session, measured_at=ago(10), systolic=124, diastolic=78)
    problem(act(world, session, "start", at=ago(20)), 409, "screening-review-required")
    assert act(world, session, "start").status_code == 200  # now the reading precedes it


def test_a_pressure_measured_ahead_of_the_servers_clock_is_screened_too(world: World) -> None:
    """A tablet whose clock runs ahead posts 170/100 before the start; the session shows it as
    the baseline, so starting now (before its bedside time) still needs a clinician's review."""
    session = world.session()
    world.reading(session, measured_at=ago(5), systolic=120, diastolic=80)
    world.reading(session, measured_at=ago(-1.5), systolic=170, diastolic=100)
    assert read(world, session)["baseline"]["systolic"] == 170
    body = problem(act(world, session, "start"), 409, "screening-review-required")
    assert body["reasons"] == ["baseline_bp_above_limit"]
    started = act(world, session, "start", "clinician", override_reason="rechecked: 128/82")
    assert started.status_code == 200, started.text
    assert started.json()["screening_override"]["reasons"] == ["baseline_bp_above_limit"]
    assert started.json()["baseline"]["systolic"] == 120  # the baseline is before the start


def test_a_start_before_the_only_pressure_names_when_it_was_measured(world: World) -> None:
    session = world.session()
    world.reading(session, measured_at=ago(-1.5), systolic=120, diastolic=80)
    body = problem(act(world, session, "start"), 409, "screening-review-required")
    assert body["reasons"] == ["no_baseline"] and "measured after the start" in body["detail"]


def test_readings_after_the_start_do_not_change_the_baseline(world: World) -> None:
    session = world.session(state="in_progress")  # baseline 124/78 30 min ago, started 25 min ago
    world.reading(session, measured_at=ago(10), systolic=165, diastolic=101)
    baseline = read(world, session)["baseline"]
    assert (baseline["systolic"], baseline["diastolic"]) == (124, 78)


def test_a_late_entry_measured_before_the_start_becomes_the_baseline(world: World) -> None:
    session = world.session(state="in_progress")
    world.reading(session, measured_at=ago(27), systolic=132, diastolic=84)
    assert read(world, session)["baseline"]["systolic"] == 132


# --- abort and roles -----------------------------------------------------------------------------


@pytest.mark.parametrize("body", [None, {}, {"reason": ""}, {"reason": "   "}])
def test_an_abort_needs_a_reason(world: World, body: dict[str, Any] | None) -> None:
    session = world.session(state="in_progress")
    response = world.nurse.post(f"/v1/sessions/{session['id']}/abort", json=body)
    problem(response, 422, "validation")
    assert read(world, session)["status"] == "in_progress"


def test_an_abort_stores_its_reason_and_time(world: World) -> None:
    session = world.session(state="recovery")
    at = ago(2)
    aborted = act(world, session, "abort", reason="Patient left against advice", at=at)
    assert aborted.status_code == 200, aborted.text
    stored = read(world, session)
    assert (stored["status"], stored["aborted_at"]) == ("aborted", at)
    assert stored["abort_reason"] == "Patient left against advice"
    assert stored["started_at"] == session["started_at"]


@pytest.mark.parametrize("role", ["dashboard", "ehr"])
def test_read_only_roles_may_read_sessions_but_not_change_them(world: World, role: str) -> None:
    session = world.session(state="in_progress")
    scheduled = world.session(state="baseline")
    caller = getattr(world, role)

    assert caller.get(f"/v1/sessions/{session['id']}").json() == read(world, session)
    assert listed(world, role, status="active") == [session["id"]]
    created = caller.post("/v1/sessions", json={"patient_id": session["patient_id"], "route": "iv"})
    problem(created, 403, "forbidden")
    problem(act(world, scheduled, "start", role), 403, "forbidden")
    for action in ("end", "abort"):
        problem(act(world, session, action, role, **BODIES[action]), 403, "forbidden")
    assert read(world, session)["status"] == "in_progress"
    assert read(world, scheduled)["status"] == "scheduled"
    assert len(listed(world)) == 2
