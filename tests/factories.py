"""Test factories: a world of two clinics with a key for every role, and helpers to fill it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from app.auth.roles import Role
from app.auth.service import create_clinic, create_key
from app.db import make_engine, make_sessionmaker


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def ago(minutes: float = 0, *, seconds: float = 0) -> str:
    """A bedside timestamp ``minutes`` before now."""
    return iso(datetime.now(UTC) - timedelta(minutes=minutes, seconds=seconds))


class Caller:
    """The test client speaking with one API key."""

    def __init__(self, client: TestClient, key: str, key_id: uuid.UUID) -> None:
        self.client, self.key, self.key_id = client, key, key_id
        self.headers = {"Authorization": f"Bearer {key}"}

    def request(
        self, method: str, url: str, *, headers: dict[str, str] | None = None, **kwargs: Any
    ) -> httpx.Response:
        return self.client.request(
            method, url, headers={**self.headers, **(headers or {})}, **kwargs
        )

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", url, **kwargs)

    def patch(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("PATCH", url, **kwargs)


@dataclass
class World:
    client: TestClient
    database_url: str
    clinic_id: uuid.UUID
    other_clinic_id: uuid.UUID
    callers: dict[str, Caller] = field(default_factory=dict)

    @classmethod
    def create(cls, client: TestClient, database_url: str) -> World:
        engine = make_engine(database_url)
        with make_sessionmaker(engine)() as db:
            clinic = create_clinic(db, None, "Riverside Ketamine Clinic")
            other = create_clinic(db, None, "Other Clinic")
            callers: dict[str, Caller] = {}
            for role in Role:
                key, secret = create_key(db, None, role, clinic.id, role.value)
                callers[role.value] = Caller(client, secret, key.id)
            for role in (Role.NURSE, Role.CLINICIAN, Role.ADMIN):
                key, secret = create_key(db, None, role, other.id, f"other {role.value}")
                callers[f"other_{role.value}"] = Caller(client, secret, key.id)
            key, secret = create_key(db, None, Role.ADMIN, None, "global admin")
            callers["global_admin"] = Caller(client, secret, key.id)
            db.commit()
        engine.dispose()
        return cls(client, database_url, clinic.id, other.id, callers)

    def __getattr__(self, name: str) -> Caller:
        callers = self.__dict__.get("callers", {})
        if name in callers:
            return callers[name]  # type: ignore[no-any-return]
        raise AttributeError(name)

    # --- factories -------------------------------------------------------------------------
    def patient(self, caller: Caller | None = None, **fields: Any) -> dict[str, Any]:
        body = {"mrn": uuid.uuid4().hex[:10], "display_name": "Jordan Example", **fields}
        response = (caller or self.nurse).post("/v1/patients", json=body)
        assert response.status_code == 201, response.text
        return response.json()  # type: ignore[no-any-return]

    def session(
        self, caller: Caller | None = None, *, state: str = "scheduled", **fields: Any
    ) -> dict[str, Any]:
        """A session in ``state``: scheduled, baseline (scheduled, with one), in_progress, recovery."""
        caller = caller or self.nurse
        patient_id = fields.pop("patient_id", None) or self.patient(caller)["id"]
        response = caller.post(
            "/v1/sessions", json={"patient_id": patient_id, "route": "iv", **fields}
        )
        assert response.status_code == 201, response.text
        session: dict[str, Any] = response.json()
        if state == "scheduled":
            return session
        self.reading(
            session, caller, measured_at=ago(30), systolic=124, diastolic=78, heart_rate=72
        )
        if state == "baseline":
            return session
        session = self.transition(session, "start", caller, at=ago(25))
        if state == "recovery":
            session = self.transition(session, "end", caller, at=ago(5))
        return session

    def transition(
        self, session: dict[str, Any], action: str, caller: Caller | None = None, **body: Any
    ) -> dict[str, Any]:
        response = (caller or self.nurse).post(f"/v1/sessions/{session['id']}/{action}", json=body)
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]

    def reading(
        self, session: dict[str, Any], caller: Caller | None = None, **fields: Any
    ) -> dict[str, Any]:
        body = {"measured_at": ago(1), "heart_rate": 72, **fields}
        response = (caller or self.nurse).post(f"/v1/sessions/{session['id']}/readings", json=body)
        assert response.status_code == 201, response.text
        return response.json()  # type: ignore[no-any-return]

    def readings(
        self, session: dict[str, Any], caller: Caller | None = None, **params: Any
    ) -> list[dict[str, Any]]:
        response = (caller or self.nurse).get(
            f"/v1/sessions/{session['id']}/readings", params=params
        )
        assert response.status_code == 200, response.text
        return response.json()["items"]  # type: ignore[no-any-return]


def parse_time(text: str) -> datetime:
    """A response timestamp: always UTC, spelled with ``Z``."""
    assert text.endswith("Z"), text
    return datetime.fromisoformat(text)


def problem(response: httpx.Response, status: int, slug: str) -> dict[str, Any]:
    """The problem+json body of an error response, once its status and type are checked."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["type"] == f"/problems/{slug}", body
    assert body["status"] == status
    return body


# --- helpers appended for the readings and observations tests ------------------------------
def shifted(timestamp: str, minutes: float = 0, *, seconds: float = 0) -> str:
    """``timestamp`` (as the API gives it) moved by ``minutes``; negative is earlier."""
    moment = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    return iso(moment + timedelta(minutes=minutes, seconds=seconds))


def error_locs(response: httpx.Response) -> list[list[str | int]]:
    """The ``loc`` of every entry in a validation problem's ``errors``."""
    return [error["loc"] for error in response.json().get("errors", [])]


