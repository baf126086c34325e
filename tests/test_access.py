"""Who may call what: authentication on every /v1 and /fhir route, the role matrix, tenancy, keys,
audit."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from starlette.routing import Mount

from app.main import create_app
from tests.factories import (
    World,
    ago,
    caller_for,
    expect_problem,
    new_key,
    post_observation,
)
from tests.fhir_support import outcome, vital

ROLES = ("nurse", "clinician", "dashboard", "ehr", "admin", "global_admin")
BEDSIDE = frozenset({"nurse", "clinician"})
CLINICAL_READ = frozenset({"nurse", "clinician", "ehr"})
SESSION_READ = frozenset({"nurse", "clinician", "ehr", "dashboard"})
CLINICIAN = frozenset({"clinician"})
ADMINS = frozenset({"admin", "global_admin"})
FHIR_WRITE = frozenset({"nurse", "clinician", "ehr"})

# API.md "Authentication, roles, tenancy": (method, route) -> the roles that may call it.
# Every /v1 and /fhir route but the FHIR CapabilityStatement (no key needed).
# ``admin`` is a clinic's admin key, ``global_admin`` an admin key of no clinic.
MATRIX: dict[tuple[str, str], frozenset[str]] = {
    ("POST", "/v1/patients"): BEDSIDE,
    ("GET", "/v1/patients"): CLINICAL_READ,
    ("GET", "/v1/patients/{patient_id}"): CLINICAL_READ,
    ("PATCH", "/v1/patients/{patient_id}"): BEDSIDE,
    ("POST", "/v1/sessions"): BEDSIDE,
    ("GET", "/v1/sessions"): SESSION_READ,
    ("GET", "/v1/sessions/{session_id}"): SESSION_READ,
    ("POST", "/v1/sessions/{session_id}/start"): BEDSIDE,
    ("POST", "/v1/sessions/{session_id}/end"): BEDSIDE,
    ("POST", "/v1/sessions/{session_id}/abort"): BEDSIDE,
    ("POST", "/v1/sessions/{session_id}/discharge"): BEDSIDE,  # an override needs a clinician
    ("GET", "/v1/sessions/{session_id}/recovery"): SESSION_READ,
    ("GET", "/v1/board"): SESSION_READ,
    ("GET", "/v1/sessions/{session_id}/summary"): SESSION_READ,
    ("GET", "/v1/sessions/{session_id}/chart.svg"): SESSION_READ,
    ("POST", "/v1/sessions/{session_id}/readings"): BEDSIDE,
    ("POST", "/v1/sessions/{session_id}/readings:batch"): BEDSIDE,
    ("GET", "/v1/sessions/{session_id}/readings"): CLINICAL_READ,
    ("POST", "/v1/readings/{reading_id}/entered-in-error"): BEDSIDE,
    ("POST", "/v1/sessions/{session_id}/observations"): BEDSIDE,
    ("GET", "/v1/sessions/{session_id}/observations"): CLINICAL_READ,
    ("POST", "/v1/observations/{observation_id}/entered-in-error"): BEDSIDE,
    ("GET", "/v1/alerts"): SESSION_READ,
    ("GET", "/v1/alerts/{alert_id}"): SESSION_READ,
    ("GET", "/v1/alerts/stream"): SESSION_READ,
    ("POST", "/v1/alerts/{alert_id}/acknowledge"): BEDSIDE,
    ("POST", "/v1/alerts/{alert_id}/resolve"): CLINICIAN,
    ("GET", "/v1/protocol"): CLINICAL_READ,  # not in the dashboard's list
    ("PUT", "/v1/protocol"): CLINICIAN,
    ("POST", "/v1/clinics"): frozenset({"global_admin"}),  # a clinic's admin may not
    ("GET", "/v1/clinics"): ADMINS,
    ("POST", "/v1/api-keys"): ADMINS,
    ("GET", "/v1/api-keys"): ADMINS,
    ("POST", "/v1/api-keys/{key_id}/revoke"): ADMINS,
    ("GET", "/v1/audit"): ADMINS,
    ("GET", "/fhir/R4/Patient/{patient_id}"): CLINICAL_READ,
    ("GET", "/fhir/R4/Encounter/{session_id}"): CLINICAL_READ,
    ("GET", "/fhir/R4/Encounter/{session_id}/$everything"): CLINICAL_READ,
    ("GET", "/fhir/R4/Observation"): CLINICAL_READ,
    ("GET", "/fhir/R4/Observation/{observation_id}"): CLINICAL_READ,
    ("POST", "/fhir/R4/Observation"): FHIR_WRITE,
}
UNGUARDED = {("GET", "/fhir/R4/metadata")}

# A valid request for each route, on fresh resources of world's clinic (made by its nurse).
VITALS = {"heart_rate": 80, "systolic": 120, "diastolic": 80}
BODIES: dict[tuple[str, str], Callable[[World], Any]] = {
    ("POST", "/v1/patients"): lambda w: {"mrn": uuid.uuid4().hex[:10], "display_name": "A"},
    ("PATCH", "/v1/patients/{patient_id}"): lambda w: {"display_name": "Renamed"},
    ("POST", "/v1/sessions"): lambda w: {"patient_id": w.patient()["id"], "route": "iv"},
    ("POST", "/v1/sessions/{session_id}/start"): lambda w: {},
    ("POST", "/v1/sessions/{session_id}/end"): lambda w: {},
    ("POST", "/v1/sessions/{session_id}/abort"): lambda w: {"reason": "patient declined"},
    ("POST", "/v1/sessions/{session_id}/discharge"): lambda w: {},
    ("POST", "/v1/sessions/{session_id}/readings"): lambda w: {"measured_at": ago(1), **VITALS},
    ("POST", "/v1/sessions/{session_id}/readings:batch"): lambda w: {
        "readings": [{"measured_at": ago(1), **VITALS}]
    },
    ("POST", "/v1/readings/{reading_id}/entered-in-error"): lambda w: {"reason": "typo"},
    ("POST", "/v1/sessions/{session_id}/observations"): lambda w: {
        "measured_at": ago(1),
        "kind": "nausea",
        "severity": 1,
    },
    ("POST", "/v1/observations/{observation_id}/entered-in-error"): lambda w: {"reason": "typo"},
    ("POST", "/v1/alerts/{alert_id}/acknowledge"): lambda w: {"note": "seen"},
    ("POST", "/v1/alerts/{alert_id}/resolve"): lambda w: {"note": "treated"},
    ("PUT", "/v1/protocol"): lambda w: w.nurse.get("/v1/protocol").json(),  # a whole protocol
    ("POST", "/v1/clinics"): lambda w: {"name": "New Clinic"},
    ("POST", "/v1/api-keys"): lambda w: {"clinic_id": str(w.clinic_id), "role": "nurse"},
    ("POST", "/fhir/R4/Observation"): lambda w: vital(w.session(state="in_progress"), "8867-4", 80),
}
# Query strings a route needs to succeed.
QUERIES: dict[tuple[str, str], Callable[[World], str]] = {
    ("GET", "/fhir/R4/Observation"): lambda w: f"?encounter=Encounter/{w.session()['id']}",
}
CREATING = {  # 201; every other allowed call answers 200
    ("POST", path)
    for path in (
        "/v1/patients", "/v1/sessions", "/v1/sessions/{session_id}/readings",
        "/v1/sessions/{session_id}/readings:batch", "/v1/sessions/{session_id}/observations",
        "/v1/clinics", "/v1/api-keys", "/fhir/R4/Observation",
    )
}  # fmt: skip
SESSION_STATE = {"start": "baseline", "end": "in_progress", "recovery": "recovery"}


def _alert_id(w: World) -> str:
    """An open alert: a heart rate of 135 during the infusion (hr.high, high)."""
    reading = w.reading(w.session(state="in_progress"), measured_at=ago(1), heart_rate=135)
    assert reading["alerts"], reading
    return str(reading["alerts"][0]["id"])


def _dischargeable(w: World) -> str:
    """A session 45 minutes into recovery that passes every discharge check."""
    session = w.session()
    w.reading(session, measured_at=ago(100), systolic=124, diastolic=78, heart_rate=72)
    w.transition(session, "start", at=ago(90))
    w.reading(session, measured_at=ago(60), systolic=126, diastolic=80, heart_rate=74)
    w.transition(session, "end", at=ago(45))
    post_observation(w, session, measured_at=ago(20), kind="dissociation", severity=0)
    w.reading(session, measured_at=ago(10), systolic=120, diastolic=78, heart_rate=70)
    return str(session["id"])


def _session_id(w: World, route: str) -> str:
    action = route.rsplit("/", 1)[-1]
    if action == "discharge":
        return _dischargeable(w)
    return str(w.session(state=SESSION_STATE.get(action, "scheduled"))["id"])


PATH_IDS: dict[str, Callable[[World, str], str]] = {
    "patient_id": lambda w, route: str(w.patient()["id"]),
    "session_id": _session_id,
    "reading_id": lambda w, route: str(w.reading(w.session())["id"]),
    "observation_id": lambda w, route: str(post_observation(w, w.session())["id"]),
    "alert_id": lambda w, route: _alert_id(w),
    "key_id": lambda w, route: str(new_key(w)["id"]),
}


def call_for(w: World, route: tuple[str, str]) -> tuple[str, Any, int]:
    """(path with real ids, json body, success status) for ``route``."""
    path = route[1]
    for name, make in PATH_IDS.items():
        if "{" + name + "}" in path:
            path = path.replace("{" + name + "}", make(w, route[1]))
    assert "{" not in path, f"no factory for a path id of {route}: add one to PATH_IDS"
    path += QUERIES[route](w) if route in QUERIES else ""
    body = BODIES[route](w) if route in BODIES else None
    return path, body, 201 if route in CREATING else 200


def _leaves(routes: list[Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for route in routes:
        if hasattr(route, "effective_route_contexts"):  # FastAPI's included routers
            for leaf in route.effective_route_contexts():
                yield prefix + leaf.path, leaf
        elif isinstance(route, Mount):
            yield from _leaves(route.routes, prefix + route.path)
        else:
            yield prefix + route.path, route


def guarded_routes() -> set[tuple[str, str]]:
    """Every (method, path) of the application under /v1 and /fhir that needs a key."""
    found = set()
    for path, route in _leaves(create_app().routes):
        if path.startswith(("/v1/", "/fhir/")) or path == "/v1":
            found |= {(m, path) for m in (route.methods or {"*"}) if m != "HEAD"}
    return found - UNGUARDED


def refused(response: httpx.Response, status: int, slug: str | None = None) -> None:
    """A refusal: problem+json under /v1, an OperationOutcome under /fhir (API.md)."""
    if response.request.url.path.startswith("/fhir/"):
        codes = {401: "login", 403: "forbidden", 404: "not-found"}
        assert outcome(response, status)["issue"][0]["code"] == codes[status]
    else:
        expect_problem(response, status, slug)


def _fill_path(path: str) -> str:
    return re.sub(r"\{[^}]+\}", lambda _: str(uuid.uuid4()), path)


def test_the_matrix_lists_exactly_the_guarded_routes() -> None:
    routes = guarded_routes()
    assert routes, "the route inventory found no /v1 route"
    assert routes - MATRIX.keys() == set(), "routes missing from the access matrix"
    assert MATRIX.keys() - routes == set(), "the matrix lists routes the app does not have"
    assert BODIES.keys() <= MATRIX.keys()


def _send(
    client: TestClient, method: str, path: str, headers: dict[str, str], body: Any = None
) -> httpx.Response:
    """A request whose body is read unless it is an endless event stream (then only its head)."""
    with client.stream(method, path, headers=headers, json=body) as response:
        if not response.headers.get("content-type", "").startswith("text/event-stream"):
            response.read()
    return response


def test_every_guarded_route_needs_a_valid_key(client: TestClient) -> None:
    for method, route in sorted(guarded_routes()):
        path = _fill_path(route)
        for headers in ({}, {"Authorization": "Bearer vgl_not-a-real-key"}):
            response = _send(client, method, path, headers)
            assert response.status_code == 401, f"{method} {route} {headers}"
            refused(response, 401, "unauthorized")
        for header in ("Bearer", "Bearer  ", "Basic dXNlcjpwYXNz", "vgl_not-a-real-key"):
            response = _send(client, method, path, {"Authorization": header})
            assert response.status_code == 401, f"{method} {route} {header!r}"


@pytest.mark.parametrize("route", sorted(MATRIX), ids=lambda r: f"{r[0]} {r[1]}")
def test_role_matrix(world: World, route: tuple[str, str]) -> None:
    method, _ = route
    for role in ROLES:
        path, body, ok = call_for(world, route)
        caller = getattr(world, role)
        response = _send(world.client, method, path, caller.headers, body)
        where = f"{role}: {method} {path}"
        if role in MATRIX[route]:
            assert response.status_code == ok, f"{where} -> {response.status_code} {response.text}"
        else:
            assert response.status_code == 403, f"{where} -> {response.status_code} {response.text}"
            refused(response, 403, "forbidden")


WITH_PATH_ID = sorted(r for r in MATRIX if "{" in r[1])


@pytest.mark.parametrize("route", WITH_PATH_ID, ids=lambda r: f"{r[0]} {r[1]}")
def test_another_clinics_resource_is_not_found(world: World, route: tuple[str, str]) -> None:
    method, _ = route
    path, body, _ = call_for(world, route)
    outsiders = [
        f"other_{role}" for role in ("nurse", "clinician", "admin") if role in MATRIX[route]
    ]
    assert outsiders
    for outsider in outsiders:
        response = getattr(world, outsider).request(method, path, json=body)
        refused(response, 404, "not-found")


def test_another_clinics_resource_is_unchanged_after_a_refused_write(world: World) -> None:
    patient = world.patient()
    response = world.other_nurse.patch(f"/v1/patients/{patient['id']}", json={"display_name": "X"})
    expect_problem(response, 404, "not-found")
    session = world.session(state="baseline")
    expect_problem(world.other_clinician.post(f"/v1/sessions/{session['id']}/start"), 404)
    assert (
        world.nurse.get(f"/v1/patients/{patient['id']}").json()["display_name"] == "Jordan Example"
    )
    assert world.nurse.get(f"/v1/sessions/{session['id']}").json()["status"] == "scheduled"


def test_another_clinics_patients_and_sessions_stay_hidden(world: World) -> None:
    patient = world.patient()
    world.session(patient_id=patient["id"])
    response = world.other_nurse.post(
        "/v1/sessions", json={"patient_id": patient["id"], "route": "iv"}
    )
    expect_problem(response, 404, "not-found")
    for params in ({}, {"mrn": patient["mrn"]}):
        assert world.other_nurse.get("/v1/patients", params=params).json()["items"] == []
    assert world.other_nurse.get("/v1/sessions").json()["items"] == []
    keys = world.other_admin.get("/v1/api-keys").json()["items"]
    assert {k["clinic_id"] for k in keys} == {str(world.other_clinic_id)}


# --- API keys ----------------------------------------------------------------------------------
def test_a_created_key_is_shown_once_works_at_once_and_dies_on_revoke(world: World) -> None:
    response = world.admin.post(
        "/v1/api-keys",
        json={"clinic_id": str(world.clinic_id), "role": "nurse", "label": "tablet 3"},
    )
    assert response.status_code == 201, response.text
    created = response.json()
    assert set(created) == {"id", "role", "clinic_id", "label", "key", "created_at", "expires_at"}
    assert (created["role"], created["clinic_id"], created["label"]) == (
        "nurse", str(world.clinic_id), "tablet 3"
    )  # fmt: skip
    secret = created["key"]
    assert len(secret) >= 32

    for lister in (world.admin, world.global_admin):
        listing = lister.get("/v1/api-keys")
        assert listing.status_code == 200
        assert secret not in listing.text
        for item in listing.json()["items"]:
            assert not {"key", "key_hash", "secret", "hash"} & set(item), item
        assert created["id"] in {item["id"] for item in listing.json()["items"]}

    tablet = caller_for(world, created)
    assert tablet.get("/v1/patients").status_code == 200
    assert tablet.post("/v1/patients", json={"mrn": "T3-1", "display_name": "A"}).status_code == 201

    path = f"/v1/api-keys/{created['id']}/revoke"
    refused = expect_problem(world.admin.post(path, json={"reason": "lost"}), 422, "validation")
    assert refused["errors"][0]["loc"] == ["body", "reason"], refused  # unknown, not ignored
    assert tablet.get("/v1/patients").status_code == 200  # and nothing was revoked
    revoked = world.admin.post(path, json={})
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["id"] == created["id"]
    assert revoked.json()["revoked_at"] is not None
    assert "key" not in revoked.json() and secret not in revoked.text
    expect_problem(tablet.get("/v1/patients"), 401, "unauthorized")
    expect_problem(tablet.post("/v1/patients", json={"mrn": "T3-2", "display_name": "A"}), 401)
    assert world.nurse.get("/v1/patients", params={"mrn": "T3-2"}).json()["items"] == []


def test_keys_and_clinics_are_listed_in_pages_oldest_first(world: World) -> None:
    made = [new_key(world, label=f"tablet {i}")["id"] for i in range(5)]
    for _ in range(3):
        world.global_admin.post("/v1/clinics", json={"name": "Another"})
    for path, caller in (("/v1/api-keys", world.admin), ("/v1/clinics", world.global_admin)):
        everything = caller.get(path, params={"limit": 500}).json()
        assert everything["next_cursor"] is None
        seen, cursor = [], None
        while True:
            params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
            page = caller.get(path, params=params).json()
            assert set(page) == {"items", "next_cursor"} and len(page["items"]) <= 2
            seen += page["items"]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert seen == everything["items"]  # every one once, in the same order
        assert [x["created_at"] for x in seen] == sorted(x["created_at"] for x in seen)
        expect_problem(caller.get(path, params={"limit": 501}), 422, "validation")
        expect_problem(caller.get(path, params={"cursor": "nope"}), 422, "validation")
    keys = world.admin.get("/v1/api-keys", params={"limit": 500}).json()["items"]
    assert set(made) <= {k["id"] for k in keys}


def test_a_clinic_admin_manages_only_its_own_clinic(world: World) -> None:
    other = {"clinic_id": str(world.other_clinic_id), "role": "nurse", "label": "x"}
    expect_problem(world.admin.post("/v1/api-keys", json=other), 403, "forbidden")
    expect_problem(world.admin.post("/v1/clinics", json={"name": "Mine"}), 403, "forbidden")
    foreign = new_key(world, clinic_id=world.other_clinic_id)
    expect_problem(world.admin.post(f"/v1/api-keys/{foreign['id']}/revoke"), 404, "not-found")
    assert caller_for(world, foreign).get("/v1/patients").status_code == 200
    clinics = world.admin.get("/v1/clinics").json()["items"]
    assert [c["id"] for c in clinics] == [str(world.clinic_id)]


def test_the_global_admin_creates_clinics_and_their_keys(world: World) -> None:
    response = world.global_admin.post("/v1/clinics", json={"name": "Lakeside"})
    assert response.status_code == 201, response.text
    clinic = response.json()
    assert set(clinic) == {"id", "name", "created_at"} and clinic["name"] == "Lakeside"
    assert clinic["id"] in {c["id"] for c in world.global_admin.get("/v1/clinics").json()["items"]}
    key = new_key(world, role="nurse", clinic_id=uuid.UUID(clinic["id"]))
    assert key["clinic_id"] == clinic["id"]
    nurse = caller_for(world, key)
    assert nurse.post("/v1/patients", json={"mrn": "L-1", "display_name": "A"}).status_code == 201
    assert world.nurse.get("/v1/patients", params={"mrn": "L-1"}).json()["items"] == []


@pytest.mark.parametrize("role", ["nurse", "clinician", "dashboard", "ehr"])
def test_a_non_admin_key_needs_a_clinic(world: World, role: str) -> None:
    before = len(world.global_admin.get("/v1/api-keys").json()["items"])
    response = world.global_admin.post("/v1/api-keys", json={"role": role, "label": "x"})
    expect_problem(response, 422, "validation")
    response = world.global_admin.post("/v1/api-keys", json={"role": role, "clinic_id": None})
    expect_problem(response, 422, "validation")
    assert len(world.global_admin.get("/v1/api-keys").json()["items"]) == before
    unknown = {"role": role, "clinic_id": str(uuid.uuid4())}
    expect_problem(world.global_admin.post("/v1/api-keys", json=unknown), 404, "not-found")


# --- audit ---------------------------------------------------------------------------------------
AUDIT_FIELDS = {
    "at", "actor_key_id", "role", "action", "resource_type", "resource_id", "request_id", "outcome",
}  # fmt: skip


def _audit_pages(caller: Any, **params: Any) -> list[list[dict[str, Any]]]:
    """The pages of entries matching ``params``, following next_cursor to the end."""
    pages, cursor = [], None
    while True:
        response = caller.get(
            "/v1/audit", params={**params, "cursor": cursor} if cursor else params
        )
        assert response.status_code == 200, response.text
        pages.append(response.json()["items"])
        cursor = response.json()["next_cursor"]
        if cursor is None:
            return pages


def _audit(caller: Any, **params: Any) -> list[dict[str, Any]]:
    return [entry for page in _audit_pages(caller, **params) for entry in page]


def test_the_audit_trail_records_a_patient_create_and_read(world: World) -> None:
    created = world.nurse.post(
        "/v1/patients",
        json={"mrn": "AUD-1", "display_name": "A"},
        headers={"X-Request-ID": "req-create-1"},
    )
    assert created.status_code == 201
    patient_id = created.json()["id"]
    read = world.clinician.get(f"/v1/patients/{patient_id}", headers={"X-Request-ID": "req-read-1"})
    assert read.status_code == 200

    entries = _audit(world.admin, resource_id=patient_id)
    for entry in entries:
        assert set(entry) == AUDIT_FIELDS, entry
        assert entry["resource_id"] == patient_id
        assert entry["at"].endswith("Z")
    by_request = {e["request_id"]: e for e in entries}
    create = by_request["req-create-1"]
    assert create["actor_key_id"] == str(world.nurse.key_id)
    assert (create["role"], create["resource_type"], create["outcome"]) == (
        "nurse", "Patient", "success"
    )  # fmt: skip
    assert "create" in create["action"]
    reading = by_request["req-read-1"]
    assert reading["actor_key_id"] == str(world.clinician.key_id)
    assert (reading["role"], reading["resource_type"], reading["outcome"]) == (
        "clinician", "Patient", "success"
    )  # fmt: skip
    assert "read" in reading["action"]
    assert entries.index(create) < entries.index(reading)
    assert _audit(world.global_admin, resource_id=patient_id) == entries
    assert _audit(world.other_admin, resource_id=patient_id) == []


def test_board_and_alert_list_reads_are_audited_under_each_session_shown(world: World) -> None:
    sessions = [world.session(state="in_progress") for _ in range(2)]
    for session in sessions:
        world.reading(session, measured_at=ago(2), spo2=85)  # an alert in each
    assert (
        world.dashboard.get("/v1/board", headers={"X-Request-ID": "req-board"}).status_code == 200
    )
    alerts = world.dashboard.get("/v1/alerts", headers={"X-Request-ID": "req-alerts"})
    assert len(alerts.json()["items"]) >= 2
    for session in sessions:
        entries = _audit(world.admin, resource_id=session["id"])
        shown = {(e["request_id"], e["action"], e["resource_type"]) for e in entries}
        assert {
            ("req-board", "board.read", "Session"),
            ("req-alerts", "alert.list", "Session"),
        } <= shown


def test_the_audit_trail_filters_by_actor_and_pages_with_a_cursor(world: World) -> None:
    patients = [world.patient(world.clinician)["id"] for _ in range(5)]
    world.patient(world.nurse)
    mine = _audit(world.admin, actor_key_id=str(world.clinician.key_id))
    assert {e["actor_key_id"] for e in mine} == {str(world.clinician.key_id)}
    assert [e["resource_id"] for e in mine if "create" in e["action"]] == patients

    pages = _audit_pages(world.admin, actor_key_id=str(world.clinician.key_id), limit=2)
    assert all(len(page) <= 2 for page in pages)
    assert len(pages) >= 3
    assert [e for page in pages for e in page] == mine
    expect_problem(world.admin.get("/v1/audit", params={"cursor": "not a cursor!"}), 422)


@pytest.mark.parametrize("role", ["nurse", "clinician", "dashboard", "ehr", "other_nurse"])
def test_only_admins_read_the_audit_trail(world: World, role: str) -> None:
    expect_problem(getattr(world, role).get("/v1/audit"), 403, "forbidden")
