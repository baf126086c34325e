"""The clinic's protocol in force, its stored versions, and the version a session runs under."""

from __future__ import annotations

import copy
import logging
import uuid
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.audit import service as audit
from app.auth.deps import Principal
from app.db import utcnow
from app.errors import Conflict
from app.infusions.models import Infusion
from app.infusions.schemas import InfusionStatus
from app.protocol.defaults import DEFAULT_PROTOCOL, DEFAULT_PROTOCOL_VERSION
from app.protocol.models import ProtocolVersion
from app.protocol.schemas import ProtocolBody, ProtocolRead, ProtocolUpdate, RuleThresholds

log = logging.getLogger("vigil.protocol")

DEFAULT = ProtocolBody.model_validate(DEFAULT_PROTOCOL)
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
        cached = from_storage(row.body) if row is not None else DEFAULT
        _cache[(clinic_id, version)] = cached
    return cached


def from_storage(body: dict[str, Any]) -> ProtocolBody:
    """A stored version, read in the fixed shape of PROTOCOL.md.

    Versions stored before each rule's levels were checked hold null for the levels a rule
    lacks (dropped), may lack a level or a field (PROTOCOL.md's default fills it) and may give a
    rule a level it does not have (dropped, with a warning: a rule's levels are fixed).
    """
    merged = _merged(DEFAULT_PROTOCOL, body)
    for rule, levels in merged["thresholds"].items():
        allowed = RuleThresholds.levels_of(rule)
        extra = sorted(set(levels) - set(allowed))
        if extra:
            log.warning("stored protocol: %s has no level %s; ignored", rule, ", ".join(extra))
        merged["thresholds"][rule] = {level: levels[level] for level in allowed}
    return ProtocolBody.model_validate(merged)


def _merged(defaults: dict[str, Any], stored: dict[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(defaults)
    for key, value in stored.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merged(merged[key], value)
        elif value is not None:
            merged[key] = value
    return merged


def _read(version: int, body: ProtocolBody) -> ProtocolRead:
    return ProtocolRead(version=version, **dict(body))


def read_current(db: Session, principal: Principal) -> ProtocolRead:
    clinic_id = principal.require_clinic()
    version = current_version(db, clinic_id)
    return _read(version, protocol(db, clinic_id, version))


def store_new_version(db: Session, principal: Principal, data: ProtocolUpdate) -> ProtocolRead:
    """Store ``data``, a whole protocol, as the clinic's next version; started sessions keep
    theirs, scheduled ones follow it."""
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
    # A session runs under the version in force when it starts; until then it follows the
    # clinic's current one, so what its pre-infusion readings raise names the version in force.
    db.execute(
        update(Infusion)
        .where(Infusion.clinic_id == clinic_id, Infusion.status == InfusionStatus.SCHEDULED)
        .values(protocol_version=version, updated_at=utcnow())
    )
    audit.record(db, principal, "protocol.update", "Protocol", f"{clinic_id}:{version}")
    return _read(version, body)
