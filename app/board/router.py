from fastapi import APIRouter, Header
from starlette.responses import Response

from app.alerts.service import refresh_due
from app.auth.deps import SessionReader
from app.board import service
from app.board.schemas import Board
from app.db import CommittingRoute, SessionDep, utcnow
from app.errors import Forbidden, Unauthorized, error_responses

router = APIRouter(prefix="/v1/board", tags=["board"], route_class=CommittingRoute)


@router.get(
    "",
    summary="Every active session of the clinic at a glance (ETag)",
    response_model=Board,
    responses={
        **error_responses(Unauthorized, Forbidden),
        304: {"description": "Nothing changed since the ETag sent in If-None-Match"},
    },
)
async def get_board(
    db: SessionDep, principal: SessionReader, if_none_match: str | None = Header(None)
) -> Response:
    now = utcnow()
    refresh_due(db, principal, now)
    etag, board = service.board_unless_unchanged(db, principal, now, if_none_match)
    if board is None:
        return Response(status_code=304, headers={"ETag": etag})
    return Response(board.model_dump_json(), media_type="application/json", headers={"ETag": etag})
