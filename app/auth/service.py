"""Clinics and API keys: secrets are shown once and stored only as a hash."""

from __future__ import annotations

import secrets
import uuid
from datetime import datetime

from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session

from app.alerts.models import ChangeCounter
from app.audit import service as audit
from app.auth.deps import Principal, hash_key
from app.auth.models import ApiKey, Clinic
from app.auth.roles import Role
from app.db import utcnow
from app.errors import Forbidden, NotFound, ValidationFailed

KEY_PREFIX = "vgl_"


def create_clinic(db: Session, principal: Principal | None, name: str) -> Clinic:
    if principal is not None and principal.clinic_id is not None:
        raise Forbidden("only a global admin key may create clinics")
    clinic = Clinic(id=uuid.uuid4(), name=name, created_at=utcnow())
    db.add(clinic)
    db.flush()
    db.add(ChangeCounter(clinic_id=clinic.id, alert_seq=0))
    db.flush()
    audit.record(db, principal, "clinic.create", "Clinic", clinic.id)
    return clinic


def list_clinics(
    db: Session, principal: Principal, after: tuple[datetime, uuid.UUID] | None, limit: int
) -> list[Clinic]:
    """The clinics the caller may see (its own, or all for a global admin), oldest first."""
    query = select(Clinic)
    if principal.clinic_id is not None:
        query = query.where(Clinic.id == principal.clinic_id)
    if after is not None:
        query = query.where(tuple_(Clinic.created_at, Clinic.id) > tuple_(*after))
    return list(db.scalars(query.order_by(Clinic.created_at, Clinic.id).limit(limit)))


def create_key(
    db: Session,
    principal: Principal | None,
    role: Role,
    clinic_id: uuid.UUID | None,
    label: str,
    expires_at: datetime | None = None,
) -> tuple[ApiKey, str]:
    """A new key and its secret, which is never stored and never shown again."""
    if expires_at is not None and expires_at <= utcnow():
        raise ValidationFailed(
            "a key's expiry must lie in the future",
            [{"loc": ["body", "expires_at"], "msg": "must lie in the future"}],
        )
    if (
        principal is not None
        and principal.clinic_id is not None
        and clinic_id != principal.clinic_id
    ):
        raise Forbidden("a clinic's admin key may only create keys for its own clinic")
    if clinic_id is None and role != Role.ADMIN:
        raise ValidationFailed(
            "only admin keys may be global",
            [{"loc": ["body", "clinic_id"], "msg": "required for this role"}],
        )
    if clinic_id is not None and db.get(Clinic, clinic_id) is None:
        raise NotFound("no such clinic")
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(
        id=uuid.uuid4(),
        clinic_id=clinic_id,
        role=role,
        label=label,
        key_hash=hash_key(secret),
        key_prefix=secret[:12],
        created_at=utcnow(),
        expires_at=expires_at,
    )
    db.add(key)
    db.flush()
    audit.record(db, principal, "api_key.create", "ApiKey", key.id)
    return key, secret


def list_keys(
    db: Session, principal: Principal, after: tuple[datetime, uuid.UUID] | None, limit: int
) -> list[ApiKey]:
    """The keys the caller may see (its clinic's, or all for a global admin), oldest first."""
    query = select(ApiKey)
    if principal.clinic_id is not None:
        query = query.where(ApiKey.clinic_id == principal.clinic_id)
    if after is not None:
        query = query.where(tuple_(ApiKey.created_at, ApiKey.id) > tuple_(*after))
    return list(db.scalars(query.order_by(ApiKey.created_at, ApiKey.id).limit(limit)))


def revoke_key(db: Session, principal: Principal, key_id: uuid.UUID) -> ApiKey:
    key = db.get(ApiKey, key_id)
    if key is None or (principal.clinic_id is not None and key.clinic_id != principal.clinic_id):
        raise NotFound("no such API key")
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        db.flush()
        audit.record(db, principal, "api_key.revoke", "ApiKey", key.id)
    return key
