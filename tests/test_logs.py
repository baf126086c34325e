"""The server's logs: JSON lines with request ids, and none of a patient's data."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import pytest

from tests.factories import World, ago, post_observation
from tests.live import live_server, live_world  # noqa: F401

NAME, MRN = "Philippa Quarrington-Vasquez", "MRN-7Q4-ZX81"
TEMPERATURE = 38.7
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-")


@pytest.fixture
def server_log_level() -> str:
    return "info"  # every request line, as a clinic would run it


def _records(tmp_path: Path) -> list[dict[str, Any]]:
    lines = (tmp_path / "server.log").read_text().splitlines()
    records = [json.loads(line) for line in lines if line.strip()]  # each line is one object
    assert records
    return records


def test_a_full_session_leaves_no_patient_data_in_the_logs(
    live_world: World,  # noqa: F811
    tmp_path: Path,
) -> None:
    world = live_world
    patient = world.patient(mrn=MRN, display_name=NAME)
    session = world.session(patient_id=patient["id"])
    secrets = {NAME, MRN, patient["id"], session["id"], world.nurse.key}
    world.reading(session, measured_at=ago(30), systolic=131, diastolic=83, heart_rate=77)
    world.transition(session, "start", at=ago(25))
    high = world.reading(
        session,
        measured_at=ago(20),
        systolic=187,
        diastolic=113,
        heart_rate=131,
        temperature_c=TEMPERATURE,
    )
    secrets |= {high["id"], *(a["id"] for a in high["alerts"])}
    post_observation(world, session, kind="nausea", severity=3, measured_at=ago(19))
    world.transition(session, "end", at=ago(10))
    for path in (
        f"/v1/patients/{patient['id']}",
        f"/v1/sessions/{session['id']}",
        f"/v1/sessions/{session['id']}/readings",
        f"/v1/sessions/{session['id']}/recovery",
        f"/v1/sessions/{session['id']}/summary",
        f"/fhir/R4/Patient/{patient['id']}",
        f"/fhir/R4/Observation?encounter=Encounter/{session['id']}",
        "/v1/alerts",
        "/v1/board",
    ):
        assert world.nurse.get(path).status_code == 200, path
    # Refusals and bad input too: a wrong value, another clinic, no key.
    bad = world.nurse.post(
        f"/v1/sessions/{session['id']}/readings",
        json={"measured_at": ago(1), "heart_rate": 999, "note": NAME},
    )
    assert bad.status_code == 422
    assert world.other_nurse.get(f"/v1/patients/{patient['id']}").status_code == 404
    assert world.client.get(f"/v1/patients/{patient['id']}").status_code == 401
    world.nurse.get(f"/v1/patients/{patient['id']}", headers={"X-Request-ID": "scrub-check-1"})

    # A request's line is written as its response goes out: wait for the last one, bounded.
    deadline = time.monotonic() + 15
    while "scrub-check-1" not in (text := (tmp_path / "server.log").read_text()):
        assert time.monotonic() < deadline, "the last request was never logged"
        time.sleep(0.1)
    records = _records(tmp_path)
    for secret in secrets:
        assert secret not in text, secret
    requests = [r for r in records if r["logger"] == "vigil.access"]
    assert len(requests) >= 20
    for record in requests:
        assert set(record) == {
            "time", "level", "logger", "message", "request_id", "method", "route", "status",
            "duration_ms",
        }, record  # fmt: skip
        assert not UUID.search(record["route"]), record  # the route as declared, not the path
    routes = {(r["method"], r["route"], r["status"]) for r in requests}
    assert ("POST", "/v1/sessions/{session_id}/readings", 201) in routes
    assert ("POST", "/v1/sessions/{session_id}/readings", 422) in routes
    assert ("GET", "/v1/patients/{patient_id}", 401) in routes
    assert any(r["request_id"] == "scrub-check-1" for r in requests)
    # No vital value in any field (the request lines' numbers are status and latency only).
    for record in records:
        for key, value in record.items():
            if key not in ("status", "duration_ms", "time", "request_id"):  # random hex
                assert str(TEMPERATURE) not in str(value) and "187" not in str(value), record
