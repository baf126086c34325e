"""Who is calling: the API key behind ``Authorization: Bearer``, its role and its clinic."""

from __future__ import annotations

import hashlib
import hmac
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from app.auth.models import ApiKey
from app.auth.roles import ADMIN_ONLY, BEDSIDE, CLINICIAN_ONLY, READ_CLINICAL, READ_SESSIONS, Role
from app.db import SessionDep, lean, table_of, utcnow
from app.errors import Forbidden, TooManyRequests, Unauthorized
from app.hotpath import Prepared


@dataclass(frozen=True, slots=True)
class Principal:
    key_id: uuid.UUID
    role: Role
    clinic_id: uuid.UUID | None

    def require_clinic(self) -> uuid.UUID:
        """The clinic whose data this key may touch (a global admin has none)."""
        if self.clinic_id is None:
            raise Forbidden("this key belongs to no clinic")
        return self.clinic_id


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


_keys = table_of(ApiKey)
# What authentication reads of a key, and how it finds a live one by the hash of its secret.
KEY_COLUMNS = (
    _keys.c.id,
    _keys.c.role,
    _keys.c.clinic_id,
    _keys.c.key_hash,
    _keys.c.expires_at,
    _keys.c.last_used_at,
)
KEY_BY_HASH = (_keys.c.key_hash == bindparam("key_hash"), _keys.c.revoked_at.is_(None))
KEY_LOOKUP = Prepared(select(*KEY_COLUMNS).where(*KEY_BY_HASH))
_TOUCH = Prepared(
    update(_keys).where(_keys.c.id == bindparam("key_id")).values(last_used_at=bindparam("at"))
)
# A key's last use is kept to the minute: one write a minute per key, not one per request.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def bearer_digest(authorization: str) -> str | None:
    """The hash of the key in an ``Authorization: Bearer`` header, or None without one."""
    scheme, _, secret = authorization.partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        return None
    return hash_key(secret.strip())


def refusal(row: Any | None, digest: str, now: datetime) -> str | None:
    """Why the key found for ``digest`` (a row of ``KEY_LOOKUP``) does not authenticate."""
    if row is None or not hmac.compare_digest(row.key_hash, digest):
        return "the API key is unknown or revoked"
    if _expired(row.expires_at, now):
        return "the API key has expired"
    return None


def _expired(expires_at: datetime | None, now: datetime) -> bool:
    return expires_at is not None and expires_at <= now


_KEY_STANDING = Prepared(
    select(_keys.c.revoked_at, _keys.c.expires_at).where(_keys.c.id == bindparam("key_id"))
)


def still_valid(db: Session, principal: Principal, now: datetime) -> bool:
    """Whether the key a long-lived answer (an event stream) was opened with still holds:
    a revocation or an expiry ends what it opened, not only its next request."""
    row = _KEY_STANDING.first(db, {"key_id": principal.key_id})
    return row is not None and row.revoked_at is None and not _expired(row.expires_at, now)


def used_this_minute(row: Any, now: datetime) -> bool:
    return row.last_used_at is not None and now - row.last_used_at < LAST_USED_RESOLUTION


def authenticate(request: Request, db: Session) -> Principal:
    """The caller's principal (looked up once per request), or 401; 429 over the rate limit."""
    known: Principal | None = getattr(request.state, "principal", None)
    if known is not None:
        return known
    digest = bearer_digest(request.headers.get("authorization", ""))
    if digest is None:
        raise Unauthorized("a valid API key is required (Authorization: Bearer <key>)")
    # Found by its hash through a unique index, then compared in constant time.
    row = KEY_LOOKUP.first(db, {"key_hash": digest})
    now = utcnow()
    refused = refusal(row, digest, now)
    if refused is not None:
        raise Unauthorized(refused)
    assert row is not None  # refusal() refuses a missing key
    retry_after = request.app.state.rate_limiter.take(row.id)
    if retry_after is not None:
        raise TooManyRequests("this API key is over its rate limit", retry_after)
    if not used_this_minute(row, now):
        _TOUCH.execute(db, {"key_id": row.id, "at": now})
    principal = Principal(key_id=row.id, role=Role(row.role), clinic_id=row.clinic_id)
    request.state.principal = principal
    return principal


def require(*roles: Role) -> Callable[..., Awaitable[Principal]]:
    allowed = frozenset(roles)

    async def check(request: Request, db: Session) -> Principal:
        principal = authenticate(request, db)
        if principal.role not in allowed:
            raise Forbidden(f"the {principal.role} role may not do this")
        return principal

    @lean(check)
    async def dependency(request: Request, db: SessionDep) -> Principal:
        return await check(request, db)

    dependency.allowed_roles = allowed  # type: ignore[attr-defined]  # read by the route inventory
    return dependency


Bedside = Annotated[Principal, Depends(require(*BEDSIDE))]
Clinician = Annotated[Principal, Depends(require(*CLINICIAN_ONLY))]
ClinicalReader = Annotated[Principal, Depends(require(*READ_CLINICAL))]
SessionReader = Annotated[Principal, Depends(require(*READ_SESSIONS))]
Admin = Annotated[Principal, Depends(require(*ADMIN_ONLY))]
