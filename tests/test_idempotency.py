"""Safe retries: Idempotency-Key on every creating POST, client ids, and replays racing."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from app.auth.deps import Principal
from app.auth.roles import Role
from app.db import make_engine, make_sessionmaker, table_of
from app.idempotency.service import Idempotency, fingerprint
from app.observations.models import Observation
from app.patients import service as patients
from app.patients.schemas import PatientCreate
from app.readings.models import Reading
from tests.factories import Caller, World, ago, caller_for, expect_problem, started
from tests.live import live_server  # noqa: F401  (fixture)


@dataclass
class Case:
    caller: Caller
    other: Caller  # another API key that may create the same thing
    path: str
    body: Callable[[int], dict[str, Any]]  # body(0) is the original, body(n) differs
    count: Callable[[Caller], int]  # how many such records ``caller`` can see


def _items(caller: Caller, path: str, **params: Any) -> list[Any]:
    response = caller.get(path, params=params)
    assert response.status_code == 200, response.text
    return response.json()["items"]  # type: ignore[no-any-return]


def _case(world: World, name: str) -> Case:
    if name == "clinics":
        created = world.global_admin.post("/v1/api-keys", json={"role": "admin", "label": "g2"})
        assert created.status_code == 201, created.text
        return Case(
            world.global_admin,
            caller_for(world, created.json()),
            "/v1/clinics",
            lambda n: {"name": f"Clinic {n}"},
            lambda c: len(_items(c, "/v1/clinics")),
        )
    if name == "api-keys":
        return Case(
            world.admin,
            world.global_admin,
            "/v1/api-keys",
            lambda n: {"clinic_id": str(world.clinic_id), "role": "nurse", "label": f"tab {n}"},
            lambda c: len([k for k in _items(c, "/v1/api-keys") if k["label"].startswith("tab")]),
        )
    if name == "patients":
        return Case(
            world.nurse,
            world.other_nurse,  # the same MRN is free in another clinic
            "/v1/patients",
            lambda n: {"mrn": f"MRN-{n}", "display_name": "Jordan", "contraindications": []},
            lambda c: len(_items(c, "/v1/patients")),
        )
    if name == "sessions":
        patient = world.patient()
        return Case(
            world.nurse,
            world.clinician,
            "/v1/sessions",
            lambda n: {"patient_id": patient["id"], "route": "iv", "planned_duration_min": 40 + n},
            lambda c: len(_items(c, "/v1/sessions", patient_id=patient["id"])),
        )
    session = world.session()
    at, later = ago(5), ago(4)
    readings = f"/v1/sessions/{session['id']}/readings"
    count_readings: Callable[[Caller], int] = lambda c: len(_items(c, readings))  # noqa: E731
    if name == "readings":
        return Case(
            world.nurse,
            world.clinician,
            readings,
            lambda n: {"measured_at": at, "heart_rate": 70 + n, "spo2": 97},
            count_readings,
        )
    if name == "readings:batch":
        return Case(
            world.nurse,
            world.clinician,
            f"{readings}:batch",
            lambda n: {
                "readings": [
                    {"measured_at": at, "heart_rate": 70 + n},
                    {"measured_at": later, "systolic": 120, "diastolic": 80},
                ]
            },
            count_readings,
        )
    assert name == "observations"
    observations = f"/v1/sessions/{session['id']}/observations"
    return Case(
        world.nurse,
        world.clinician,
        observations,
        lambda n: {"measured_at": at, "kind": "nausea", "severity": 1 + n % 3},
        lambda c: len(_items(c, observations)),
    )


CREATING = [
    "clinics",
    "api-keys",
    "patients",
    "sessions",
    "readings",
    "readings:batch",
    "observations",
]


def _as_replayed(first: httpx.Response) -> dict[str, Any]:
    """What a replay must answer: the original body, but a key's secret is never shown twice."""
    body: dict[str, Any] = first.json()
    return {**body, "key": None} if "key" in body else body


def _ids(body: dict[str, Any]) -> list[str]:
    return [item["id"] for item in body["items"]] if "items" in body else [body["id"]]


@pytest.mark.parametrize("name", CREATING)
def test_a_replay_returns_the_original_answer_and_stores_nothing(world: World, name: str) -> None:
    case = _case(world, name)
    key = {"Idempotency-Key": f"retry-{uuid.uuid4()}"}
    before = case.count(case.caller)
    first = case.caller.post(case.path, json=case.body(0), headers=key)
    assert first.status_code == 201, first.text
    created = len(_ids(first.json()))
    assert case.count(case.caller) == before + created
    for _ in range(2):
        again = case.caller.post(case.path, json=case.body(0), headers=key)
        assert again.status_code == 201, again.text
        assert again.json() == _as_replayed(first)
    assert case.count(case.caller) == before + created
    # without the key the same body is a new request (or, for patients, an MRN conflict)
    fresh = case.caller.post(case.path, json=case.body(0))
    if name == "patients":
        expect_problem(fresh, 409, "conflict")
    else:
        assert fresh.status_code == 201, fresh.text
        assert set(_ids(fresh.json())).isdisjoint(_ids(first.json()))


