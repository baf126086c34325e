"""Keys that expire and record their use, denied requests in the audit trail, an append-only
trail, a per-key rate limit, and a safe answer when the database is gone."""

from __future__ import annotations

import socket
import sqlite3
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from app.auth.ratelimit import RateLimiter
from app.config import Settings
from app.db import make_engine
from app.main import create_app
from app.migrate import upgrade
from tests.factories import World, expect_problem, iso, metric_samples, parse_time
from tests.fhir_support import vital
from tests.live import live_server, live_world  # noqa: F401


def _audit(world: World, **params: Any) -> list[dict[str, Any]]:
    response = world.global_admin.get("/v1/audit", params={"limit": 500, **params})
    assert response.status_code == 200, response.text
    return response.json()["items"]  # type: ignore[no-any-return]


def _key(world: World, **body: Any) -> dict[str, Any]:
    response = world.admin.post(
        "/v1/api-keys", json={"role": "nurse", "clinic_id": str(world.clinic_id), **body}
    )
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def _listed(world: World, key_id: str) -> dict[str, Any]:
    [found] = [k for k in world.admin.get("/v1/api-keys").json()["items"] if k["id"] == key_id]
    return found  # type: ignore[no-any-return]


# --- keys: expiry and last use -----------------------------------------------------------------
def test_a_key_with_an_expiry_works_until_it_passes(world: World) -> None:
    expires = datetime.now(UTC) + timedelta(days=30)
    created = _key(world, expires_at=iso(expires))
    assert parse_time(created["expires_at"]) == expires
    assert parse_time(_listed(world, created["id"])["expires_at"]) == parse_time(
        created["expires_at"]
    )
    caller = {"Authorization": f"Bearer {created['key']}"}
    assert world.client.get("/v1/patients", headers=caller).status_code == 200
    # Time passes (set in the database rather than waited for).
    engine = make_engine(world.database_url)
    with engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE api_keys SET expires_at = :at WHERE key_prefix = :prefix"),
            {"at": datetime.now(UTC) - timedelta(seconds=1), "prefix": created["key"][:12]},
        )
    engine.dispose()
    body = expect_problem(world.client.get("/v1/patients", headers=caller), 401, "unauthorized")
    assert "expired" in body["detail"]


def test_a_key_cannot_be_created_already_expired(world: World) -> None:
    before = len(world.admin.get("/v1/api-keys").json()["items"])
    past = iso(datetime.now(UTC) - timedelta(minutes=1))
    response = world.admin.post(
        "/v1/api-keys",
        json={"role": "nurse", "clinic_id": str(world.clinic_id), "expires_at": past},
    )
    body = expect_problem(response, 422, "validation")
    assert body["errors"][0]["loc"] == ["body", "expires_at"]
    assert len(world.admin.get("/v1/api-keys").json()["items"]) == before


def test_a_keys_last_use_is_recorded_to_the_minute(world: World) -> None:
    created = _key(world)
    assert _listed(world, created["id"])["last_used_at"] is None
    started = datetime.now(UTC).replace(microsecond=0)
    caller = {"Authorization": f"Bearer {created['key']}"}
    assert world.client.get("/v1/patients", headers=caller).status_code == 200
    first = parse_time(_listed(world, created["id"])["last_used_at"])
    assert started <= first <= datetime.now(UTC)
    assert world.client.get("/v1/patients", headers=caller).status_code == 200
    assert parse_time(_listed(world, created["id"])["last_used_at"]) == first  # same minute
    assert "key" not in _listed(world, created["id"])  # never a secret in a listing


def test_a_revoked_key_is_refused_at_once(world: World) -> None:
    created = _key(world)
    caller = {"Authorization": f"Bearer {created['key']}"}
    assert world.client.get("/v1/patients", headers=caller).status_code == 200
    revoked = world.admin.post(f"/v1/api-keys/{created['id']}/revoke")
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    expect_problem(world.client.get("/v1/patients", headers=caller), 401, "unauthorized")


