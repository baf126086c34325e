"""The clinic's protocol in force, its stored versions, and the version a session runs under."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.audit import service as audit
from app.auth.deps import Principal
from app.db import utcnow
from app.errors import Conflict
from app.protocol.defaults import DEFAULT_PROTOCOL_VERSION
from app.protocol.models import ProtocolVersion
from app.protocol.schemas import ProtocolBody, ProtocolRead, ProtocolUpdate

DEFAULT = ProtocolBody()
# Stored versions never change, so a process may keep every one it has read.
_cache: dict[tuple[uuid.UUID, int], ProtocolBody] = {}


def current_version(db: Session, clinic_id: uuid.UUID) -> int:
    latest = db.scalar(
        select(func.max(ProtocolVersion.version)).where(ProtocolVersion.clinic_id == clinic_id)
    )
    return int(latest) if latest is not None else DEFAULT_PROTOCOL_VERSION


def protocol(db: Session, clinic_id: uuid.UUID, version: int) -> ProtocolBody:
    """The protocol of ``version`` for the clinic (version 1 is PROTOCOL.md's default)."""
    if version == DEFAULT_PROTOCOL_VERSION:
        return DEFAULT
    cached = _cache.get((clinic_id, version))
    if cached is None:
        row = db.get(ProtocolVersion, (clinic_id, version))
        cached = ProtocolBody.model_validate(row.body) if row is not None else DEFAULT
        _cache[(clinic_id, version)] = cached
    return cached


def read_current(db: Session, principal: Principal) -> ProtocolRead:
    clinic_id = principal.require_clinic()
    version = current_version(db, clinic_id)
    body = protocol(db, clinic_id, version)
    return ProtocolRead(version=version, **body.model_dump())


def store_new_version(db: Session, principal: Principal, data: ProtocolUpdate) -> ProtocolRead:
    """Store ``data`` as the clinic's next version; sessions already started keep theirs."""
    clinic_id = principal.require_clinic()
    version = current_version(db, clinic_id) + 1
    body = ProtocolBody.model_validate(data.model_dump(exclude={"version"}))
    db.add(
        ProtocolVersion(
            clinic_id=clinic_id,
            version=version,
            body=body.model_dump(mode="json"),
            created_at=utcnow(),
            created_by=principal.key_id,
        )
    )
    try:
        db.flush()
    except IntegrityError:
        db.rollback()
        raise Conflict("another protocol version was stored at the same time; try again") from None
    audit.record(db, principal, "protocol.update", "Protocol", f"{clinic_id}:{version}")
    return ProtocolRead(version=version, **body.model_dump())
