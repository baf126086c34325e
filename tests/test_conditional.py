"""Unchanged alert polls are answered early (app/alerts/conditional.py) exactly as the full
route would answer them, and everything else still goes the full way."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from app.config import Settings
from app.db import UTCDateTime, make_engine
from app.main import create_app
from tests.factories import World, ago, expect_problem, started

HIGH_BP = {"systolic": 185, "diastolic": 95}


def _etag(world: World, caller_headers: dict[str, str], query: str = "status=active") -> str:
    response = world.client.get(f"/v1/alerts?{query}", headers=caller_headers)
    assert response.status_code == 200, response.text
    return response.headers["etag"]


def _sql(world: World, statement: str, **params: object) -> None:
    engine = make_engine(world.database_url)
    with engine.begin() as conn:
        conn.execute(sa.text(statement), params)
    engine.dispose()


def test_an_unchanged_poll_is_304_with_its_etag_and_a_request_id(world: World) -> None:
    etag = _etag(world, world.dashboard.headers)
    response = world.dashboard.get(
        "/v1/alerts?status=active", headers={"If-None-Match": etag, "X-Request-ID": "poll-1"}
    )
    assert response.status_code == 304 and response.content == b""
    assert response.headers["etag"] == etag and response.headers["x-request-id"] == "poll-1"
    # Several tags, as caches send them.
    both = world.dashboard.get(
        "/v1/alerts?status=active", headers={"If-None-Match": f'W/"other", {etag}'}
    )
    assert both.status_code == 304
    # Another query is another answer.
    other = world.dashboard.get("/v1/alerts?status=open", headers={"If-None-Match": etag})
    assert other.status_code == 200 and other.headers["etag"] != etag


def _toggled(etag: str) -> str:
    """The same tag, weak if it was strong and strong if it was weak."""
    return etag.removeprefix("W/") if etag.startswith("W/") else f"W/{etag}"


@pytest.mark.parametrize("early", [True, False], ids=["answered-early", "full-route"])
def test_if_none_match_compares_weakly_and_star_matches_any_version(
    world: World, early: bool
) -> None:
    etag = _etag(world, world.dashboard.headers)
    for sent in (_toggled(etag), "*", f'"other", {_toggled(etag)}'):
        if not early:  # a key not used this minute is answered the full way
            _sql(world, "UPDATE api_keys SET last_used_at = NULL")
        response = world.dashboard.get("/v1/alerts?status=active", headers={"If-None-Match": sent})
        assert (response.status_code, response.headers["etag"]) == (304, etag), sent
    changed = world.dashboard.get("/v1/alerts?status=active", headers={"If-None-Match": '"x"'})
    assert changed.status_code == 200


def test_a_change_makes_the_next_poll_a_200_with_a_new_etag(world: World) -> None:
    etag = _etag(world, world.dashboard.headers)
    session = started(world)
    world.reading(session, measured_at=ago(5), **HIGH_BP)
    response = world.dashboard.get("/v1/alerts?status=active", headers={"If-None-Match": etag})
    assert response.status_code == 200 and response.headers["etag"] != etag
    assert {a["rule"] for a in response.json()["items"]} >= {"bp.systolic.high"}


def test_a_revoked_or_expired_key_gets_401_not_304(world: World) -> None:
    created = world.admin.post(
        "/v1/api-keys", json={"role": "dashboard", "clinic_id": str(world.clinic_id)}
    ).json()
    headers = {"Authorization": f"Bearer {created['key']}"}
    etag = _etag(world, headers)
    assert (
        world.client.get(
            "/v1/alerts?status=active", headers={**headers, "If-None-Match": etag}
        ).status_code
        == 304
    )
    _sql(world, "UPDATE api_keys SET expires_at = :at WHERE key_prefix = :prefix",
         at=datetime.now(UTC) - timedelta(seconds=1), prefix=created["key"][:12])  # fmt: skip
    expired = world.client.get(
        "/v1/alerts?status=active", headers={**headers, "If-None-Match": etag}
    )
    expect_problem(expired, 401, "unauthorized")
    assert world.admin.post(f"/v1/api-keys/{created['id']}/revoke").status_code == 200
    revoked = world.client.get(
        "/v1/alerts?status=active", headers={**headers, "If-None-Match": etag}
    )
    expect_problem(revoked, 401, "unauthorized")


def test_a_role_that_may_not_poll_gets_403_and_an_audit_entry(world: World) -> None:
    etag = _etag(world, world.dashboard.headers)
    response = world.admin.get(
        "/v1/alerts?status=active", headers={"If-None-Match": etag, "X-Request-ID": "no-poll"}
    )
    expect_problem(response, 403, "forbidden")
    entries = world.global_admin.get("/v1/audit", params={"limit": 500}).json()["items"]
    assert [e["action"] for e in entries if e["request_id"] == "no-poll"] == ["access.denied"]


def test_a_key_not_used_this_minute_has_its_use_recorded_by_a_conditional_poll(
    world: World,
) -> None:
    etag = _etag(world, world.dashboard.headers)
    old = datetime.now(UTC) - timedelta(hours=2)
    key_id = str(world.dashboard.key_id)
    _sql(world, "UPDATE api_keys SET last_used_at = :at WHERE key_prefix = :prefix",
         at=old, prefix=world.dashboard.key[:12])  # fmt: skip
    response = world.dashboard.get("/v1/alerts?status=active", headers={"If-None-Match": etag})
    assert response.status_code == 304
    [listed] = [k for k in world.admin.get("/v1/api-keys").json()["items"] if k["id"] == key_id]
    last = datetime.fromisoformat(listed["last_used_at"].replace("Z", "+00:00"))
    assert last > old + timedelta(hours=1)


def test_a_due_time_rule_is_judged_before_answering(world: World) -> None:
    session = started(world, minutes_ago=5)
    etag = _etag(world, world.dashboard.headers)
    # The session's time rules fall due (as if the clock had passed its next check).
    long_ago = datetime(2000, 1, 1, tzinfo=UTC)
    _sql(world, "UPDATE infusions SET next_check_at = :at", at=long_ago)
    response = world.dashboard.get("/v1/alerts?status=active", headers={"If-None-Match": etag})
    assert response.status_code == 304  # nothing was overdue yet
    # The full route ran: it judged the session and set its real next check.
    engine = make_engine(world.database_url)
    with engine.connect() as conn:
        [next_check] = conn.execute(
            sa.select(sa.column("next_check_at", UTCDateTime()))
            .select_from(sa.table("infusions"))
            .where(sa.column("status") == "in_progress")
        ).scalars()
    engine.dispose()
    assert next_check is not None and next_check > datetime.now(UTC), session["id"]


@pytest.fixture
def limited(world: World, settings: Settings) -> Iterator[TestClient]:
    strict = settings.model_copy(update={"rate_limit_per_minute": 3})
    with TestClient(create_app(strict), raise_server_exceptions=False) as client:
        yield client


def test_conditional_polls_count_against_the_rate_limit(world: World, limited: TestClient) -> None:
    headers = world.dashboard.headers
    first = limited.get("/v1/alerts?status=active", headers=headers)
    conditional = {**headers, "If-None-Match": first.headers["etag"]}
    assert [limited.get("/v1/alerts?status=active", headers=conditional).status_code
            for _ in range(2)] == [304, 304]  # fmt: skip
    refused = limited.get("/v1/alerts?status=active", headers=conditional)
    expect_problem(refused, 429, "rate-limited")


def test_metrics_count_early_304s_under_the_alerts_route(world: World) -> None:
    etag = _etag(world, world.dashboard.headers)
    for _ in range(3):
        world.dashboard.get("/v1/alerts?status=active", headers={"If-None-Match": etag})
    metrics = world.client.get("/metrics").text
    line = next(
        line for line in metrics.splitlines()
        if line.startswith("vigil_http_requests_total{")
        and 'route="/v1/alerts"' in line and 'status="304"' in line
    )  # fmt: skip
    assert float(line.rsplit(" ", 1)[1]) >= 3