@pytest.mark.parametrize("name", CREATING)
def test_the_same_key_with_another_body_is_a_mismatch(world: World, name: str) -> None:
    case = _case(world, name)
    key = {"Idempotency-Key": "reused-key"}
    first = case.caller.post(case.path, json=case.body(0), headers=key)
    assert first.status_code == 201, first.text
    stored = case.count(case.caller)
    response = case.caller.post(case.path, json=case.body(1), headers=key)
    expect_problem(response, 422, "idempotency-mismatch")
    assert case.count(case.caller) == stored
    again = case.caller.post(case.path, json=case.body(0), headers=key)  # the key still replays
    assert (again.status_code, again.json()) == (201, _as_replayed(first))


@pytest.mark.parametrize("name", CREATING)
def test_keys_are_remembered_per_api_key(world: World, name: str) -> None:
    case = _case(world, name)
    key = {"Idempotency-Key": "shared-by-two-tablets"}
    first = case.caller.post(case.path, json=case.body(0), headers=key)
    assert first.status_code == 201, first.text
    before = case.count(case.other)
    second = case.other.post(case.path, json=case.body(0), headers=key)
    assert second.status_code == 201, second.text
    assert set(_ids(second.json())).isdisjoint(_ids(first.json()))
    assert case.count(case.other) == before + len(_ids(second.json()))
    third = case.other.post(case.path, json=case.body(2), headers=key)  # not a mismatch of ours
    expect_problem(third, 422, "idempotency-mismatch")  # ... but of the other key's own use
    replay = case.caller.post(case.path, json=case.body(0), headers=key)
    assert (replay.status_code, replay.json()) == (201, _as_replayed(first))


def test_an_empty_idempotency_key_is_refused(world: World) -> None:
    response = world.nurse.post(
        "/v1/patients", json={"mrn": "E-1", "display_name": "A"}, headers={"Idempotency-Key": " "}
    )
    expect_problem(response, 422, "validation")
    assert _items(world.nurse, "/v1/patients") == []


# --- client-supplied ids ---------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["readings", "observations"])
def test_a_client_id_replays_and_refuses_another_body(world: World, kind: str) -> None:
    session = world.session()
    path = f"/v1/sessions/{session['id']}/{kind}"
    client_id = str(uuid.uuid4())
    extra = {"heart_rate": 72} if kind == "readings" else {"kind": "nausea", "severity": 1}
    body = {"id": client_id, "measured_at": ago(3), **extra}
    first = world.nurse.post(path, json=body)
    assert first.status_code == 201, first.text
    assert first.json()["id"] == client_id
    again = world.nurse.post(path, json=body, headers={"Idempotency-Key": "another-retry"})
    assert again.status_code == 201, again.text
    assert again.json() == first.json()
    changed = {**body, **({"heart_rate": 99} if kind == "readings" else {"severity": 3})}
    expect_problem(world.nurse.post(path, json=changed), 422, "idempotency-mismatch")
    items = _items(world.nurse, path)
    assert [item["id"] for item in items] == [client_id]
    for field in body:  # the stored entry is still the first one
        assert items[0][field] == first.json()[field], field


@pytest.mark.parametrize("kind", ["readings", "observations"])
def test_a_client_id_replay_answers_the_original_body_after_later_changes(
    world: World, kind: str
) -> None:
    """The alert it opened has been updated since and the entry marked in error: a replay
    still answers what the first post answered, not the entry as it now stands."""
    session = started(world)
    path = f"/v1/sessions/{session['id']}/{kind}"
    if kind == "readings":
        body = {"id": str(uuid.uuid4()), "measured_at": ago(4), "heart_rate": 135}
        later = {"measured_at": ago(2), "heart_rate": 150}
    else:
        body = {"id": str(uuid.uuid4()), "measured_at": ago(4), "kind": "sedation", "moaas": 3}
        later = {"measured_at": ago(2), "kind": "sedation", "moaas": 1}
    first = world.nurse.post(path, json=body)
    assert first.status_code == 201, first.text
    [alert] = first.json()["alerts"]
    assert alert["count"] == 1
    updated = world.nurse.post(path, json=later)
    assert updated.status_code == 201, updated.text
    assert [(a["id"], a["count"]) for a in updated.json()["alerts"]] == [(alert["id"], 2)]
    voided = world.nurse.post(f"/v1/{kind}/{body['id']}/entered-in-error", json={"reason": "x"})
    assert voided.status_code == 200, voided.text
    stored = _items(world.nurse, path, include_entered_in_error=True)

    for headers in ({}, {"Idempotency-Key": str(uuid.uuid4())}):
        again = world.nurse.post(path, json=body, headers=headers)
        assert again.status_code == 201, again.text
        assert again.json() == first.json()
    batch = (
        world.nurse.post(f"{path}:batch", json={"readings": [body]}) if kind == "readings" else None
    )
    if batch is not None:
        assert batch.status_code == 201, batch.text
        assert batch.json()["items"] == [first.json()]
    assert _items(world.nurse, path, include_entered_in_error=True) == stored


