"""Health, readiness and metrics: no key needed, no patient data."""

import os
from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import APIRouter, Request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from pydantic import BaseModel
from starlette.responses import Response

from app.config import MULTIPROCESS_METRICS
from app.errors import Problem, ServiceUnavailable, problem_response
from app.migrate import current_revision, head_revision

router = APIRouter(tags=["operations"])


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    status: str
    database: str
    revision: str | None
    head: str | None


class NotReady(Problem):
    """The 503 problem of ``/readyz``, with the state of the database beside it."""

    database: str
    revision: str | None = None
    head: str | None = None


Endpoint = TypeVar("Endpoint", bound=Callable[..., Any])


def _probe(path: str, summary: str, **documented: Any) -> Callable[[Endpoint], Endpoint]:
    """GET ``path``, and HEAD for the load balancers and orchestrators that probe with it."""

    def register(endpoint: Endpoint) -> Endpoint:
        router.get(path, summary=summary, **documented)(endpoint)
        router.head(path, summary=f"{summary} (status only)", **documented)(endpoint)
        return endpoint

    return register


@_probe("/healthz", "Is the process alive")
async def healthz() -> Health:
    return Health(status="ok")


@_probe(
    "/readyz",
    "Is the database reachable and migrated to head",
    response_model=Readiness,
    responses={
        503: {
            "model": NotReady,
            "description": "unavailable: the database is unreachable or behind its migrations",
        }
    },
)
async def readyz(request: Request) -> Response:
    head = head_revision()
    try:
        revision = current_revision(request.app.state.engine)
    except Exception:
        return _not_ready(request, "unreachable", None, head)
    if revision != head:
        return _not_ready(request, "behind migrations", revision, head)
    body = Readiness(status="ok", database="migrated", revision=revision, head=head)
    return Response(body.model_dump_json(), media_type="application/json")


def _not_ready(request: Request, database: str, revision: str | None, head: str | None) -> Response:
    """A 503 problem that a probe reads by its status and a person by its fields."""
    advice = "run `vigil migrate`" if database == "behind migrations" else "retry in a few seconds"
    response = problem_response(
        request,
        503,
        ServiceUnavailable.slug,
        ServiceUnavailable.title,
        f"The database is {database}; {advice}.",
        database=database,
        revision=revision,
        head=head,
    )
    response.headers["Retry-After"] = "5"
    return response


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
