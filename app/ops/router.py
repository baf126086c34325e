"""Health, readiness and metrics: no key needed, no patient data."""

import os

from fastapi import APIRouter, Request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from pydantic import BaseModel
from starlette.responses import Response

from app.config import MULTIPROCESS_METRICS
from app.migrate import current_revision, head_revision

router = APIRouter(tags=["operations"])


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    status: str
    database: str
    revision: str | None
    head: str | None


@router.get("/healthz", summary="Is the process alive")
async def healthz() -> Health:
    return Health(status="ok")


@router.get(
    "/readyz",
    summary="Is the database reachable and migrated to head",
    responses={503: {"model": Readiness, "description": "not ready"}},
)
async def readyz(request: Request) -> Response:
    head = head_revision()
    try:
        revision = current_revision(request.app.state.engine)
    except Exception:
        body = Readiness(status="unavailable", database="unreachable", revision=None, head=head)
        return Response(body.model_dump_json(), status_code=503, media_type="application/json")
    ready = revision == head
    body = Readiness(
        status="ok" if ready else "unavailable",
        database="migrated" if ready else "behind migrations",
        revision=revision,
        head=head,
    )
    return Response(
        body.model_dump_json(), status_code=200 if ready else 503, media_type="application/json"
    )


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={
        200: {"content": {"text/plain": {"schema": {"type": "string"}}}, "description": "metrics"}
    },
)
async def metrics() -> Response:
    return Response(_exposition(), media_type=CONTENT_TYPE_LATEST)


def _exposition() -> bytes:
    """This process's metrics, or with several workers the sum over all of them."""
    if not os.environ.get(MULTIPROCESS_METRICS):
        return generate_latest()
    registry = CollectorRegistry()
    MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return generate_latest(registry)
