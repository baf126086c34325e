"""Safe retries for creating POSTs: ``Idempotency-Key`` replays return the original answer."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import timedelta
from typing import Annotated

import orjson
from fastapi import Depends, Header, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel
from sqlalchemy import delete, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from starlette.responses import Response

from app.auth.deps import Principal, authenticate
from app.config import get_settings
from app.db import SessionDep, lean, utcnow
from app.errors import Conflict, IdempotencyMismatch, ValidationFailed
from app.idempotency.models import IdempotencyRecord


def fingerprint(method: str, path: str, body: object) -> str:
    canonical = orjson.dumps(body, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(method.encode() + b" " + path.encode() + b"\n" + canonical).hexdigest()


def json_response(
    status_code: int, content: bytes, headers: dict[str, str] | None = None
) -> Response:
    return Response(
        content, status_code=status_code, media_type="application/json", headers=headers
    )


class Idempotency:
    """Per-request helper: replays a remembered answer or remembers the new one."""

    def __init__(self, db: Session, principal: Principal, key: str | None, print_: str) -> None:
        self.db, self.principal, self.key, self.fingerprint = db, principal, key, print_

    def _stored(self) -> IdempotencyRecord | None:
        if self.key is None:
            return None
        horizon = utcnow() - timedelta(hours=get_settings().idempotency_ttl_hours)
        return self.db.scalar(
            select(IdempotencyRecord).where(
                IdempotencyRecord.api_key_id == self.principal.key_id,
                IdempotencyRecord.key == self.key,
                IdempotencyRecord.created_at >= horizon,
            )
        )

    def _check(self, record: IdempotencyRecord) -> None:
        if record.fingerprint != self.fingerprint:
            raise IdempotencyMismatch(
                "this Idempotency-Key was used before with a different request body"
            )

    def _replay(self, record: IdempotencyRecord) -> Response:
        self._check(record)
        return json_response(
            record.status_code, record.response_body, {"Idempotent-Replayed": "true"}
        )

    def run(
        self,
        status_code: int,
        produce: Callable[[], BaseModel | Response],
        *,
        forget: frozenset[str] = frozenset(),
    ) -> Response:
        """Answer from memory if this key was seen, else run ``produce`` and remember its answer.

        Fields named in ``forget`` (a secret shown once) are remembered as null.
        """
        record = self._stored()
        if record is not None:
            return self._replay(record)
        try:
            result = produce()
        except Conflict:
            earlier = self._committed_meanwhile()
            if earlier is None:
                raise
            return self._replay(earlier)
        if isinstance(result, Response):  # a replay decided by the service (client-supplied id)
            return result
        body = result.model_dump_json().encode()
        if self.key is not None:
            kept = result.model_copy(update=dict.fromkeys(forget)) if forget else result
            earlier = self._keep(status_code, kept.model_dump_json().encode())
            if earlier is not None:
                return self._replay(earlier)
        return json_response(status_code, body)

    def run_rendered(
        self,
        produce: Callable[[], tuple[int, bytes]],
        render: Callable[[int, bytes], Response],
    ) -> Response:
        """As ``run``, for an answer that is not a schema (a FHIR resource, with its own media
        type and headers): ``render`` makes the response from status and body, first and on replay."""
        record = self._stored()
        if record is None:
            try:
                status_code, body = produce()
            except Conflict:
                record = self._committed_meanwhile()
                if record is None:
                    raise
            else:
                if self.key is None:
                    return render(status_code, body)
                record = self._keep(status_code, body)
                if record is None:
                    return render(status_code, body)
        self._check(record)
        response = render(record.status_code, record.response_body)
        response.headers["Idempotent-Replayed"] = "true"
        return response

    def _committed_meanwhile(self) -> IdempotencyRecord | None:
        """After a conflict, the original of this key if it committed since we looked.

        Two tablets' retries of one request race: the original commits between this replay's
        look-up and its insert, which then collides with what the original created (a patient's
        MRN). The replay answers as the original did rather than as a duplicate.
        """
        if self.key is None:
            return None
        self.db.rollback()
        return self._stored()

    def _keep(self, status_code: int, body: bytes) -> IdempotencyRecord | None:
        """Remember this answer; None, or the record of a concurrent request that committed the
        same key first (our work is then dropped, and the caller answers as it did)."""
        try:
            self._remember(status_code, body)
            return None
        except IntegrityError:
            self.db.rollback()
            record = self._stored()
            if record is None:
                raise Conflict(
                    "a request with this Idempotency-Key is still being processed"
                ) from None
            return record

    def _remember(self, status_code: int, body: bytes) -> None:
        assert self.key is not None
        now = utcnow()
        horizon = now - timedelta(hours=get_settings().idempotency_ttl_hours)
        # An expired record of the same key makes way for the new one.
        self.db.execute(
            delete(IdempotencyRecord).where(
                IdempotencyRecord.api_key_id == self.principal.key_id,
                IdempotencyRecord.key == self.key,
                IdempotencyRecord.created_at < horizon,
            )
        )
        self.db.execute(
            insert(IdempotencyRecord).values(
                api_key_id=self.principal.key_id,
                key=self.key,
                fingerprint=self.fingerprint,
                status_code=status_code,
                response_body=body,
                created_at=now,
            )
        )


_KEY_MAX_LENGTH = 255


async def _resolve(request: Request, db: Session, idempotency_key: str | None) -> Idempotency:
    if idempotency_key is not None and not idempotency_key.strip():
        raise ValidationFailed(
            "Idempotency-Key must not be empty",
            [{"loc": ["header", "idempotency-key"], "msg": "must not be empty"}],
        )
    principal = authenticate(request, db)
    print_ = ""
    if idempotency_key is not None:
        raw = await request.body()
        try:
            parsed = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            parsed = raw.decode(errors="replace")
        print_ = fingerprint(request.method, request.url.path, parsed)
    return Idempotency(db, principal, idempotency_key, print_)


async def _lean(request: Request, db: Session) -> Idempotency:
    """The dependency below without FastAPI's solver: the same header check and errors."""
    key = request.headers.get("idempotency-key")
    if key is not None and len(key) > _KEY_MAX_LENGTH:
        raise RequestValidationError(
            [
                {
                    "type": "string_too_long",
                    "loc": ("header", "idempotency-key"),
                    "msg": f"String should have at most {_KEY_MAX_LENGTH} characters",
                    "input": key,
                    "ctx": {"max_length": _KEY_MAX_LENGTH},
                }
            ]
        )
    return await _resolve(request, db, key)


@lean(_lean)
async def idempotency(
    request: Request,
    db: SessionDep,
    idempotency_key: Annotated[
        str | None,
        Header(
            description="Makes a retried POST safe: a replay returns the original answer.",
            max_length=_KEY_MAX_LENGTH,
        ),
    ] = None,
) -> Idempotency:
    return await _resolve(request, db, idempotency_key)


IdempotencyDep = Annotated[Idempotency, Depends(idempotency)]
