import uuid

from fastapi import APIRouter
from starlette.responses import Response

from app.alerts.service import refresh_due
from app.auth.deps import SessionReader
from app.db import CommittingRoute, SessionDep, utcnow
from app.errors import Forbidden, NotFound, Unauthorized, error_responses
from app.summary import service
from app.summary.schemas import SessionSummary

router = APIRouter(prefix="/v1/sessions", tags=["summaries"], route_class=CommittingRoute)


@router.get(
    "/{session_id}/summary",
    summary="The session in numbers: durations, vitals per phase, peak systolic, alerts, recovery",
    responses=error_responses(Unauthorized, Forbidden, NotFound),
)
async def get_summary(
    session_id: uuid.UUID, db: SessionDep, principal: SessionReader
) -> SessionSummary:
    now = utcnow()
    refresh_due(db, principal, now)  # time-based alerts are judged whenever alerts are read
    return service.summarize(db, principal, session_id, now)


@router.get(
    "/{session_id}/chart.svg",
    summary="The session's vitals over time as SVG: infusion shaded, its end and the alerts marked",
    response_class=Response,
    responses={
        200: {
            "content": {"image/svg+xml": {"schema": {"type": "string"}}},
            "description": "SVG chart",
        },
        **error_responses(Unauthorized, Forbidden, NotFound),
    },
)
async def get_chart(session_id: uuid.UUID, db: SessionDep, principal: SessionReader) -> Response:
    return Response(service.chart(db, principal, session_id), media_type="image/svg+xml")
