import uuid
from typing import Annotated

from fastapi import APIRouter, Query
from starlette.responses import Response

from app.auth.deps import Bedside, ClinicalReader
from app.db import CommittingRoute, SessionDep
from app.errors import (
    Conflict,
    Forbidden,
    IdempotencyMismatch,
    NotFound,
    Unauthorized,
    ValidationFailed,
    error_responses,
)
from app.idempotency.service import IdempotencyDep
from app.observations import service
from app.observations.schemas import (
    ObservationCreate,
    ObservationKind,
    ObservationRead,
    ObservationRecorded,
)
from app.pagination import Cursor, Limit
from app.readings.schemas import EnteredInError
from app.schemas import Page, decode_timeline_cursor, encode_cursor

router = APIRouter(tags=["observations"], route_class=CommittingRoute)


@router.post(
    "/v1/sessions/{session_id}/observations",
    status_code=201,
    summary="Record a side effect or assessment",
    response_model=ObservationRecorded,
    responses=error_responses(
        Unauthorized, Forbidden, ValidationFailed, NotFound, Conflict, IdempotencyMismatch
    ),
)
async def create_observation(
    session_id: uuid.UUID,
    data: ObservationCreate,
    db: SessionDep,
    principal: Bedside,
    idem: IdempotencyDep,
) -> Response:
    return idem.run(201, lambda: service.record_observation(db, principal, session_id, data))


@router.get(
    "/v1/sessions/{session_id}/observations",
    summary="List a session's observations by measured_at, then id",
    responses=error_responses(Unauthorized, Forbidden, ValidationFailed, NotFound),
)
async def list_observations(
    session_id: uuid.UUID,
    db: SessionDep,
    principal: ClinicalReader,
    kind: ObservationKind | None = None,
    include_entered_in_error: Annotated[bool, Query()] = False,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> Page[ObservationRead]:
    after = decode_timeline_cursor(cursor) if cursor else None
    infusion, rows = service.list_observations(
        db, principal, session_id, kind=kind, include_entered_in_error=include_entered_in_error,
        after=after, limit=limit + 1,
    )  # fmt: skip
    last = rows[limit - 1] if len(rows) > limit else None
    return Page(
        items=[service.to_read(infusion, o) for o in rows[:limit]],
        next_cursor=encode_cursor(last.measured_at, last.id) if last else None,
    )


@router.post(
    "/v1/observations/{observation_id}/entered-in-error",
    summary="Mark an observation entered in error (it stays stored, flagged)",
    responses=error_responses(Unauthorized, Forbidden, ValidationFailed, NotFound),
)
async def enter_observation_in_error(
    observation_id: uuid.UUID, data: EnteredInError, db: SessionDep, principal: Bedside
) -> ObservationRead:
    return service.enter_in_error(db, principal, observation_id, data.reason)
