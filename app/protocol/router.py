from fastapi import APIRouter

from app.auth.deps import ClinicalReader, Clinician
from app.db import CommittingRoute, SessionDep
from app.errors import Conflict, Forbidden, Unauthorized, ValidationFailed, error_responses
from app.protocol import service
from app.protocol.schemas import ProtocolRead, ProtocolUpdate

router = APIRouter(prefix="/v1/protocol", tags=["protocol"], route_class=CommittingRoute)


@router.get(
    "", summary="The clinic's protocol in force", responses=error_responses(Unauthorized, Forbidden)
)
async def get_protocol(db: SessionDep, principal: ClinicalReader) -> ProtocolRead:
    return service.read_current(db, principal)


@router.put(
    "",
    summary="Store a new protocol version (clinician); started sessions keep theirs",
    description=(
        "The body is a whole protocol, as `GET` answers it (its `version` is ignored): every"
        " section, every rule with exactly the levels of PROTOCOL.md's table. A missing part or"
        " a level a rule does not have is a 422 naming it, and nothing is stored."
    ),
    responses=error_responses(Unauthorized, Forbidden, ValidationFailed, Conflict),
)
async def put_protocol(data: ProtocolUpdate, db: SessionDep, principal: Clinician) -> ProtocolRead:
    return service.store_new_version(db, principal, data)
