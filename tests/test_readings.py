"""Readings: plausible ranges, bedside timing, phases, batches, retries, corrections, listing."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest

from tests.factories import Caller, World, ago, error_locs, problem, shifted


def url(session: dict[str, Any]) -> str:
    return f"/v1/sessions/{session['id']}/readings"


def post(world: World, session: dict[str, Any], **fields: Any) -> httpx.Response:
    return world.nurse.post(url(session), json={"measured_at": ago(1), **fields})


# PROTOCOL.md "Plausible ranges": field -> (lowest, highest, step, fields the reading needs).
RANGES: dict[str, tuple[Any, Any, Any, dict[str, int]]] = {
    "heart_rate": (0, 300, 1, {}),
    "systolic": (20, 300, 1, {"diastolic": 10}),
    "diastolic": (10, 200, 1, {"systolic": 250}),
    "spo2": (0, 100, 1, {}),
    "respiratory_rate": (0, 60, 1, {}),
    "temperature_c": (25.0, 45.0, 0.1, {}),
}
BELOW_SYSTOLIC = {"systolic": 120}  # diastolic must also lie below systolic
ACCEPTED = [(f, v, rest) for f, (lo, hi, _, rest) in RANGES.items() for v in (lo, hi)]
ACCEPTED += [("diastolic", 119, BELOW_SYSTOLIC)]
REJECTED = [
    (f, round(v, 1), rest) for f, (lo, hi, d, rest) in RANGES.items() for v in (lo - d, hi + d)
]
REJECTED += [("diastolic", 120, BELOW_SYSTOLIC)]


def _id(value: Any) -> str:
    if isinstance(value, dict):
        return "_".join(f"{k}_{x}" for k, x in value.items()) or "alone"
    return str(value)


@pytest.mark.parametrize(("field", "value", "rest"), ACCEPTED, ids=_id)
def test_value_just_inside_plausible_range_is_stored(
    world: World, field: str, value: Any, rest: dict[str, Any]
) -> None:
    session = world.session()
    response = post(world, session, **{field: value}, **rest)
    assert response.status_code == 201, response.text
    assert response.json()[field] == value
    [stored] = world.readings(session)
    assert (stored["id"], stored[field]) == (response.json()["id"], value)


@pytest.mark.parametrize(("field", "value", "rest"), REJECTED, ids=_id)
def test_value_just_outside_plausible_range_is_rejected_and_nothing_stored(
    world: World, field: str, value: Any, rest: dict[str, Any]
) -> None:
    session = world.session()
    world.reading(session, measured_at=ago(10))
    before = world.readings(session)
    response = post(world, session, **{field: value}, **rest)
    problem(response, 422, "validation")
    assert any(field in loc for loc in error_locs(response)), response.json()["errors"]
    assert world.readings(session) == before


INTEGER_VITALS = [("heart_rate", {}), ("systolic", {"diastolic": 60}), ("spo2", {})]
INTEGER_VITALS += [("diastolic", {"systolic": 120}), ("respiratory_rate", {})]
MALFORMED = [
    *(
        pytest.param({field: bad, **rest}, field, id=f"{field}_as_{type(bad).__name__}")
        for field, rest in INTEGER_VITALS
        for bad in (72.5, "72", True)
    ),
    pytest.param({"temperature_c": "37.0"}, "temperature_c", id="temperature_as_string"),
    pytest.param({"temperature_c": 36.55}, "temperature_c", id="temperature_two_decimals"),
    pytest.param({"temperature_c": 37.25}, "temperature_c", id="temperature_never_rounded"),
    pytest.param({"systolic": 120}, None, id="systolic_without_diastolic"),
    pytest.param({"diastolic": 80, "heart_rate": 70}, None, id="diastolic_without_systolic"),
    pytest.param({"on_oxygen": True, "source": "device"}, None, id="no_vital_at_all"),
    pytest.param({"consciousness": "drowsy"}, "consciousness", id="consciousness_drowsy"),
    pytest.param({"consciousness": "Alert"}, "consciousness", id="consciousness_capitalised"),
    pytest.param({"consciousness": "A"}, "consciousness", id="consciousness_letter"),
    pytest.param({"heart_rate": 70, "pulse": 70}, "pulse", id="unknown_field"),
    pytest.param(
        {"measured_at": "2026-01-05T10:00:00", "spo2": 97}, "measured_at", id="naive_time"
    ),
]


@pytest.mark.parametrize(("fields", "named"), MALFORMED)
def test_malformed_reading_is_rejected_and_nothing_stored(
    world: World, fields: dict[str, Any], named: str | None
) -> None:
    session = world.session()
    response = post(world, session, **fields)
    problem(response, 422, "validation")
    if named is not None:
        assert ["body", named] in error_locs(response)
    assert world.readings(session) == []


def test_consciousness_alone_is_a_valid_reading(world: World) -> None:
    session = world.session()
    assert post(world, session, consciousness="voice").status_code == 201
    [stored] = world.readings(session)
    assert (stored["consciousness"], stored["heart_rate"]) == ("voice", None)


def test_timestamps_with_an_offset_come_back_in_utc_with_z(world: World) -> None:
    session = world.session()
    moment = (datetime.now(UTC) - timedelta(minutes=3)).replace(microsecond=0)
    reading = world.reading(
        session, measured_at=moment.astimezone(timezone(timedelta(hours=1))).isoformat()
    )
    assert reading["measured_at"] == moment.isoformat().replace("+00:00", "Z")
    assert reading["recorded_at"].endswith("Z")
    assert world.readings(session)[0]["measured_at"] == reading["measured_at"]


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
    response = post(world, session, measured_at=measured_at, heart_rate=70)
    if accepted:
        assert response.status_code == 201, response.text
        assert len(world.readings(session)) == 1
    else:
        problem(response, 422, "validation")
        assert ["body", "measured_at"] in error_locs(response)
        assert world.readings(session) == []


@pytest.mark.parametrize(
    ("state", "moment", "offset", "phase"),
    [
        ("scheduled", "created_at", 0, "pre"),
        ("in_progress", "started_at", -1, "pre"),
        ("in_progress", "started_at", 0, "intra"),
        ("in_progress", "started_at", 1, "intra"),
        ("recovery", "infusion_ended_at", -1, "intra"),
        ("recovery", "infusion_ended_at", 0, "post"),
        ("recovery", "infusion_ended_at", 1, "post"),
    ],
)
def test_phase_follows_the_session_times(
    world: World, state: str, moment: str, offset: int, phase: str
) -> None:
    session = world.session(state=state)
    reading = world.reading(session, measured_at=shifted(session[moment], offset))
    assert reading["phase"] == phase
    assert {r["id"]: r["phase"] for r in world.readings(session)}[reading["id"]] == phase


@pytest.mark.parametrize(
    ("offset", "accepted"),
    [
        pytest.param(-2, True, id="before_abort_is_a_late_entry"),
        pytest.param(0, False, id="at_abort_is_409"),
        pytest.param(1, False, id="after_abort_is_409"),
    ],
)
def test_aborted_session_takes_only_readings_measured_before_the_abort(
    world: World, offset: int, accepted: bool
) -> None:
    session = world.session(state="in_progress")
    aborted = world.transition(session, "abort", at=ago(10), reason="patient asked to stop")
    before = world.readings(session)
    response = post(world, session, measured_at=shifted(aborted["aborted_at"], offset), spo2=97)
    if accepted:
        assert response.status_code == 201, response.text
        assert response.json()["phase"] == "intra"
        *earlier, listed = world.readings(session)
        assert earlier == before
        assert listed == {key: response.json()[key] for key in listed}
    else:
        problem(response, 409, "conflict")
        assert world.readings(session) == before


def test_a_batch_into_an_aborted_session_names_the_item_that_is_not_a_late_entry(
    world: World,
) -> None:
    session = world.session(state="in_progress")
    aborted = world.transition(session, "abort", at=ago(10), reason="patient asked to stop")
    before = world.readings(session)
    items = [{"measured_at": shifted(aborted["aborted_at"], offset), "heart_rate": 80}
             for offset in (-3, -2, 1)]  # fmt: skip
    url = f"/v1/sessions/{session['id']}/readings:batch"
    body = problem(world.nurse.post(url, json={"readings": items}), 409, "conflict")
    assert [e["loc"] for e in body["errors"]] == [["body", "readings", 2, "measured_at"]]
    assert world.readings(session) == before


def _batch(count: int) -> list[dict[str, Any]]:
    start = (datetime.now(UTC) - timedelta(hours=2)).replace(microsecond=0)  # whole seconds
    return [
        {"measured_at": (start + timedelta(seconds=i)).isoformat(), "heart_rate": 60 + i % 50}
        for i in range(count)
    ]


def post_batch(world: World, session: dict[str, Any], items: list[Any]) -> httpx.Response:
    return world.nurse.post(f"{url(session)}:batch", json={"readings": items})


def test_batch_stores_every_reading_in_order(world: World) -> None:
    session = world.session()
    response = post_batch(world, session, _batch(3))
    assert response.status_code == 201, response.text
    created = response.json()["items"]
    assert [r["heart_rate"] for r in created] == [60, 61, 62]
    assert [r["id"] for r in world.readings(session)] == [r["id"] for r in created]


@pytest.mark.parametrize(
    ("index", "field", "bad"),
    [(2, "heart_rate", 301), (0, "spo2", 101), (1, "measured_at", "future")],
)
def test_batch_with_one_bad_item_names_its_index_and_stores_nothing(
    world: World, index: int, field: str, bad: Any
) -> None:
    session = world.session()
    items = _batch(4)
    items[index][field] = ago(-10) if bad == "future" else bad
    response = post_batch(world, session, items)
    problem(response, 422, "validation")
    assert ["body", "readings", index, field] in error_locs(response)
    assert world.readings(session) == []


@pytest.mark.parametrize(("count", "accepted"), [(500, True), (501, False)])
def test_batch_holds_at_most_500_readings(world: World, count: int, accepted: bool) -> None:
    session = world.session()
    response = post_batch(world, session, _batch(count))
    assert response.status_code == (201 if accepted else 422), response.text
    assert len(world.readings(session, limit=500)) == (count if accepted else 0)


def test_batch_with_duplicate_ids_is_rejected_and_nothing_stored(world: World) -> None:
    session = world.session()
    items = _batch(3)
    items[0]["id"] = items[2]["id"] = str(uuid.uuid4())
    response = post_batch(world, session, items)
    problem(response, 422, "validation")
    assert any(loc[:2] == ["body", "readings"] and loc[-1] == "id" for loc in error_locs(response))
    assert world.readings(session) == []


def test_replayed_batch_with_client_ids_is_stored_once(world: World) -> None:
    session = world.session()
    items = [{**item, "id": str(uuid.uuid4())} for item in _batch(3)]
    first, replay = post_batch(world, session, items), post_batch(world, session, items)
    assert first.status_code == replay.status_code == 201
    assert replay.json() == first.json()
    assert [r["id"] for r in world.readings(session)] == [item["id"] for item in items]


def test_batch_reusing_a_stored_id_with_another_body_stores_nothing(world: World) -> None:
    session = world.session()
    taken = world.reading(session, id=str(uuid.uuid4()), measured_at=ago(1))
    items = _batch(3)
    items[1]["id"] = taken["id"]
    problem(post_batch(world, session, items), 422, "idempotency-mismatch")
    assert [r["id"] for r in world.readings(session)] == [taken["id"]]


RETRY_ID = "6f1d3c2a-9b7e-4d5f-8a1b-2c3d4e5f6a7b"


def retry(world: World, session: dict[str, Any], how: str, heart_rate: int) -> httpx.Response:
    """Send a reading that a tablet retries, marked by a client id or by an Idempotency-Key."""
    body = {"measured_at": session["created_at"], "heart_rate": heart_rate}
    if how == "client_id":
        return world.nurse.post(url(session), json={**body, "id": RETRY_ID})
    return world.nurse.post(url(session), json=body, headers={"Idempotency-Key": "tablet-7-1"})


@pytest.mark.parametrize("how", ["client_id", "idempotency_key"])
def test_retry_with_the_same_body_returns_the_original_answer_and_stores_once(
    world: World, how: str
) -> None:
    session = world.session()
    first, replay = retry(world, session, how, 88), retry(world, session, how, 88)
    assert first.status_code == replay.status_code == 201
    assert replay.json() == first.json()
    assert [r["id"] for r in world.readings(session)] == [first.json()["id"]]


@pytest.mark.parametrize("how", ["client_id", "idempotency_key"])
def test_retry_with_another_body_is_idempotency_mismatch(world: World, how: str) -> None:
    session = world.session()
    assert retry(world, session, how, 88).status_code == 201
    problem(retry(world, session, how, 89), 422, "idempotency-mismatch")
    assert [r["heart_rate"] for r in world.readings(session)] == [88]


def enter_in_error(
    world: World, reading_id: str, reason: str, caller: Caller | None = None
) -> httpx.Response:
    return (caller or world.nurse).post(
        f"/v1/readings/{reading_id}/entered-in-error", json={"reason": reason}
    )


def test_entered_in_error_reading_stays_flagged_and_leaves_the_default_list(world: World) -> None:
    session = world.session()
    kept = world.reading(session, measured_at=ago(5))
    wrong = world.reading(session, measured_at=ago(4), heart_rate=270)
    response = enter_in_error(world, wrong["id"], "typed 270 for 70")
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "entered-in-error"
    assert response.json()["entered_in_error_reason"] == "typed 270 for 70"
    assert response.json()["entered_in_error_at"].endswith("Z")
    assert [r["id"] for r in world.readings(session)] == [kept["id"]]
    everything = world.readings(session, include_entered_in_error="true")
    assert [(r["id"], r["status"], r["entered_in_error_reason"]) for r in everything] == [
        (kept["id"], "final", None),
        (wrong["id"], "entered-in-error", "typed 270 for 70"),
    ]


def test_entered_in_error_reading_drops_out_of_the_baseline(world: World) -> None:
    session = world.session()
    first = world.reading(session, measured_at=ago(40), systolic=118, diastolic=76)
    second = world.reading(session, measured_at=ago(30), systolic=150, diastolic=95)
    world.reading(session, measured_at=ago(20), heart_rate=80)

    def baseline() -> Any:
        response = world.nurse.get(f"/v1/sessions/{session['id']}")
        assert response.status_code == 200, response.text
        return response.json()["baseline"]

    assert baseline()["reading_id"] == second["id"]
    enter_in_error(world, second["id"], "cuff on the wrong arm")
    assert (baseline()["reading_id"], baseline()["systolic"]) == (first["id"], 118)
    enter_in_error(world, first["id"], "wrong patient")
    assert baseline() is None


def test_repeated_entered_in_error_keeps_the_first_reason(world: World) -> None:
    reading = world.reading(world.session())
    first = enter_in_error(world, reading["id"], "wrong patient")
    again = enter_in_error(world, reading["id"], "another reason")
    assert again.status_code == 200, again.text
    assert again.json()["entered_in_error_reason"] == "wrong patient"
    assert again.json()["entered_in_error_at"] == first.json()["entered_in_error_at"]


def test_entered_in_error_of_an_unknown_reading_is_404(world: World) -> None:
    problem(enter_in_error(world, str(uuid.uuid4()), "typo"), 404, "not-found")


@pytest.mark.parametrize(
    ("role", "status", "slug"),
    [("other_nurse", 404, "not-found"), ("dashboard", 403, "forbidden"), ("ehr", 403, "forbidden")],
)
def test_only_own_clinic_bedside_roles_mark_readings_in_error(
    world: World, role: str, status: int, slug: str
) -> None:
    session = world.session()
    reading = world.reading(session)
    problem(enter_in_error(world, reading["id"], "typo", world.callers[role]), status, slug)
    assert world.readings(session)[0]["status"] == "final"


def test_readings_are_listed_by_measured_at_then_id(world: World) -> None:
    session = world.session()
    tie = ago(10)
    ids = sorted(str(uuid.uuid4()) for _ in range(3))
    latest = world.reading(session, measured_at=ago(5))
    for reading_id in reversed(ids):
        world.reading(session, id=reading_id, measured_at=tie)
    earliest = world.reading(session, measured_at=ago(20))
    assert [r["id"] for r in world.readings(session)] == [earliest["id"], *ids, latest["id"]]


@pytest.mark.parametrize("limit", [1, 2, 5, 7])
def test_cursor_pagination_walks_every_reading_exactly_once(world: World, limit: int) -> None:
    session = world.session()
    items = _batch(7)
    for item in items[2:5]:  # ties in measured_at across page boundaries
        item["measured_at"] = items[2]["measured_at"]
    created = post_batch(world, session, items).json()["items"]
    expected = [r["id"] for r in sorted(created, key=lambda r: (r["measured_at"], r["id"]))]
    seen: list[str] = []
    params: dict[str, Any] = {"limit": limit}
    while True:
        page = world.nurse.get(url(session), params=params)
        assert page.status_code == 200, page.text
        assert len(page.json()["items"]) <= limit
        seen += [r["id"] for r in page.json()["items"]]
        if page.json()["next_cursor"] is None:
            break
        params["cursor"] = page.json()["next_cursor"]
    assert seen == expected
    assert len(set(seen)) == 7


@pytest.mark.parametrize("limit", [0, 501])
def test_limit_outside_1_to_500_is_rejected(world: World, limit: int) -> None:
    response = world.nurse.get(url(world.session()), params={"limit": limit})
    problem(response, 422, "validation")
    assert ["query", "limit"] in error_locs(response)


@pytest.mark.parametrize("role", ["dashboard", "ehr"])
def test_read_only_roles_may_not_post_readings(world: World, role: str) -> None:
    session = world.session()
    body = {"measured_at": ago(1), "heart_rate": 70}
    problem(world.callers[role].post(url(session), json=body), 403, "forbidden")
    assert world.readings(session) == []


def test_ehr_may_list_readings(world: World) -> None:
    session = world.session()
    reading = world.reading(session)
    assert [r["id"] for r in world.readings(session, world.ehr)] == [reading["id"]]


def test_sessions_of_another_clinic_or_none_are_404(world: World) -> None:
    session = world.session()
    body = {"measured_at": ago(1), "heart_rate": 70}
    problem(world.other_nurse.post(url(session), json=body), 404, "not-found")
    problem(world.other_nurse.get(url(session)), 404, "not-found")
    problem(world.nurse.post(url({"id": uuid.uuid4()}), json=body), 404, "not-found")
    assert world.readings(session) == []
