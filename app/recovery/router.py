import uuid

from fastapi import APIRouter

from app.alerts.service import refresh_due
from app.auth.deps import SessionReader
from app.db import CommittingRoute, SessionDep, utcnow
from app.errors import Forbidden, NotFound, Unauthorized, error_responses
from app.infusions.service import read_infusion
from app.recovery.schemas import RecoveryRead
from app.recovery.service import recovery

router = APIRouter(prefix="/v1/sessions", tags=["recovery"], route_class=CommittingRoute)


@router.get(
    "/{session_id}/recovery",
    summary="Post-infusion recovery: dissociation, vitals and discharge readiness, judged now",
    responses=error_responses(Unauthorized, Forbidden, NotFound),
)
async def get_recovery(
    session_id: uuid.UUID, db: SessionDep, principal: SessionReader
) -> RecoveryRead:
    now = utcnow()
    refresh_due(db, principal, now)
    return recovery(db, read_infusion(db, principal, session_id), now)