@pytest.mark.parametrize("kind", ["readings", "observations"])
def test_an_entry_stored_before_answers_were_kept_replays_as_it_stands(
    world: World, kind: str
) -> None:
    """Entries from before the migration that keeps answers have none: a replay is judged
    again from what is stored, which nothing has changed here."""
    session = started(world)
    path = f"/v1/sessions/{session['id']}/{kind}"
    extra = {"heart_rate": 135} if kind == "readings" else {"kind": "sedation", "moaas": 3}
    body = {"id": str(uuid.uuid4()), "measured_at": ago(2), **extra}
    first = world.nurse.post(path, json=body)
    assert first.status_code == 201, first.text
    engine = make_engine(world.database_url)
    try:
        with engine.begin() as connection:
            table = table_of(Reading if kind == "readings" else Observation)
            forgotten = connection.execute(
                update(table).where(table.c.id == uuid.UUID(body["id"])).values(answer=None)
            )
            assert forgotten.rowcount == 1
    finally:
        engine.dispose()
    again = world.nurse.post(path, json=body)
    assert (again.status_code, again.json()) == (201, first.json())
    if kind == "readings":
        batch = world.nurse.post(f"{path}:batch", json={"readings": [body]})
        assert (batch.status_code, batch.json()["items"]) == (201, [first.json()])


@pytest.mark.parametrize("kind", ["readings", "observations"])
def test_a_client_id_replays_after_the_session_closed_before_its_time(
    world: World, kind: str
) -> None:
    """Aborted (back-dated) after the post: the retry still gets its 201, a new entry a 409."""
    session = started(world)
    path = f"/v1/sessions/{session['id']}/{kind}"
    extra = {"heart_rate": 135} if kind == "readings" else {"kind": "nausea", "severity": 3}
    body = {"id": str(uuid.uuid4()), "measured_at": ago(1), **extra}
    first = world.nurse.post(path, json=body)
    assert first.status_code == 201, first.text
    world.transition(session, "abort", at=ago(3), reason="line came out")
    again = world.nurse.post(path, json=body)
    assert (again.status_code, again.json()) == (201, first.json())
    if kind == "readings":
        batch = world.nurse.post(f"{path}:batch", json={"readings": [body]})
        assert (batch.status_code, batch.json()["items"]) == (201, [first.json()])
    expect_problem(world.nurse.post(path, json={**body, "id": str(uuid.uuid4())}), 409)


def test_a_batch_with_a_stored_client_id_replays_it(world: World) -> None:
    session = world.session()
    path = f"/v1/sessions/{session['id']}/readings"
    reading = {"id": str(uuid.uuid4()), "measured_at": ago(3), "heart_rate": 72}
    first = world.nurse.post(path, json=reading)
    assert first.status_code == 201, first.text
    fresh = {"id": str(uuid.uuid4()), "measured_at": ago(2), "heart_rate": 74}
    batch = world.nurse.post(f"{path}:batch", json={"readings": [reading, fresh]})
    assert batch.status_code == 201, batch.text
    assert [r["id"] for r in batch.json()["items"]] == [reading["id"], fresh["id"]]
    assert len(_items(world.nurse, path)) == 2
    clash = {**fresh, "heart_rate": 90}
    other = {"id": str(uuid.uuid4()), "measured_at": ago(1), "heart_rate": 75}
    response = world.nurse.post(f"{path}:batch", json={"readings": [other, clash]})
    body = expect_problem(response, 422, "idempotency-mismatch")
    assert any(1 in error["loc"] for error in body.get("errors", [])), body
    assert len(_items(world.nurse, path)) == 2  # all or nothing


