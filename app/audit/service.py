"""Audit trail: one entry per write and per read of patient data, in the same transaction."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session
from starlette.requests import Request

from app.audit.models import AuditEvent
from app.context import request_id_var
from app.db import table_of, utcnow
from app.hotpath import Prepared

if TYPE_CHECKING:
    from app.auth.deps import Principal


log = logging.getLogger("vigil.audit")
_INSERT = Prepared.insert(table_of(AuditEvent), skip=["seq"])


def record(
    db: Session,
    principal: Principal | None,
    action: str,
    resource_type: str,
    resource_id: uuid.UUID | str | None,
    outcome: str = "success",
) -> None:
    _INSERT.execute(db, _entry(principal, action, resource_type, resource_id, outcome))


def _entry(
    principal: Principal | None,
    action: str,
    resource_type: str,
    resource_id: uuid.UUID | str | None,
    outcome: str = "success",
) -> dict[str, Any]:
    return dict(
        at=utcnow(),
        actor_key_id=principal.key_id if principal else None,
        role=principal.role.value if principal else None,
        clinic_id=principal.clinic_id if principal else None,
        action=action,
        resource_type=resource_type,
        resource_id=str(resource_id) if resource_id is not None else None,
        request_id=request_id_var.get(),
        outcome=outcome,
    )


def record_each(
    db: Session,
    principal: Principal,
    action: str,
    resource_type: str,
    resource_ids: Iterable[uuid.UUID],
) -> None:
    """One entry per resource a read showed (a page of several sessions' data), so that the
    log of each resource finds it; one entry without a resource when it showed none."""
    ids = sorted(set(resource_ids), key=str)
    if not ids:
        record(db, principal, action, resource_type, None)
        return
    _INSERT.execute(db, [_entry(principal, action, resource_type, i) for i in ids])


def record_denial(request: Request, status: int) -> None:
    """A failed authentication (401) or a forbidden attempt (403), committed on its own.

    The request's own work is rolled back first (its transaction may hold SQLite's write
    lock). An audit failure is logged, never turned into another answer.
    """
    db: Session | None = getattr(request.state, "db", None)
    own = db is None
    if db is None:
        db = request.app.state.sessionmaker()
    route = getattr(request.scope.get("route"), "path", None) or request.url.path
    try:
        db.rollback()
        record(
            db,
            getattr(request.state, "principal", None),
            "auth.failed" if status == 401 else "access.denied",
            "Route",
            f"{request.method} {route}"[:64],
            outcome="denied",
        )
        db.commit()
    except SQLAlchemyError as exc:
        log.error("could not audit a denied request: %s", type(exc).__name__)
    finally:
        if own:
            db.close()


def list_events(
    db: Session,
    principal: Principal,
    *,
    resource_id: str | None,
    actor_key_id: uuid.UUID | None,
    after_seq: int | None,
    limit: int,
) -> list[AuditEvent]:
    query = select(AuditEvent).order_by(AuditEvent.seq).limit(limit)
    if resource_id is not None:
        query = query.where(AuditEvent.resource_id == resource_id)
    if actor_key_id is not None:
        query = query.where(AuditEvent.actor_key_id == actor_key_id)
    if principal.clinic_id is not None:  # a clinic's admin sees only its clinic's trail
        query = query.where(AuditEvent.clinic_id == principal.clinic_id)
    if after_seq is not None:
        query = query.where(AuditEvent.seq > after_seq)
    return list(db.scalars(query))
