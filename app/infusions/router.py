import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Body, Query
from sqlalchemy.orm import Session
from starlette.responses import Response

from app.auth.deps import Bedside, SessionReader
from app.db import CommittingRoute, SessionDep
from app.errors import (
    Conflict,
    DischargeBlocked,
    Forbidden,
    IdempotencyMismatch,
    InvalidTransition,
    NotFound,
    ScreeningReviewRequired,
    Unauthorized,
    ValidationFailed,
    error_responses,
)
from app.idempotency.service import IdempotencyDep
from app.infusions import service
from app.infusions.models import Infusion
from app.infusions.schemas import (
    AbortRequest,
    DischargeRequest,
    InfusionCreate,
    InfusionRead,
    StartRequest,
    TransitionRequest,
)
from app.pagination import Cursor, Limit
from app.schemas import Page, decode_timeline_cursor, encode_cursor

router = APIRouter(prefix="/v1/sessions", tags=["sessions"], route_class=CommittingRoute)
_AUTH = (Unauthorized, Forbidden, ValidationFailed)
_TRANSITION = error_responses(*_AUTH, NotFound, InvalidTransition)

StatusFilter = Literal["scheduled", "in_progress", "recovery", "discharged", "aborted", "active"]


def _read(db: Session, infusion: Infusion) -> InfusionRead:
    return InfusionRead.build(infusion, service.baseline_of(db, infusion))


@router.post(
    "",
    status_code=201,
    summary="Open an infusion session for a patient",
    response_model=InfusionRead,
    responses=error_responses(*_AUTH, NotFound, Conflict, IdempotencyMismatch),
)
async def create_session(
    data: InfusionCreate, db: SessionDep, principal: Bedside, idem: IdempotencyDep
) -> Response:
    return idem.run(201, lambda: _read(db, service.create_infusion(db, principal, data)))


@router.get("", summary="List the clinic's sessions", responses=error_responses(*_AUTH))
async def list_sessions(
    db: SessionDep,
    principal: SessionReader,
    status: Annotated[
        StatusFilter | None, Query(description="`active` = in_progress or recovery")
    ] = None,
    patient_id: uuid.UUID | None = None,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> Page[InfusionRead]:
    after = decode_timeline_cursor(cursor) if cursor else None
    rows = service.list_infusions(
        db, principal, status=status, patient_id=patient_id, after=after, limit=limit + 1
    )
    next_cursor = (
        encode_cursor(rows[limit - 1].created_at, rows[limit - 1].id) if len(rows) > limit else None
    )
    return Page(items=[_read(db, i) for i in rows[:limit]], next_cursor=next_cursor)


@router.get("/{session_id}", summary="Read a session", responses=error_responses(*_AUTH, NotFound))
async def get_session(
    session_id: uuid.UUID, db: SessionDep, principal: SessionReader
) -> InfusionRead:
    return _read(db, service.read_infusion(db, principal, session_id))


@router.post(
    "/{session_id}/start",
    summary="Start the infusion (scheduled → in_progress), gated by pre-infusion screening",
    responses=error_responses(*_AUTH, NotFound, InvalidTransition, ScreeningReviewRequired),
)
async def start_session(
    session_id: uuid.UUID,
    db: SessionDep,
    principal: Bedside,
    data: Annotated[StartRequest | None, Body()] = None,
) -> InfusionRead:
    data = data or StartRequest()
    return _read(db, service.start(db, principal, session_id, data.at, data.override_reason))


@router.post(
    "/{session_id}/end",
    summary="End the infusion (in_progress → recovery)",
    responses=_TRANSITION,
)
async def end_session(
    session_id: uuid.UUID,
    db: SessionDep,
    principal: Bedside,
    data: Annotated[TransitionRequest | None, Body()] = None,
) -> InfusionRead:
    data = data or TransitionRequest()
    return _read(db, service.end(db, principal, session_id, data.at))


@router.post(
    "/{session_id}/discharge",
    summary="Discharge the patient (recovery → discharged), gated by the recovery checks",
    responses=error_responses(*_AUTH, NotFound, InvalidTransition, DischargeBlocked),
)
async def discharge_session(
    session_id: uuid.UUID,
    db: SessionDep,
    principal: Bedside,
    data: Annotated[DischargeRequest | None, Body()] = None,
) -> InfusionRead:
    data = data or DischargeRequest()
    return _read(db, service.discharge(db, principal, session_id, data.at, data.override_reason))


@router.post(
    "/{session_id}/abort",
    summary="Abort the session (scheduled, in_progress or recovery → aborted)",
    responses=_TRANSITION,
)
async def abort_session(
    session_id: uuid.UUID, data: AbortRequest, db: SessionDep, principal: Bedside
) -> InfusionRead:
    return _read(db, service.abort(db, principal, session_id, data.at, data.reason))
