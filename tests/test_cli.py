"""The `vigil` command, run as a clinic's administrator would run it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from app.main import create_app
from tests.databases import Template

ROOT = Path(__file__).resolve().parent.parent


def vigil(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "VIGIL_DATABASE_URL": database_url}
    return subprocess.run(
        [sys.executable, "-m", "app", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_first_admin_key_on_a_fresh_database_works_at_once(template: Template) -> None:
    url = template.empty()
    made = vigil(url, "keys", "create", "--role", "admin", "--label", "first")
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip()
    assert key.startswith("vgl_") and "\n" not in key  # the key alone on stdout
    with TestClient(create_app(Settings(database_url=url))) as client:
        response = client.get("/v1/api-keys", headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 200
    assert [k["label"] for k in response.json()["items"]] == ["first"]
    assert key not in response.text


def test_clinics_create_prints_an_id_that_keys_can_belong_to(template: Template) -> None:
    url = template.empty()
    clinic = vigil(url, "clinics", "create", "Riverside")
    assert clinic.returncode == 0, clinic.stderr
    clinic_id = clinic.stdout.strip()
    nurse = vigil(url, "keys", "create", "--role", "nurse", "--clinic", clinic_id)
    assert nurse.returncode == 0, nurse.stderr
    with TestClient(create_app(Settings(database_url=url))) as client:
        response = client.get(
            "/v1/sessions", headers={"Authorization": f"Bearer {nurse.stdout.strip()}"}
        )
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--role", "nurse"], "only admin keys may be global"),
        (["--role", "nurse", "--clinic", "not-a-uuid"], "not a clinic id"),
        (["--role", "nurse", "--clinic", "00000000-0000-0000-0000-000000000000"], "no such clinic"),
    ],
)
def test_keys_create_refuses_keys_that_could_not_work(
    template: Template, args: list[str], message: str
) -> None:
    result = vigil(template.empty(), "keys", "create", *args)
    assert result.returncode != 0
    assert result.stdout == ""
    assert message in result.stderr


@pytest.mark.parametrize("name", ["", "   ", "x" * 201])
def test_clinics_create_refuses_a_name_the_api_would_refuse(template: Template, name: str) -> None:
    url = template.empty()
    result = vigil(url, "clinics", "create", name)
    assert result.returncode != 0
    assert result.stdout == ""
    assert "1 to 200 characters" in result.stderr
    admin = vigil(url, "keys", "create", "--role", "admin").stdout.strip()
    with TestClient(create_app(Settings(database_url=url))) as client:
        listed = client.get("/v1/clinics", headers={"Authorization": f"Bearer {admin}"})
    assert listed.json()["items"] == []


def test_migrate_brings_a_fresh_database_to_head(template: Template) -> None:
    url = template.empty()
    assert vigil(url, "migrate").returncode == 0
    with TestClient(create_app(Settings(database_url=url))) as client:
        assert client.get("/readyz").json()["status"] == "ok"


def test_openapi_prints_the_committed_document() -> None:
    result = vigil("sqlite://", "openapi")
    assert result.returncode == 0
    assert json.loads(result.stdout) == json.loads((ROOT / "openapi.json").read_text())
