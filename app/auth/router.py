import uuid
from collections.abc import Sequence
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Body
from pydantic import BaseModel
from starlette.responses import Response

from app.auth import service
from app.auth.deps import Admin
from app.auth.schemas import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyRead,
    ApiKeyRevoke,
    ClinicCreate,
    ClinicRead,
)
from app.db import CommittingRoute, SessionDep
from app.errors import (
    Forbidden,
    IdempotencyMismatch,
    NotFound,
    Unauthorized,
    ValidationFailed,
    error_responses,
)
from app.idempotency.service import IdempotencyDep
from app.pagination import Cursor, Limit
from app.schemas import Page, decode_timeline_cursor, encode_cursor

M = TypeVar("M", bound=BaseModel)

router = APIRouter(prefix="/v1", tags=["administration"], route_class=CommittingRoute)
_AUTH = (Unauthorized, Forbidden, ValidationFailed)


@router.post(
    "/clinics",
    status_code=201,
    summary="Create a clinic",
    response_model=ClinicRead,
    responses=error_responses(*_AUTH, IdempotencyMismatch),
)
async def create_clinic(
    data: ClinicCreate, db: SessionDep, principal: Admin, idem: IdempotencyDep
) -> Response:
    return idem.run(
        201, lambda: ClinicRead.model_validate(service.create_clinic(db, principal, data.name))
    )


@router.get(
    "/clinics",
    summary="List clinics (a clinic's admin sees its own), oldest first",
    responses=error_responses(*_AUTH),
)
async def list_clinics(
    db: SessionDep, principal: Admin, limit: Limit = 100, cursor: Cursor = None
) -> Page[ClinicRead]:
    after = decode_timeline_cursor(cursor) if cursor else None
    rows = service.list_clinics(db, principal, after, limit + 1)
    return _page(rows, limit, ClinicRead)


@router.post(
    "/api-keys",
    status_code=201,
    summary="Create an API key (the secret is shown only in this answer)",
    response_model=ApiKeyCreated,
    responses=error_responses(*_AUTH, NotFound, IdempotencyMismatch),
)
async def create_api_key(
    data: ApiKeyCreate, db: SessionDep, principal: Admin, idem: IdempotencyDep
) -> Response:
    def produce() -> ApiKeyCreated:
        key, secret = service.create_key(
            db, principal, data.role, data.clinic_id, data.label, data.expires_at
        )
        return ApiKeyCreated(
            id=key.id,
            role=data.role,
            clinic_id=key.clinic_id,
            label=key.label,
            key=secret,
            created_at=key.created_at,
            expires_at=key.expires_at,
        )

    # The secret is shown once: a replay answers with the key's record and `key: null`.
    return idem.run(201, produce, forget=frozenset({"key"}))


@router.get(
    "/api-keys",
    summary="List API keys, oldest first (never their secrets)",
    responses=error_responses(*_AUTH),
)
async def list_api_keys(
    db: SessionDep, principal: Admin, limit: Limit = 100, cursor: Cursor = None
) -> Page[ApiKeyRead]:
    after = decode_timeline_cursor(cursor) if cursor else None
    rows = service.list_keys(db, principal, after, limit + 1)
    return _page(rows, limit, ApiKeyRead)


def _page(rows: Sequence[Any], limit: int, model: type[M]) -> Page[M]:
    """A page of ``limit`` of ``rows`` (fetched one more, to know whether more follow)."""
    last = rows[limit - 1] if len(rows) > limit else None
    return Page(
        items=[model.model_validate(row) for row in rows[:limit]],
        next_cursor=encode_cursor(last.created_at, last.id) if last else None,
    )


@router.post(
    "/api-keys/{key_id}/revoke",
    summary="Revoke an API key; it is refused at once",
    responses=error_responses(*_AUTH, NotFound),
)
async def revoke_api_key(
    key_id: uuid.UUID,
    db: SessionDep,
    principal: Admin,
    _body: Annotated[ApiKeyRevoke | None, Body(alias="body")] = None,
) -> ApiKeyRead:
    return ApiKeyRead.model_validate(service.revoke_key(db, principal, key_id))
