"""The committed contracts agree with the code: openapi.json, and the migrations with the models."""

from pathlib import Path

import orjson
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from fastapi.testclient import TestClient

from app.main import create_app
from app.migrate import downgrade, upgrade
from app.models import metadata
from tests.databases import Template
from tests.factories import expect_problem

ROOT = Path(__file__).resolve().parent.parent


def test_committed_openapi_matches_the_app() -> None:
    committed = orjson.loads((ROOT / "openapi.json").read_bytes())
    assert committed == create_app().openapi(), (
        "openapi.json is stale: run `vigil openapi > openapi.json`"
    )


def test_every_route_has_a_summary_and_documents_its_errors() -> None:
    schema = create_app().openapi()
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            assert operation.get("summary"), f"{method} {path} has no summary"
            if path.startswith("/v1"):
                assert {"401", "403"} <= set(operation["responses"]), f"{method} {path}"
                for status, response in operation["responses"].items():
                    if int(status) >= 400:
                        assert "application/problem+json" in response["content"]


def test_migrations_build_exactly_the_models(database_url: str) -> None:
    engine = sa.create_engine(database_url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    engine.dispose()
    assert diff == []


def test_every_migration_downgrades_and_upgrades_again(template: Template) -> None:
    url = template.empty()
    upgrade(url)
    downgrade(url, "base")
    upgrade(url)
    engine = sa.create_engine(url)
    assert "readings" in sa.inspect(engine).get_table_names()
    engine.dispose()


def test_readyz_fails_while_the_database_is_behind_its_migrations(template: Template) -> None:
    from app.config import Settings

    url = template.empty()
    with TestClient(create_app(Settings(database_url=url))) as client:
        behind = client.get("/readyz")
        problem = expect_problem(behind, 503, "unavailable")
        assert problem["database"] == "behind migrations" and problem["head"]
        assert "vigil migrate" in problem["detail"]
        assert int(behind.headers["Retry-After"]) >= 1
        assert client.head("/readyz").status_code == 503  # probes may use HEAD
        upgrade(url)
        response = client.get("/readyz")
        assert response.status_code == 200
        assert response.json()["status"] == "ok"
        assert response.json()["revision"] == response.json()["head"]
        head = client.head("/readyz")
        assert head.status_code == 200 and head.content == b""
        assert client.head("/healthz").status_code == 200