# --- races against a real multi-process server -------------------------------------------------
def _fire(
    base_url: str, caller: Caller, path: str, body: Any, headers: dict[str, str]
) -> list[httpx.Response]:
    """Ten identical POSTs released at once from ten threads, each with its own connection."""
    barrier = threading.Barrier(10)
    answers: list[httpx.Response | BaseException] = [RuntimeError("no answer")] * 10

    def send(index: int) -> None:
        with httpx.Client(base_url=base_url, headers=caller.headers, timeout=60) as http:
            barrier.wait()
            try:
                answers[index] = http.post(path, json=body, headers=headers)
            except BaseException as exc:  # reported below, not lost in the thread
                answers[index] = exc

    threads = [threading.Thread(target=send, args=(i,)) for i in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    for answer in answers:
        assert isinstance(answer, httpx.Response), repr(answer)
    return answers  # type: ignore[return-value]


def _assert_one_winner(answers: list[httpx.Response]) -> dict[str, Any]:
    created = [a for a in answers if a.status_code == 201]
    for answer in answers:
        if answer.status_code != 201:
            expect_problem(answer, 409, "conflict")
    assert created, [a.text for a in answers]
    assert len({a.content for a in created}) == 1, [a.text for a in created]
    return created[0].json()  # type: ignore[no-any-return]


@pytest.mark.parametrize("with_key", [False, True], ids=["client-id", "client-id+key"])
def test_concurrent_identical_readings_are_stored_once(
    live_server: str,  # noqa: F811
    database_url: str,
    with_key: bool,
) -> None:
    with httpx.Client(base_url=live_server, timeout=30) as http:
        world = World.create(http, database_url)  # type: ignore[arg-type]
        session = world.session()
        body = {"id": str(uuid.uuid4()), "measured_at": ago(2), "heart_rate": 88, "spo2": 96}
        headers = {"Idempotency-Key": f"race-{uuid.uuid4()}"} if with_key else {}
        path = f"/v1/sessions/{session['id']}/readings"
        winner = _assert_one_winner(_fire(live_server, world.nurse, path, body, headers))
        assert winner["id"] == body["id"]
        assert [r["id"] for r in world.readings(session)] == [body["id"]]


def test_concurrent_identical_patient_creates_are_stored_once(
    live_server: str,  # noqa: F811
    database_url: str,
) -> None:
    with httpx.Client(base_url=live_server, timeout=30) as http:
        world = World.create(http, database_url)  # type: ignore[arg-type]
        body = {"mrn": "RACE-1", "display_name": "Jordan Example"}
        headers = {"Idempotency-Key": f"race-{uuid.uuid4()}"}
        winner = _assert_one_winner(_fire(live_server, world.nurse, "/v1/patients", body, headers))
        stored = _items(world.nurse, "/v1/patients")
        assert [p["id"] for p in stored] == [winner["id"]]
        replay = world.nurse.post("/v1/patients", json=body, headers=headers)
        assert (replay.status_code, replay.json()) == (201, winner)


def test_a_replayed_key_creation_never_shows_the_secret_again(world: World) -> None:
    key = {"Idempotency-Key": "new-tablet"}
    body = {"clinic_id": str(world.clinic_id), "role": "nurse", "label": "tablet 7"}
    first = world.global_admin.post("/v1/api-keys", json=body, headers=key)
    assert first.status_code == 201 and first.json()["key"].startswith("vgl_")
    replay = world.global_admin.post("/v1/api-keys", json=body, headers=key)
    assert replay.status_code == 201
    assert replay.json()["key"] is None
    assert first.json()["key"] not in replay.text


def test_a_retry_that_loses_the_race_to_its_original_answers_as_the_original(
    world: World,
) -> None:
    """The retry looked for its key before the original committed and inserts after it: the
    patient's MRN then collides. It must answer the original's 201, not a duplicate's 409."""
    body = {"mrn": "RACE-1", "display_name": "Jordan Example"}
    key = str(uuid.uuid4())
    nurse = Principal(world.nurse.key_id, Role.NURSE, world.clinic_id)
    engine = make_engine(world.database_url)
    original: list[httpx.Response] = []

    def create_after_the_original_committed() -> Any:
        retry_db.commit()  # the retry's look-up is done (SQLite: its lock released)
        original.append(
            world.nurse.post("/v1/patients", json=body, headers={"Idempotency-Key": key})
        )
        return patients.create_patient(retry_db, nurse, PatientCreate.model_validate(body))

    try:
        with make_sessionmaker(engine)() as retry_db:
            retry = Idempotency(retry_db, nurse, key, fingerprint("POST", "/v1/patients", body))
            answer = retry.run(201, create_after_the_original_committed)
            retry_db.commit()
    finally:
        engine.dispose()
    [first] = original
    assert first.status_code == 201, first.text
    assert (answer.status_code, answer.body) == (201, first.content)
    assert answer.headers["Idempotent-Replayed"] == "true"
    found = world.nurse.get("/v1/patients", params={"mrn": "RACE-1"}).json()["items"]
    assert [p["id"] for p in found] == [first.json()["id"]]
    # A true duplicate under another key is still a conflict.
    again = world.nurse.post("/v1/patients", json=body, headers={"Idempotency-Key": "other"})
    expect_problem(again, 409, "conflict")