# --- denied requests in the audit trail --------------------------------------------------------
def test_a_failed_authentication_is_audited(world: World) -> None:
    response = world.client.get(
        "/v1/patients",
        headers={"Authorization": "Bearer vgl_not-a-key", "X-Request-ID": "bad-key-1"},
    )
    expect_problem(response, 401, "unauthorized")
    [entry] = [e for e in _audit(world) if e["request_id"] == "bad-key-1"]
    assert entry["action"] == "auth.failed" and entry["outcome"] == "denied"
    assert (entry["actor_key_id"], entry["role"]) == (None, None)
    assert (entry["resource_type"], entry["resource_id"]) == ("Route", "GET /v1/patients")


def test_a_forbidden_attempt_is_audited_with_who_tried(world: World) -> None:
    session = world.session()
    response = world.dashboard.post(
        f"/v1/sessions/{session['id']}/readings",
        json={"measured_at": iso(datetime.now(UTC)), "heart_rate": 70},
        headers={"X-Request-ID": "forbidden-1"},
    )
    expect_problem(response, 403, "forbidden")
    [entry] = [e for e in _audit(world) if e["request_id"] == "forbidden-1"]
    assert entry["action"] == "access.denied" and entry["outcome"] == "denied"
    assert entry["actor_key_id"] == str(world.dashboard.key_id)
    assert entry["role"] == "dashboard"
    assert entry["resource_id"] == "POST /v1/sessions/{session_id}/readings"
    assert world.readings(session) == []  # and nothing was stored


def test_a_forbidden_fhir_read_is_audited_too(world: World) -> None:
    response = world.admin.get(
        "/fhir/R4/Observation", params={"patient": "Patient/x"}, headers={"X-Request-ID": "f-1"}
    )
    assert response.status_code == 403
    assert response.json()["resourceType"] == "OperationOutcome"
    [entry] = [e for e in _audit(world) if e["request_id"] == "f-1"]
    assert entry["action"] == "access.denied" and entry["role"] == "admin"


# --- the trail is append-only ------------------------------------------------------------------
@pytest.mark.parametrize(
    "statement", ["UPDATE audit_events SET outcome = 'x'", "DELETE FROM audit_events"]
)
def test_the_database_refuses_to_change_or_delete_audit_entries(
    world: World, statement: str
) -> None:
    world.patient()  # at least one entry
    entries = _audit(world)
    assert entries
    engine = make_engine(world.database_url)
    try:
        with pytest.raises(sa.exc.DBAPIError, match="append-only"), engine.begin() as conn:
            conn.execute(sa.text(statement))
    finally:
        engine.dispose()
    assert _audit(world) == entries


# --- the rate limit ------------------------------------------------------------------------------
@pytest.fixture
def limited(world: World, settings: Settings) -> Iterator[TestClient]:
    """The same database served with a limit of 3 requests a minute per key."""
    strict = settings.model_copy(update={"rate_limit_per_minute": 3})
    with TestClient(create_app(strict), raise_server_exceptions=False) as client:
        yield client


def test_a_key_over_its_rate_limit_gets_429_with_retry_after(
    world: World, limited: TestClient
) -> None:
    nurse = world.nurse.headers
    assert [limited.get("/v1/patients", headers=nurse).status_code for _ in range(3)] == [200] * 3
    refused = limited.get("/v1/patients", headers=nurse)
    expect_problem(refused, 429, "rate-limited")
    assert int(refused.headers["Retry-After"]) >= 1
    # Another key has its own budget.
    assert limited.get("/v1/patients", headers=world.clinician.headers).status_code == 200


def test_the_rate_limit_refills_at_its_rate() -> None:
    limiter = RateLimiter(per_minute=60)  # one a second, bursts of 60
    key = __import__("uuid").uuid4()
    assert all(limiter.take(key, now=0.0) is None for _ in range(60))
    assert limiter.take(key, now=0.0) == 1
    assert limiter.take(key, now=1.0) is None  # one second later: one more
    assert limiter.take(key, now=1.0) == 1
    assert RateLimiter(per_minute=0).take(key, now=0.0) is None  # 0 turns it off


# --- the database is gone -------------------------------------------------------------------------
UNREACHABLE = {
    "sqlite": "sqlite:////nonexistent-directory/vigil.db",
    "postgresql": "postgresql+psycopg://vigil:secret@127.0.0.1:9/vigil",
}


