import contextlib
import uuid
from typing import Literal

from fastapi import APIRouter

from app.audit import service
from app.auth.deps import Admin
from app.db import CommittingRoute, SessionDep
from app.errors import Forbidden, Unauthorized, ValidationFailed, error_responses
from app.pagination import Cursor, Limit
from app.schemas import (
    Page,
    QueryText,
    ResponseModel,
    Timestamp,
    decode_cursor,
    encode_cursor,
    parse_sequence,
)

router = APIRouter(prefix="/v1/audit", tags=["audit"], route_class=CommittingRoute)


class AuditEntry(ResponseModel):
    at: Timestamp
    actor_key_id: uuid.UUID | None
    role: str | None
    action: str
    resource_type: str
    resource_id: str | None
    request_id: str | None
    outcome: Literal["success", "denied", "failure"] | str


@router.get(
    "",
    summary="Read the audit trail",
    responses=error_responses(Unauthorized, Forbidden, ValidationFailed),
)
async def list_audit(
    db: SessionDep,
    principal: Admin,
    resource_id: QueryText | None = None,
    actor_key_id: uuid.UUID | None = None,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> Page[AuditEntry]:
    after = None
    if cursor:
        after = parse_sequence(decode_cursor(cursor, 1)[0])
    if resource_id is not None:
        with contextlib.suppress(ValueError):  # ids are stored in canonical UUID form
            resource_id = str(uuid.UUID(resource_id))
    rows = service.list_events(
        db,
        principal,
        resource_id=resource_id,
        actor_key_id=actor_key_id,
        after_seq=after,
        limit=limit + 1,
    )
    next_cursor = encode_cursor(rows[limit - 1].seq) if len(rows) > limit else None
    return Page(items=[AuditEntry.model_validate(r) for r in rows[:limit]], next_cursor=next_cursor)
