import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Literal

from fastapi import APIRouter, Body, Header, Request
from fastapi.sse import EventSourceResponse, ServerSentEvent
from starlette.responses import Response

from app.alerts import service, store, stream
from app.alerts.schemas import AcknowledgeRequest, AlertPage, AlertRead, ResolveRequest
from app.auth.deps import Bedside, Clinician, SessionReader
from app.db import CommittingRoute, SessionDep, utcnow
from app.errors import (
    Forbidden,
    InvalidTransition,
    NotFound,
    Unauthorized,
    ValidationFailed,
    error_responses,
)
from app.pagination import Cursor, Limit
from app.schemas import etag_matches

router = APIRouter(prefix="/v1/alerts", tags=["alerts"], route_class=CommittingRoute)
_AUTH = (Unauthorized, Forbidden, ValidationFailed)


@router.get(
    "",
    summary="Poll the clinic's alerts (ETag, changed_after)",
    response_model=AlertPage,
    responses={
        **error_responses(*_AUTH),
        304: {"description": "Nothing changed since the ETag sent in If-None-Match"},
    },
)
async def list_alerts(
    request: Request,
    db: SessionDep,
    principal: SessionReader,
    status: Literal["open", "acknowledged", "resolved", "active"] | None = None,
    severity: Literal["low", "medium", "high"] | None = None,
    session_id: uuid.UUID | None = None,
    changed_after: Annotated[str | None, "changes_cursor of an earlier answer"] = None,
    limit: Limit = 100,
    cursor: Cursor = None,
    if_none_match: Annotated[str | None, Header()] = None,
) -> Response:
    service.refresh_due(db, principal, utcnow())
    etag, seq = service.poll_tag(db, principal, str(request.url.query))
    if if_none_match is not None and etag_matches(if_none_match, etag):
        return Response(status_code=304, headers={"ETag": etag})
    page = service.list_alerts(
        db, principal, seq=seq, status=status, severity=severity, session_id=session_id,
        changed_after=changed_after, cursor=cursor, limit=limit,
    )  # fmt: skip
    return Response(page.model_dump_json(), media_type="application/json", headers={"ETag": etag})


@router.get(
    "/stream",
    summary="Alert changes as Server-Sent Events (resume with Last-Event-ID)",
    response_class=EventSourceResponse,
    responses=error_responses(*_AUTH),
)
async def stream_alerts(
    request: Request,
    principal: SessionReader,
    last_event_id: Annotated[
        str | None, Header(description="The id of the last event received")
    ] = None,
) -> AsyncIterator[ServerSentEvent]:
    events = stream.alert_events(
        request.app.state.sessionmaker,
        request.app.state.wakeups,
        principal,
        stream.parse_last_event_id(last_event_id),
        request.is_disconnected,
    )
    async for event in events:
        yield event


@router.get("/{alert_id}", summary="Read one alert", responses=error_responses(*_AUTH, NotFound))
async def get_alert(alert_id: uuid.UUID, db: SessionDep, principal: SessionReader) -> AlertRead:
    service.refresh_due(db, principal, utcnow())
    return store.to_read(service.read_alert(db, principal, alert_id))


@router.post(
    "/{alert_id}/acknowledge",
    summary="Acknowledge an alert (a cleared, latched alert then resolves)",
    responses=error_responses(*_AUTH, NotFound, InvalidTransition),
)
async def acknowledge_alert(
    alert_id: uuid.UUID,
    db: SessionDep,
    principal: Bedside,
    data: Annotated[AcknowledgeRequest | None, Body()] = None,
) -> AlertRead:
    note = data.note if data else None
    return store.to_read(service.acknowledge(db, principal, alert_id, note or None))


@router.post(
    "/{alert_id}/resolve",
    summary="Resolve an alert (clinician)",
    responses=error_responses(*_AUTH, NotFound, InvalidTransition),
)
async def resolve_alert(
    alert_id: uuid.UUID, data: ResolveRequest, db: SessionDep, principal: Clinician
) -> AlertRead:
    return store.to_read(service.resolve(db, principal, alert_id, data.note))