@pytest.mark.parametrize("backend", list(UNREACHABLE))
def test_an_unreachable_database_is_a_safe_503(backend: str) -> None:
    settings = Settings(database_url=UNREACHABLE[backend])
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        response = client.get("/v1/patients", headers={"Authorization": "Bearer vgl_any"})
        body = expect_problem(response, 503, "unavailable")
        assert int(response.headers["Retry-After"]) >= 1
        ready = client.get("/readyz")
        poll = client.get(
            "/v1/alerts", headers={"Authorization": "Bearer vgl_any", "If-None-Match": 'W/"x"'}
        )
        expect_problem(poll, 503, "unavailable")  # the early answer to polls steps aside
    text = response.text.lower()
    for internal in (
        "traceback",
        "sqlite",
        "psycopg",
        "select",
        "nonexistent",
        "9/vigil",
        "secret",
    ):
        assert internal not in text, (internal, body)
    assert ready.status_code == 503
    assert ready.json()["database"] == "unreachable" and "secret" not in ready.text


def test_a_sqlite_database_locked_past_the_busy_timeout_is_a_safe_503(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/locked.db"
    upgrade(url)
    settings = Settings(database_url=url, sqlite_busy_timeout_s=0.3)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        holder = sqlite3.connect(tmp_path / "locked.db", isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")  # another process writing, and not letting go
        try:
            response = client.get("/v1/patients", headers={"Authorization": "Bearer vgl_any"})
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        body = expect_problem(response, 503, "unavailable")
        assert int(response.headers["Retry-After"]) >= 1
        assert "sqlite" not in response.text.lower() and "begin" not in response.text.lower()
        # Once the lock is gone, the same process answers as usual (401 for the unknown key).
        expect_problem(client.get("/v1/patients", headers={"Authorization": "Bearer x"}), 401)
    assert body["status"] == 503


# --- slow clients --------------------------------------------------------------------------
def test_a_body_still_arriving_holds_no_database_lock(live_world: World) -> None:  # noqa: F811
    """A gateway on a slow link sends its Observation in pieces; meanwhile the clinic goes on.

    The body is read in full before the key is looked up, so the half-sent request holds no
    transaction: a reading posted on the other side answers at once on either backend.
    """
    world = live_world
    session = world.session(state="in_progress")
    body = orjson.dumps(vital(session, "8867-4", 84))
    url = httpx.URL(str(world.client.base_url))
    with socket.create_connection((url.host, url.port), timeout=30) as slow:
        head = (
            f"POST /fhir/R4/Observation HTTP/1.1\r\nHost: {url.host}\r\n"
            f"Authorization: Bearer {world.ehr.key}\r\nContent-Type: application/fhir+json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        ).encode()
        slow.sendall(head + body[:20])
        time.sleep(0.5)  # the server has the headers and waits for the rest
        with httpx.Client(base_url=str(url), timeout=5) as other:  # SQLite's lock waits 10 s
            for _ in range(2):  # both workers
                reading = other.post(
                    f"/v1/sessions/{session['id']}/readings",
                    headers=world.nurse.headers,
                    json={"measured_at": iso(datetime.now(UTC)), "heart_rate": 80},
                )
                assert reading.status_code == 201, reading.text
        slow.sendall(body[20:])
        answer = slow.makefile("rb").readline()
    assert answer.startswith(b"HTTP/1.1 201"), answer


def test_a_client_gone_mid_body_is_not_a_server_error(live_world: World) -> None:  # noqa: F811
    world = live_world
    session = world.session(state="in_progress")
    body = orjson.dumps(vital(session, "8867-4", 84))
    url = httpx.URL(str(world.client.base_url))
    for _ in range(4):  # on either worker
        with socket.create_connection((url.host, url.port), timeout=30) as gone:
            gone.sendall(
                f"POST /fhir/R4/Observation HTTP/1.1\r\nHost: {url.host}\r\n"
                f"Authorization: Bearer {world.ehr.key}\r\nContent-Type: application/fhir+json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n".encode()
                + body[:20]
            )
            time.sleep(0.2)
    time.sleep(0.5)
    metrics = world.client.get("/metrics").text
    statuses = {
        dict(labels)["status"]
        for labels in metric_samples(metrics, "vigil_http_requests_total")
        if dict(labels)["route"] == "/fhir/R4/Observation"
    }
    assert statuses == {"499"}, statuses  # counted as the client's doing, not a 500
    assert len(world.readings(session)) == 1  # the baseline only
