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
from app.pagination import Cursor, Limit
from app.readings import service
from app.readings.schemas import (
    EnteredInError,
    ReadingBatch,
    ReadingCreate,
    ReadingRead,
    ReadingRecorded,
    ReadingRecordedList,
)
from app.schemas import Page, decode_timeline_cursor, encode_cursor

router = APIRouter(tags=["readings"], route_class=CommittingRoute)
_WRITE = error_responses(
    Unauthorized, Forbidden, ValidationFailed, NotFound, Conflict, IdempotencyMismatch
)


@router.post(
    "/v1/sessions/{session_id}/readings",
    status_code=201,
    summary="Record a set of vital signs",
    response_model=ReadingRecorded,
    responses=_WRITE,
)
async def create_reading(
    session_id: uuid.UUID,
    data: ReadingCreate,
    db: SessionDep,
    principal: Bedside,
    idem: IdempotencyDep,
) -> Response:
    return idem.run(
        201, lambda: service.record_readings(db, principal, session_id, [data], batch=False)[0]
    )


@router.post(
    "/v1/sessions/{session_id}/readings:batch",
    status_code=201,
    summary="Record up to 500 readings at once, all or nothing",
    response_model=ReadingRecordedList,
    responses=_WRITE,
)
async def create_readings(
    session_id: uuid.UUID,
    data: ReadingBatch,
    db: SessionDep,
    principal: Bedside,
    idem: IdempotencyDep,
) -> Response:
    return idem.run(
        201,
        lambda: ReadingRecordedList(
            items=service.record_readings(db, principal, session_id, data.readings, batch=True)
        ),
    )


@router.get(
    "/v1/sessions/{session_id}/readings",
    summary="List a session's readings by measured_at, then id",
    responses=error_responses(Unauthorized, Forbidden, ValidationFailed, NotFound),
)
async def list_readings(
    session_id: uuid.UUID,
    db: SessionDep,
    principal: ClinicalReader,
    include_entered_in_error: Annotated[bool, Query()] = False,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> Page[ReadingRead]:
    after = decode_timeline_cursor(cursor) if cursor else None
    infusion, rows = service.list_readings(
        db,
        principal,
        session_id,
        include_entered_in_error=include_entered_in_error,
        after=after,
        limit=limit + 1,
    )
    last = rows[limit - 1] if len(rows) > limit else None
    return Page(
        items=[service.to_read(infusion, r) for r in rows[:limit]],
        next_cursor=encode_cursor(last.measured_at, last.id) if last else None,
    )


@router.post(
    "/v1/readings/{reading_id}/entered-in-error",
    summary="Mark a reading entered in error (it stays stored, flagged)",
    responses=error_responses(Unauthorized, Forbidden, ValidationFailed, NotFound),
)
async def enter_reading_in_error(
    reading_id: uuid.UUID, data: EnteredInError, db: SessionDep, principal: Bedside
) -> ReadingRead:
    return service.enter_in_error(db, principal, reading_id, data.reason)
