"""`vigil demo`: a demo clinic whose keys work and whose sessions show every state."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient

from app.auth.roles import Role
from app.config import Settings
from app.main import create_app
from tests.databases import Template
from tests.test_cli import vigil


@dataclass
class DemoRun:
    clinic_id: str
    keys: dict[str, str]


@dataclass
class Demo:
    url: str
    client: TestClient
    made: DemoRun


def run_demo(url: str) -> DemoRun:
    result = vigil(url, "demo")
    assert result.returncode == 0, result.stderr
    lines = [line.split() for line in result.stdout.splitlines() if not line.startswith("#")]
    printed = dict(lines)
    clinic_id = printed.pop("clinic")
    return DemoRun(clinic_id, printed)


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture(scope="module")
def demo(template: Template) -> Iterator[Demo]:
    url = template.empty()  # the demo migrates a fresh database itself
    made = run_demo(url)
    with TestClient(create_app(Settings(database_url=url))) as client:
        yield Demo(url, client, made)


def test_demo_prints_the_clinic_and_a_working_key_for_every_role(
    demo: Demo,
) -> None:
    client, made = demo.client, demo.made
    assert set(made.keys) == {role.value for role in Role}
    admin = client.get("/v1/api-keys", headers=auth(made.keys["admin"]))
    assert admin.status_code == 200
    assert {k["clinic_id"] for k in admin.json()["items"]} == {made.clinic_id}
    assert {k["role"] for k in admin.json()["items"]} == set(made.keys)
    for role in ("nurse", "clinician", "dashboard", "ehr"):
        response = client.get("/v1/sessions", headers=auth(made.keys[role]))
        assert response.status_code == 200, role
    assert client.get("/v1/board", headers=auth(made.keys["dashboard"])).status_code == 200
    assert client.get("/v1/protocol", headers=auth(made.keys["clinician"])).status_code == 200


def test_demo_sessions_are_in_every_state_with_readings_of_every_phase(
    demo: Demo,
) -> None:
    client, made = demo.client, demo.made
    nurse = auth(made.keys["nurse"])
    sessions = client.get("/v1/sessions", headers=nurse).json()["items"]
    assert Counter(s["status"] for s in sessions) == {
        "scheduled": 1,
        "in_progress": 2,
        "recovery": 2,
        "discharged": 1,
    }
    assert all(s["baseline"] is not None for s in sessions)
    phases: Counter[str] = Counter()
    for session in sessions:
        readings = client.get(f"/v1/sessions/{session['id']}/readings", headers=nurse)
        phases.update(r["phase"] for r in readings.json()["items"])
    assert set(phases) == {"pre", "intra", "post"}
    board = client.get("/v1/board", headers=auth(made.keys["dashboard"])).json()["items"]
    assert len(board) == 4  # the active sessions


def test_demo_has_active_alerts_and_a_slow_recovery(demo: Demo) -> None:
    client, made = demo.client, demo.made
    nurse = auth(made.keys["nurse"])
    active = client.get("/v1/alerts?status=active", headers=nurse).json()["items"]
    assert ("bp.systolic.high", "high") in {(a["rule"], a["severity"]) for a in active}
    assert "dissociation.unresolved" in {a["rule"] for a in active}
    in_recovery = client.get("/v1/sessions?status=recovery", headers=nurse).json()["items"]
    statuses = {
        client.get(f"/v1/sessions/{s['id']}/recovery", headers=nurse).json()["status"]
        for s in in_recovery
    }
    assert statuses == {"resolved_within_30", "unresolved_overdue"}


def test_demo_alerts_stand_for_what_its_patients_went_through_not_for_the_sync(
    demo: Demo,
) -> None:
    """Entries first, then the transitions dated back: the delay of a late sync raises nothing.

    The overdue alerts left are the scenarios' own gaps between readings (of under 40 minutes),
    not the hour or two between a session's start and its sync."""
    client, made = demo.client, demo.made
    every = client.get("/v1/alerts?limit=500", headers=auth(made.keys["nurse"])).json()["items"]
    overdue = [a for a in every if a["rule"] == "vitals.overdue"]
    assert len(overdue) <= 2 and all(a["value"] < 40 for a in overdue), overdue
    rules = {a["rule"] for a in every}
    assert {"bp.rise_from_baseline", "sedation.deep", "dissociation.severe"} <= rules


def test_demo_run_again_adds_a_second_clinic_and_leaves_the_first_alone(demo: Demo) -> None:
    second = run_demo(demo.url)
    assert second.clinic_id != demo.made.clinic_id
    for made in (demo.made, second):
        sessions = demo.client.get("/v1/sessions", headers=auth(made.keys["nurse"]))
        assert sessions.status_code == 200
        assert len(sessions.json()["items"]) == 6
