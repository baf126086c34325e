"""Observations: each kind with its own fields, ranges, notes, filters, retries, corrections."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from tests.factories import (
    Caller,
    World,
    ago,
    error_locs,
    observations,
    problem,
    shifted,
)

SYMPTOMS = [
    "nausea",
    "vomiting",
    "dizziness",
    "headache",
    "blurred_vision",
    "anxiety",
    "agitation",
    "hallucinations",
    "other",
]
# The fields each kind needs, at values that show no side effect.
NEEDS: dict[str, dict[str, int]] = {
    **{kind: {"severity": 0} for kind in SYMPTOMS},
    "dissociation": {"severity": 0},
    "sedation": {"moaas": 5},
}


def url(session: dict[str, Any]) -> str:
    return f"/v1/sessions/{session['id']}/observations"


def post(world: World, session: dict[str, Any], **fields: Any) -> httpx.Response:
    return world.nurse.post(url(session), json={"measured_at": ago(1), **fields})


def create(
    world: World, session: dict[str, Any], kind: str = "nausea", **fields: Any
) -> dict[str, Any]:
    """A stored observation of ``kind``, with the fields it needs unless given."""
    response = post(world, session, kind=kind, **{**NEEDS[kind], **fields})
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


@pytest.mark.parametrize("kind", SYMPTOMS)
def test_symptom_is_stored_with_its_severity(world: World, kind: str) -> None:
    session = world.session()
    response = post(world, session, kind=kind, severity=2, note="patient reports it")
    assert response.status_code == 201, response.text
    [stored] = observations(world, session)
    assert stored == {key: response.json()[key] for key in stored}  # the POST adds its alerts
    assert (stored["kind"], stored["severity"], stored["note"]) == (kind, 2, "patient reports it")
    assert (stored["moaas"], stored["cadss"], stored["status"]) == (None, None, "final")


def test_sedation_is_stored_with_its_moaas(world: World) -> None:
    session = world.session()
    response = post(world, session, kind="sedation", moaas=3)
    assert response.status_code == 201, response.text
    [stored] = observations(world, session)
    assert (stored["kind"], stored["moaas"], stored["severity"]) == ("sedation", 3, None)


@pytest.mark.parametrize("cadss", [None, 12], ids=["without_cadss", "with_cadss"])
def test_dissociation_is_stored_with_severity_and_optional_cadss(
    world: World, cadss: int | None
) -> None:
    session = world.session()
    extra = {} if cadss is None else {"cadss": cadss}
    response = post(world, session, kind="dissociation", severity=1, **extra)
    assert response.status_code == 201, response.text
    [stored] = observations(world, session)
    assert (stored["kind"], stored["severity"], stored["cadss"]) == ("dissociation", 1, cadss)


# PROTOCOL.md "Plausible ranges": (kind, field, lowest, highest).
RANGES = [(kind, "severity", 0, 3) for kind in [*SYMPTOMS, "dissociation"]]
RANGES += [("sedation", "moaas", 0, 5), ("dissociation", "cadss", 0, 92)]
ACCEPTED = [(kind, field, v) for kind, field, lo, hi in RANGES for v in (lo, hi)]
REJECTED = [(kind, field, v) for kind, field, lo, hi in RANGES for v in (lo - 1, hi + 1)]


@pytest.mark.parametrize(("kind", "field", "value"), ACCEPTED)
def test_value_just_inside_range_is_stored(world: World, kind: str, field: str, value: int) -> None:
    session = world.session()
    response = post(world, session, kind=kind, **{**NEEDS[kind], field: value})
    assert response.status_code == 201, response.text
    [stored] = observations(world, session)
    assert (stored["id"], stored[field]) == (response.json()["id"], value)


@pytest.mark.parametrize(("kind", "field", "value"), REJECTED)
def test_value_just_outside_range_is_rejected_and_nothing_stored(
    world: World, kind: str, field: str, value: int
) -> None:
    session = world.session()
    create(world, session, measured_at=ago(10))
    before = observations(world, session)
    response = post(world, session, kind=kind, **{**NEEDS[kind], field: value})
    problem(response, 422, "validation")
    assert any(field in loc for loc in error_locs(response)), response.json()["errors"]
    assert observations(world, session) == before


MALFORMED = [
    *(
        pytest.param(kind, {field: bad}, field, id=f"{field}_as_{type(bad).__name__}")
        for kind, field in [
            ("nausea", "severity"),
            ("sedation", "moaas"),
            ("dissociation", "cadss"),
        ]
        for bad in (1.5, "1", True)
    ),
    pytest.param("nausea", {"severity": None}, "severity", id="symptom_without_severity"),
    pytest.param("dissociation", {"severity": None}, "severity", id="dissociation_no_severity"),
    pytest.param("sedation", {"moaas": None}, "moaas", id="sedation_without_moaas"),
    pytest.param("nausea", {"moaas": 4}, "moaas", id="symptom_with_moaas"),
    pytest.param("vomiting", {"cadss": 10}, "cadss", id="symptom_with_cadss"),
    pytest.param("sedation", {"severity": 1}, "severity", id="sedation_with_severity"),
    pytest.param("sedation", {"cadss": 10}, "cadss", id="sedation_with_cadss"),
    pytest.param("dissociation", {"moaas": 4}, "moaas", id="dissociation_with_moaas"),
    pytest.param("nausea", {"pulse": 70}, "pulse", id="unknown_field"),
    pytest.param("nausea", {"note": "x" * 2001}, "note", id="note_of_2001_chars"),
    pytest.param("nausea", {"measured_at": "2026-01-05T10:00:00"}, "measured_at", id="naive_time"),
    pytest.param("itching", {"severity": 1}, None, id="unknown_kind"),
    pytest.param(None, {"severity": 1}, None, id="no_kind"),
]


@pytest.mark.parametrize(("kind", "fields", "named"), MALFORMED)
def test_malformed_observation_is_rejected_and_nothing_stored(
    world: World, kind: str | None, fields: dict[str, Any], named: str | None
) -> None:
    session = world.session()
    body = {**NEEDS.get(kind or "", {}), **({} if kind is None else {"kind": kind}), **fields}
    response = post(world, session, **{k: v for k, v in body.items() if v is not None})
    problem(response, 422, "validation")
    if named is not None:
        assert any(named in loc for loc in error_locs(response)), response.json()["errors"]
    assert observations(world, session) == []


def test_note_of_2000_characters_is_stored_whole(world: World) -> None:
    session = world.session()
    note = "é" + "x" * 1999
    create(world, session, note=note)
    assert observations(world, session)[0]["note"] == note


@pytest.mark.parametrize(
    ("anchor", "minutes", "accepted"),
    [
        pytest.param("now", 3, False, id="3_min_ahead_rejected"),
        pytest.param("now", 1, True, id="1_min_ahead_accepted"),
        pytest.param("created_at", -(24 * 60 + 1), False, id="24h_1min_before_creation_rejected"),
        pytest.param("created_at", -(24 * 60 - 1), True, id="23h_59min_before_creation_accepted"),
    ],
)
def test_measured_at_lies_between_24h_before_creation_and_2_min_ahead(
    world: World, anchor: str, minutes: int, accepted: bool
) -> None:
    session = world.session()
    measured_at = ago(-minutes) if anchor == "now" else shifted(session[anchor], minutes)
    response = post(world, session, measured_at=measured_at, kind="headache", severity=1)
    if accepted:
        assert response.status_code == 201, response.text
        assert len(observations(world, session)) == 1
    else:
        problem(response, 422, "validation")
        assert ["body", "measured_at"] in error_locs(response)
        assert observations(world, session) == []


@pytest.mark.parametrize(
    ("offset", "phase"), [(-1, "intra"), (0, "post"), (1, "post")], ids=["before", "at", "after"]
)
def test_phase_is_judged_against_the_infusion_end(world: World, offset: int, phase: str) -> None:
    session = world.session(state="recovery")
    measured_at = shifted(session["infusion_ended_at"], offset)
    created = create(world, session, "dissociation", severity=1, measured_at=measured_at)
    assert created["phase"] == phase
    assert observations(world, session)[0]["phase"] == phase


@pytest.mark.parametrize(
    ("offset", "accepted"),
    [
        pytest.param(-2, True, id="before_abort_is_a_late_entry"),
        pytest.param(0, False, id="at_abort_is_409"),
        pytest.param(1, False, id="after_abort_is_409"),
    ],
)
def test_aborted_session_takes_only_observations_measured_before_the_abort(
    world: World, offset: int, accepted: bool
) -> None:
    session = world.session(state="in_progress")
    aborted = world.transition(session, "abort", at=ago(10), reason="patient asked to stop")
    measured_at = shifted(aborted["aborted_at"], offset)
    response = post(world, session, measured_at=measured_at, kind="sedation", moaas=4)
    if accepted:
        assert response.status_code == 201, response.text
        [listed] = observations(world, session)
        assert listed == {key: response.json()[key] for key in listed}
    else:
        problem(response, 409, "conflict")
        assert observations(world, session) == []


def test_kind_filter_lists_only_that_kind_in_time_order(world: World) -> None:
    session = world.session()
    late = create(world, session, kind="nausea", severity=1, measured_at=ago(2))
    create(world, session, kind="sedation", moaas=4, measured_at=ago(3))
    early = create(world, session, kind="nausea", severity=2, measured_at=ago(4))
    create(world, session, kind="dissociation", severity=0, measured_at=ago(5))
    assert [o["id"] for o in observations(world, session, kind="nausea")] == [
        early["id"],
        late["id"],
    ]
    assert [o["kind"] for o in observations(world, session)] == [
        "dissociation",
        "nausea",
        "sedation",
        "nausea",
    ]
    assert observations(world, session, kind="vomiting") == []


def test_kind_filter_with_an_unknown_kind_is_rejected(world: World) -> None:
    response = world.nurse.get(url(world.session()), params={"kind": "itching"})
    problem(response, 422, "validation")
    assert ["query", "kind"] in error_locs(response)


def test_cursor_pagination_walks_every_observation_exactly_once(world: World) -> None:
    session = world.session()
    tie = ago(20)
    created = [create(world, session, measured_at=tie)["id"] for _ in range(3)]
    created += [create(world, session, measured_at=ago(m))["id"] for m in (5, 30)]
    seen: list[str] = []
    params: dict[str, Any] = {"limit": 2}
    while True:
        page = world.nurse.get(url(session), params=params).json()
        seen += [o["id"] for o in page["items"]]
        if page["next_cursor"] is None:
            break
        params["cursor"] = page["next_cursor"]
    assert seen == [created[4], *sorted(created[:3]), created[3]]


def enter_in_error(
    world: World, observation_id: str, reason: str, caller: Caller | None = None
) -> httpx.Response:
    return (caller or world.nurse).post(
        f"/v1/observations/{observation_id}/entered-in-error", json={"reason": reason}
    )


def test_entered_in_error_observation_stays_flagged_and_leaves_the_default_list(
    world: World,
) -> None:
    session = world.session()
    kept = create(world, session, measured_at=ago(5))
    wrong = create(world, session, kind="vomiting", severity=2, measured_at=ago(4))
    response = enter_in_error(world, wrong["id"], "wrong patient")
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "entered-in-error"
    assert response.json()["entered_in_error_reason"] == "wrong patient"
    assert response.json()["entered_in_error_at"].endswith("Z")
    assert [o["id"] for o in observations(world, session)] == [kept["id"]]
    assert observations(world, session, kind="vomiting") == []
    everything = observations(world, session, include_entered_in_error="true")
    assert [(o["id"], o["status"], o["entered_in_error_reason"]) for o in everything] == [
        (kept["id"], "final", None),
        (wrong["id"], "entered-in-error", "wrong patient"),
    ]


def test_repeated_entered_in_error_keeps_the_first_reason(world: World) -> None:
    created = create(world, world.session())
    first = enter_in_error(world, created["id"], "wrong patient")
    again = enter_in_error(world, created["id"], "another reason")
    assert again.status_code == 200, again.text
    assert again.json()["entered_in_error_reason"] == "wrong patient"
    assert again.json()["entered_in_error_at"] == first.json()["entered_in_error_at"]


@pytest.mark.parametrize(
    "body", [{}, {"reason": ""}, {"reason": "   "}], ids=["none", "empty", "blank"]
)
def test_entered_in_error_needs_a_reason(world: World, body: dict[str, str]) -> None:
    session = world.session()
    created = create(world, session)
    response = world.nurse.post(f"/v1/observations/{created['id']}/entered-in-error", json=body)
    problem(response, 422, "validation")
    assert observations(world, session)[0]["status"] == "final"


def test_entered_in_error_of_an_unknown_observation_is_404(world: World) -> None:
    problem(enter_in_error(world, str(uuid.uuid4()), "typo"), 404, "not-found")


@pytest.mark.parametrize(
    ("role", "status", "slug"),
    [("other_nurse", 404, "not-found"), ("dashboard", 403, "forbidden"), ("ehr", 403, "forbidden")],
)
def test_only_own_clinic_bedside_roles_mark_observations_in_error(
    world: World, role: str, status: int, slug: str
) -> None:
    session = world.session()
    created = create(world, session)
    problem(enter_in_error(world, created["id"], "typo", world.callers[role]), status, slug)
    assert observations(world, session)[0]["status"] == "final"


RETRY_ID = "0c5e8f7a-3b2d-4c1e-9f8a-7b6c5d4e3f2a"


def retry(world: World, session: dict[str, Any], how: str, severity: int) -> httpx.Response:
    """Send an observation that a tablet retries, marked by a client id or an Idempotency-Key."""
    body = {"measured_at": session["created_at"], "kind": "dizziness", "severity": severity}
    if how == "client_id":
        return world.nurse.post(url(session), json={**body, "id": RETRY_ID})
    return world.nurse.post(url(session), json=body, headers={"Idempotency-Key": "tablet-3-9"})


@pytest.mark.parametrize("how", ["client_id", "idempotency_key"])
def test_retry_with_the_same_body_returns_the_original_answer_and_stores_once(
    world: World, how: str
) -> None:
    session = world.session()
    first, replay = retry(world, session, how, 2), retry(world, session, how, 2)
    assert first.status_code == replay.status_code == 201
    assert replay.json() == first.json()
    if how == "client_id":
        assert first.json()["id"] == RETRY_ID
    assert [o["id"] for o in observations(world, session)] == [first.json()["id"]]


@pytest.mark.parametrize("how", ["client_id", "idempotency_key"])
def test_retry_with_another_body_is_idempotency_mismatch(world: World, how: str) -> None:
    session = world.session()
    assert retry(world, session, how, 2).status_code == 201
    problem(retry(world, session, how, 3), 422, "idempotency-mismatch")
    assert [o["severity"] for o in observations(world, session)] == [2]


@pytest.mark.parametrize("role", ["dashboard", "ehr"])
def test_read_only_roles_may_not_post_observations(world: World, role: str) -> None:
    session = world.session()
    body = {"measured_at": ago(1), "kind": "nausea", "severity": 1}
    problem(world.callers[role].post(url(session), json=body), 403, "forbidden")
    assert observations(world, session) == []


def test_ehr_may_list_observations(world: World) -> None:
    session = world.session()
    created = create(world, session)
    assert [o["id"] for o in observations(world, session, world.ehr)] == [created["id"]]


def test_sessions_of_another_clinic_or_none_are_404(world: World) -> None:
    session = world.session()
    body = {"measured_at": ago(1), "kind": "nausea", "severity": 1}
    problem(world.other_nurse.post(url(session), json=body), 404, "not-found")
    problem(world.other_nurse.get(url(session)), 404, "not-found")
    problem(world.nurse.post(url({"id": uuid.uuid4()}), json=body), 404, "not-found")
    assert observations(world, session) == []
