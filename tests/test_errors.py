"""Every error is problem+json without internals; request ids, body limit, health and metrics."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone

import httpx
import pytest
from fastapi.testclient import TestClient

from app.alerts.stream import parse_last_event_id
from app.config import Settings
from app.main import create_app
from app.schemas import encode_cursor
from tests.factories import World, ago, expect_problem

MIB = 1024 * 1024
SECRET = "secret internal detail"


# --- routing errors --------------------------------------------------------------------------
@pytest.mark.parametrize(
    "path", ["/nope", "/v1/nope", "/v1/patients/x/y/z", "/v2/patients", "/v1/patients/"]
)
def test_an_unknown_route_is_a_404_problem(world: World, path: str) -> None:
    for response in (world.client.get(path), world.nurse.get(path), world.nurse.post(path)):
        body = expect_problem(response, 404, "not-found")
        assert body["instance"] == path


def test_an_unknown_id_is_a_404_problem(world: World) -> None:
    response = world.nurse.get(f"/v1/patients/{uuid.uuid4()}")
    expect_problem(response, 404, "not-found")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("DELETE", "/v1/patients/{id}"),
        ("PUT", "/v1/patients/{id}"),
        ("DELETE", "/v1/sessions/{id}"),
        ("PATCH", "/v1/sessions"),
        ("GET", "/v1/sessions/{id}/start"),
        ("DELETE", "/v1/readings/{id}/entered-in-error"),
        ("POST", "/healthz"),
    ],
)
def test_a_wrong_method_is_a_405_problem(world: World, method: str, path: str) -> None:
    url = path.replace("{id}", str(uuid.uuid4()))
    for response in (world.nurse.request(method, url), world.client.request(method, url)):
        expect_problem(response, 405)
        assert response.headers.get("allow"), response.headers


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("DELETE", "/v1/sessions", "GET, POST"),
        ("PUT", "/v1/sessions", "GET, POST"),
        ("DELETE", "/v1/patients", "GET, POST"),
        ("DELETE", "/v1/patients/{id}", "GET, PATCH"),
        ("PUT", "/v1/patients/{id}", "GET, PATCH"),
        ("DELETE", "/v1/protocol", "GET, PUT"),
        ("POST", "/v1/protocol", "GET, PUT"),
        ("DELETE", "/v1/sessions/{id}/readings", "GET, POST"),
        ("PUT", "/v1/sessions/{id}/observations", "GET, POST"),
        ("DELETE", "/v1/api-keys", "GET, POST"),
        ("DELETE", "/fhir/R4/Observation", "GET, POST"),
        ("DELETE", "/v1/sessions/{id}", "GET"),
        ("GET", "/v1/sessions/{id}/start", "POST"),
        ("POST", "/healthz", "GET, HEAD"),
    ],
)
def test_a_405_allows_every_method_the_path_serves(
    world: World, method: str, path: str, allow: str
) -> None:
    """RFC 9110: Allow lists all of them, not only those of the first route that matched."""
    url = path.replace("{id}", str(uuid.uuid4()))
    for response in (world.nurse.request(method, url), world.client.request(method, url)):
        assert response.status_code == 405, response.text
        assert response.headers["allow"] == allow


# --- request bodies --------------------------------------------------------------------------
def test_a_body_over_one_mib_is_refused_and_nothing_is_stored(world: World) -> None:
    body = {"mrn": "BIG-1", "display_name": "x" * MIB}
    expect_problem(world.nurse.post("/v1/patients", json=body), 413, "payload-too-large")

    session = world.session()
    reading = {"measured_at": ago(1), "heart_rate": 70, "device_id": "d" * 100}
    big_batch = {"readings": [reading] * 500, "pad": "p" * MIB}
    response = world.nurse.post(f"/v1/sessions/{session['id']}/readings:batch", json=big_batch)
    expect_problem(response, 413, "payload-too-large")

    assert world.nurse.get("/v1/patients", params={"mrn": "BIG-1"}).json()["items"] == []
    assert world.readings(session) == []


def test_a_streamed_body_over_one_mib_is_refused_too(world: World) -> None:
    """No Content-Length (chunked): the limit holds on the bytes actually received."""

    def chunks() -> Iterator[bytes]:
        yield b'{"mrn": "BIG-2", "display_name": "'
        for _ in range(20):
            yield b"x" * (64 * 1024)
        yield b'"}'

    response = world.nurse.post(
        "/v1/patients", content=chunks(), headers={"Content-Type": "application/json"}
    )
    expect_problem(response, 413, "payload-too-large")
    assert world.nurse.get("/v1/patients", params={"mrn": "BIG-2"}).json()["items"] == []


def test_a_body_of_exactly_one_mib_is_read(world: World) -> None:
    head, tail = b'{"mrn": "BIG-3", "display_name": "', b'"}'
    content = head + b"x" * (MIB - len(head) - len(tail)) + tail
    assert len(content) == MIB
    response = world.nurse.post(
        "/v1/patients", content=content, headers={"Content-Type": "application/json"}
    )
    expect_problem(response, 422, "validation")  # read and validated: the name is too long


@pytest.mark.parametrize(
    "content",
    [b'{"mrn": "M-1", "display_name": ', b"not json", b"{'mrn': 'M-1'}", b"\xff\xfe",
     b'{"mrn": "\xff\xfe", "display_name": "x"}', b'{"a": ' * 5000 + b"1" + b"}" * 5000,
     b"[" * 3000 + b"]" * 3000],
)  # fmt: skip
def test_malformed_json_is_a_422_problem(world: World, content: bytes) -> None:
    response = world.nurse.post(
        "/v1/patients", content=content, headers={"Content-Type": "application/json"}
    )
    body = expect_problem(response, 422, "validation")
    assert isinstance(body.get("errors"), list) and body["errors"], body
    assert all({"loc", "msg"} <= set(error) for error in body["errors"])
    assert world.nurse.get("/v1/patients").json()["items"] == []


@pytest.mark.parametrize("path", ["/v1/patients", "/v1/sessions/{id}/readings", "/v1/protocol"])
def test_the_caller_is_checked_before_the_body(world: World, path: str) -> None:
    """Malformed JSON from no key is a 401, from a key without the right a 403: who may ask
    is answered before what was asked."""
    session = world.session()
    url = path.replace("{id}", session["id"])
    method = "PUT" if path == "/v1/protocol" else "POST"
    headers = {"Content-Type": "application/json"}
    expect_problem(world.client.request(method, url, content=b"{bad", headers=headers), 401)
    denied = world.dashboard.request(method, url, content=b"{bad", headers=headers)
    expect_problem(denied, 403, "forbidden")
    expect_problem(world.clinician.request(method, url, content=b"{bad", headers=headers), 422)


def test_unknown_fields_and_naive_timestamps_are_422_problems(world: World) -> None:
    response = world.nurse.post(
        "/v1/patients", json={"mrn": "M-2", "display_name": "A", "colour": "blue"}
    )
    body = expect_problem(response, 422, "validation")
    assert any("colour" in error["loc"] for error in body["errors"]), body
    session = world.session()
    response = world.nurse.post(
        f"/v1/sessions/{session['id']}/readings",
        json={"measured_at": "2026-11-21T14:05:00", "heart_rate": 70},
    )
    body = expect_problem(response, 422, "validation")
    assert any("measured_at" in error["loc"] for error in body["errors"]), body
    assert world.readings(session) == []


@pytest.mark.parametrize(
    "moment",
    [1795316315, "1795316315", 1795316315.5, "2026-11-21T14:05Z", "2026-11-21", "14:05:00Z",
     "2026-11-21T14:05:00+0100", "Sat, 21 Nov 2026 14:05:00 GMT", True],
)  # fmt: skip
def test_a_timestamp_must_be_rfc_3339_text_with_seconds_and_an_offset(
    world: World, moment: object
) -> None:
    session = world.session()
    response = world.nurse.post(
        f"/v1/sessions/{session['id']}/readings", json={"measured_at": moment, "heart_rate": 70}
    )
    body = expect_problem(response, 422, "validation")
    assert [e["loc"] for e in body["errors"]] == [["body", "measured_at"]], body
    assert "RFC 3339" in body["errors"][0]["msg"]
    assert world.readings(session) == []


@pytest.mark.parametrize(
    ("spelling", "offset"),
    [("%Y-%m-%dT%H:%M:%SZ", 0), ("%Y-%m-%dt%H:%M:%Sz", 0), ("%Y-%m-%d %H:%M:%S.000000+01:00", 60),
     ("%Y-%m-%dT%H:%M:%S-05:30", -330)],
)  # fmt: skip
def test_rfc_3339_spellings_are_accepted(world: World, spelling: str, offset: int) -> None:
    session = world.session()
    moment = (datetime.now(UTC) - timedelta(hours=1)).replace(microsecond=0)
    local = moment.astimezone(timezone(timedelta(minutes=offset)))
    body = {"measured_at": local.strftime(spelling), "heart_rate": 70}
    response = world.nurse.post(f"/v1/sessions/{session['id']}/readings", json=body)
    assert response.status_code == 201, response.text
    assert response.json()["measured_at"] == moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.mark.parametrize(
    ("body", "loc"),
    [({"kind": "nausea", "severity": 4}, ["body", "severity"]),
     ({"kind": "other", "severity": 1, "foo": 1}, ["body", "foo"]),
     ({"kind": "sedation", "moaas": 6}, ["body", "moaas"]),
     ({"kind": "sedation", "severity": 1, "moaas": 4}, ["body", "severity"]),
     ({"kind": "dissociation", "severity": 1, "cadss": 93}, ["body", "cadss"]),
     ({"kind": "yawning", "severity": 1}, ["body", "kind"])],
)  # fmt: skip
def test_an_observation_error_names_the_field_as_sent(
    world: World, body: dict[str, object], loc: list[str]
) -> None:
    session = world.session()
    response = world.nurse.post(
        f"/v1/sessions/{session['id']}/observations", json={"measured_at": ago(1), **body}
    )
    problem = expect_problem(response, 422, "validation")
    assert [e["loc"] for e in problem["errors"]] == [loc], problem


# --- unexpected errors -----------------------------------------------------------------------
@pytest.fixture
def boom_client(settings: Settings) -> Iterator[TestClient]:
    """An app with one extra route (in this test only) that fails unexpectedly."""
    app = create_app(settings)

    async def boom() -> None:
        raise RuntimeError(SECRET)

    app.add_api_route("/test-only/boom", boom, methods=["GET", "POST"])
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def test_an_unexpected_exception_is_a_500_problem_without_internals(
    boom_client: TestClient,
) -> None:
    for response in (
        boom_client.get("/test-only/boom"),
        boom_client.post("/test-only/boom", headers={"X-Request-ID": "boom-1"}),
    ):
        assert response.status_code == 500
        assert response.headers["content-type"].startswith("application/problem+json")
        body = response.json()
        assert body["status"] == 500 and body["type"].startswith("/problems/")
        assert {"type", "title", "status", "detail", "instance"} <= set(body)
        for leak in (SECRET, "Traceback", "RuntimeError", "app/", ".py"):
            assert leak not in response.text, leak
    assert boom_client.get("/healthz").status_code == 200  # the app keeps serving


def test_a_500_carries_a_request_id_too(boom_client: TestClient) -> None:
    response = boom_client.get("/test-only/boom", headers={"X-Request-ID": "boom-2"})
    assert response.status_code == 500
    assert response.headers.get("x-request-id") == "boom-2"
    assert boom_client.get("/test-only/boom").headers.get("x-request-id")


# --- request ids -----------------------------------------------------------------------------
def _responses(world: World, headers: dict[str, str]) -> dict[str, httpx.Response]:
    """One response of each kind: success, 401, 404, 405, 413, 422, and an unkeyed success."""
    return {
        "200": world.nurse.get("/v1/patients", headers=headers),
        "201": world.nurse.post(
            "/v1/patients",
            json={"mrn": uuid.uuid4().hex, "display_name": "A"},
            headers=headers,
        ),
        "healthz": world.client.get("/healthz", headers=headers),
        "401": world.client.get("/v1/patients", headers=headers),
        "404": world.nurse.get(f"/v1/patients/{uuid.uuid4()}", headers=headers),
        "405": world.nurse.request("DELETE", "/v1/patients", headers=headers),
        "413": world.nurse.post(
            "/v1/patients", json={"mrn": "X", "display_name": "x" * MIB}, headers=headers
        ),
        "422": world.nurse.post("/v1/patients", json={"mrn": ""}, headers=headers),
    }


def test_every_response_carries_a_request_id(world: World) -> None:
    responses = _responses(world, {})
    seen = set()
    for kind, response in responses.items():
        assert str(response.status_code) == kind or kind == "healthz", (kind, response.text)
        request_id = response.headers.get("x-request-id")
        assert request_id, f"{kind} has no X-Request-ID"
        seen.add(request_id)
    assert len(seen) == len(responses), "request ids are not unique"


@pytest.mark.parametrize(
    "request_id",
    ["tablet-7:42", "3f1c6a0e-8b1d-4c1e-9a55-0c2f5e1d9b7a", "Root=1-67891233-abcdef/a.b~c d",
     "x" * 128],
)  # fmt: skip
def test_a_client_request_id_is_echoed(world: World, request_id: str) -> None:
    for kind, response in _responses(world, {"X-Request-ID": request_id}).items():
        assert response.headers.get("x-request-id") == request_id, kind


@pytest.mark.parametrize("request_id", ["x" * 129, "tab\there", ""])
def test_a_request_id_too_long_or_with_control_characters_is_replaced(
    world: World, request_id: str
) -> None:
    response = world.nurse.get("/v1/patients", headers={"X-Request-ID": request_id})
    assert response.headers["x-request-id"] not in (request_id, ""), response.headers


# --- operations ------------------------------------------------------------------------------
def test_health_readiness_and_metrics_need_no_key(client: TestClient) -> None:
    client.get("/v1/patients")  # at least one counted request
    healthz = client.get("/healthz")
    assert healthz.status_code == 200, healthz.text
    assert healthz.headers.get("x-request-id")
    readyz = client.get("/readyz")
    assert readyz.status_code == 200, readyz.text
    assert readyz.json()["status"] == "ok"
    metrics = client.get("/metrics")
    assert metrics.status_code == 200, metrics.text
    assert metrics.headers["content-type"].startswith("text/plain")
    assert "vigil_http_requests_total" in metrics.text
    assert 'route="/v1/patients"' in metrics.text  # counted by route template, not by raw path
    for path in ("/healthz", "/readyz", "/metrics"):
        bad_key = client.get(path, headers={"Authorization": "Bearer vgl_not-a-key"})
        assert bad_key.status_code == 200, path


def test_metrics_never_show_ids_from_paths(world: World) -> None:
    patient = world.patient()
    world.nurse.get(f"/v1/patients/{patient['id']}")
    text = world.client.get("/metrics").text
    assert patient["id"] not in text
    assert 'route="/v1/patients/{patient_id}"' in text


@pytest.mark.parametrize("moment", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_a_timestamp_beyond_the_calendar_in_utc_is_a_422_not_a_500(
    world: World, moment: str
) -> None:
    session = world.session(state="in_progress")
    for path, body in (
        (f"/v1/sessions/{session['id']}/readings", {"measured_at": moment, "heart_rate": 70}),
        (f"/v1/sessions/{session['id']}/observations",
         {"measured_at": moment, "kind": "sedation", "moaas": 4}),
        (f"/v1/sessions/{session['id']}/end", {"at": moment}),
    ):  # fmt: skip
        response = world.nurse.post(path, json=body)
        body_ = expect_problem(response, 422, "validation")
        assert "out of range" in body_["detail"], body_
    assert world.transition(session, "end")["status"] == "recovery"  # nothing changed before


# --- cursors -----------------------------------------------------------------------------------
@pytest.mark.parametrize("number", [str(2**63), "9" * 40, "²", "-1", "1e3"])
def test_a_cursor_number_beyond_the_database_or_not_a_number_is_a_422(
    world: World, number: str
) -> None:
    session = world.session(state="in_progress")
    cursor = encode_cursor(number)
    for caller, path, params in (
        (world.nurse, "/v1/alerts", {"cursor": cursor}),
        (world.nurse, "/v1/alerts", {"changed_after": cursor}),
        (world.global_admin, "/v1/audit", {"cursor": cursor}),
        (world.nurse, "/fhir/R4/Observation",
         {"encounter": f"Encounter/{session['id']}",
          "_cursor": encode_cursor(ago(0), uuid.uuid4(), number, 0)}),
    ):  # fmt: skip
        response = caller.get(path, params=params)
        assert response.status_code == 422, (path, response.text)
    assert encode_cursor(2**63 - 1) != cursor
    assert world.nurse.get("/v1/alerts", params={"cursor": encode_cursor(2**63 - 1)}).json() == {
        "items": [], "next_cursor": None,
        "changes_cursor": world.nurse.get("/v1/alerts").json()["changes_cursor"],
    }  # fmt: skip


@pytest.mark.parametrize("number", [str(2**63), "²", "x"])
def test_a_last_event_id_that_names_no_change_starts_the_stream_from_now(number: str) -> None:
    assert parse_last_event_id(encode_cursor(number)) is None
    assert parse_last_event_id(encode_cursor(2**63 - 1)) == 2**63 - 1
