"""Every test runs against real databases built by Alembic: SQLite, and PostgreSQL when present.

Set VIGIL_TEST_REQUIRE_POSTGRES=1 (CI does) to make missing PostgreSQL binaries a failure.
VIGIL_TEST_BACKENDS=sqlite (or postgresql) limits the run to one backend.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from app.main import create_app
from tests.databases import Template, postgres_bindir, postgres_cluster
from tests.factories import World


def _backends() -> list[str]:
    wanted = os.environ.get("VIGIL_TEST_BACKENDS")
    if wanted:
        return wanted.split(",")
    if postgres_bindir() is not None or os.environ.get("VIGIL_TEST_REQUIRE_POSTGRES") == "1":
        return ["sqlite", "postgresql"]
    return ["sqlite"]


@pytest.fixture(scope="session", params=_backends())
def template(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Template]:
    workdir: Path = tmp_path_factory.mktemp(request.param)
    if request.param == "sqlite":
        yield Template("sqlite", workdir)
        return
    if postgres_bindir() is None:
        pytest.fail("PostgreSQL is required (VIGIL_TEST_REQUIRE_POSTGRES=1) but not installed")
    with postgres_cluster() as server_url:
        yield Template("postgresql", workdir, server_url)


@pytest.fixture
def database_url(template: Template) -> str:
    return template.fresh()


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(database_url=database_url)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings), raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def world(client: TestClient, database_url: str) -> World:
    return World.create(client, database_url)


@pytest.fixture
def server_log_level() -> str:
    """The log level of a live server (tests/live.py); a test module may override it."""
    return "warning"