def observations(
    world: World, session: dict[str, Any], caller: Caller | None = None, **params: Any
) -> list[dict[str, Any]]:
    response = (caller or world.nurse).get(
        f"/v1/sessions/{session['id']}/observations", params=params
    )
    assert response.status_code == 200, response.text
    return response.json()["items"]  # type: ignore[no-any-return]


# --- helpers shared by the access, error and idempotency tests ------------------------------
def post_observation(
    world: World, session: dict[str, Any], caller: Caller | None = None, **fields: Any
) -> dict[str, Any]:
    body = {"measured_at": ago(1), "kind": "nausea", "severity": 1, **fields}
    response = (caller or world.nurse).post(f"/v1/sessions/{session['id']}/observations", json=body)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def new_key(
    world: World, role: str = "nurse", clinic_id: uuid.UUID | None = None, label: str = "extra"
) -> dict[str, Any]:
    """A key made through the API by the global admin: ``{id, role, clinic_id, label, key, ...}``."""
    body = {
        "role": role,
        "clinic_id": str(clinic_id) if clinic_id else str(world.clinic_id),
        "label": label,
    }
    response = world.global_admin.post("/v1/api-keys", json=body)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def caller_for(world: World, created_key: dict[str, Any]) -> Caller:
    return Caller(world.client, created_key["key"], uuid.UUID(created_key["id"]))


def expect_problem(
    response: httpx.Response, status: int, slug: str | None = None
) -> dict[str, Any]:
    """``response`` is an RFC 9457 problem with ``status`` (and type ``/problems/<slug>``)."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json"), response.headers
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert {"type", "title", "status", "detail", "instance"} <= set(body), body
    if slug is not None:
        assert body["type"] == f"/problems/{slug}", body
    return body


# --- helpers appended for the rules tests ---------------------------------------------------
def create_entry(world: World, session: dict[str, Any], what: str, **fields: Any) -> dict[str, Any]:
    """POST a reading (``what="readings"``) or observation with exactly ``fields``."""
    body = {"measured_at": ago(1), **fields}
    response = world.nurse.post(f"/v1/sessions/{session['id']}/{what}", json=body)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def active_alerts(world: World, session: dict[str, Any]) -> list[dict[str, Any]]:
    """The session's open or acknowledged alerts, as GET /v1/alerts lists them."""
    params = {"session_id": session["id"], "status": "active"}
    response = world.nurse.get("/v1/alerts", params=params)
    assert response.status_code == 200, response.text
    return response.json()["items"]  # type: ignore[no-any-return]


def acknowledge_alert(
    world: World, alert: dict[str, Any], caller: Caller | None = None
) -> dict[str, Any]:
    response = (caller or world.clinician).post(f"/v1/alerts/{alert['id']}/acknowledge", json={})
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


# --- helpers appended for the recovery and summary tests ------------------------------------
BASELINE_VITALS = {"systolic": 124, "diastolic": 78, "heart_rate": 72}


def recovering(
    world: World,
    *,
    started: float = 100,
    ended: float = 40,
    route: str = "iv",
    baseline: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A session started ``started`` and ended ``ended`` minutes ago; baseline 5 min before start."""
    session = world.session(route=route)
    vitals = baseline or BASELINE_VITALS
    world.reading(session, measured_at=ago(started + 5), **vitals)
    world.transition(session, "start", at=ago(started))
    return world.transition(session, "end", at=ago(ended))


def after_end(session: dict[str, Any], minutes: float = 0, *, seconds: float = 0) -> str:
    """The bedside time ``minutes`` (and ``seconds``) after the session's infusion end."""
    return shifted(session["infusion_ended_at"], minutes, seconds=seconds)


def assess(
    world: World,
    session: dict[str, Any],
    minutes: float,
    severity: int = 0,
    *,
    seconds: float = 0,
    **fields: Any,
) -> dict[str, Any]:
    """A dissociation assessment ``minutes`` (and ``seconds``) after the infusion end."""
    measured_at = after_end(session, minutes, seconds=seconds)
    return post_observation(
        world, session, kind="dissociation", severity=severity, measured_at=measured_at, **fields
    )


# --- helpers appended for the alert, protocol and board tests ----------------------------------
def started(world: World, minutes_ago: float = 10, **session_fields: Any) -> dict[str, Any]:
    """An in-progress session with a 124/78 baseline taken before its start ``minutes_ago``."""
    session = world.session(**session_fields)
    world.reading(session, measured_at=ago(minutes_ago + 2), systolic=124, diastolic=78)
    return world.transition(session, "start", at=ago(minutes_ago))


def raised(reading: dict[str, Any], rule: str = "bp.systolic.high") -> dict[str, Any]:
    """The one alert about ``rule`` that posting ``reading`` opened or updated."""
    [alert] = [a for a in reading["alerts"] if a["rule"] == rule]
    return alert  # type: ignore[no-any-return]


def alert_items(caller: Caller, **params: Any) -> list[dict[str, Any]]:
    """``GET /v1/alerts`` with ``params``: the first page's items."""
    response = caller.get("/v1/alerts", params=params)
    assert response.status_code == 200, response.text
    return response.json()["items"]  # type: ignore[no-any-return]


def alert_action(caller: Caller, alert: dict[str, Any], action: str, **body: Any) -> httpx.Response:
    """``POST /v1/alerts/{id}/<action>`` (acknowledge, resolve) with ``body``."""
    return caller.post(f"/v1/alerts/{alert['id']}/{action}", json=body)


def metric_samples(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """The samples of metric ``name`` in a Prometheus text exposition, by their labels."""
    return {
        tuple(sorted(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    }
