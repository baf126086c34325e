import uuid

from fastapi import APIRouter
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
from app.patients import service
from app.patients.schemas import PatientCreate, PatientRead, PatientUpdate
from app.schemas import Page, QueryText, decode_cursor, encode_cursor, parse_uuid

router = APIRouter(prefix="/v1/patients", tags=["patients"], route_class=CommittingRoute)
_AUTH = (Unauthorized, Forbidden, ValidationFailed)


@router.post(
    "",
    status_code=201,
    summary="Register a patient",
    response_model=PatientRead,
    responses=error_responses(*_AUTH, Conflict, IdempotencyMismatch),
)
async def create_patient(
    data: PatientCreate, db: SessionDep, principal: Bedside, idem: IdempotencyDep
) -> Response:
    return idem.run(
        201, lambda: PatientRead.model_validate(service.create_patient(db, principal, data))
    )


@router.get(
    "",
    summary="List the clinic's patients, optionally by MRN",
    responses=error_responses(*_AUTH),
)
async def list_patients(
    db: SessionDep,
    principal: ClinicalReader,
    mrn: QueryText | None = None,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> Page[PatientRead]:
    after = parse_uuid(decode_cursor(cursor, 1)[0]) if cursor else None
    rows = service.find_patients(db, principal, mrn, after, limit + 1)
    next_cursor = encode_cursor(rows[limit - 1].id) if len(rows) > limit else None
    return Page(
        items=[PatientRead.model_validate(p) for p in rows[:limit]], next_cursor=next_cursor
    )


@router.get(
    "/{patient_id}",
    summary="Read a patient",
    responses=error_responses(*_AUTH, NotFound),
)
async def get_patient(
    patient_id: uuid.UUID, db: SessionDep, principal: ClinicalReader
) -> PatientRead:
    return PatientRead.model_validate(service.read_patient(db, principal, patient_id))


@router.patch(
    "/{patient_id}",
    summary="Change a patient's display name or contraindications",
    responses=error_responses(*_AUTH, NotFound),
)
async def update_patient(
    patient_id: uuid.UUID, data: PatientUpdate, db: SessionDep, principal: Bedside
) -> PatientRead:
    return PatientRead.model_validate(service.update_patient(db, principal, patient_id, data))
