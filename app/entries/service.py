"""What readings and observations share: bedside timing rules, client ids, entered-in-error."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import Table, Text, Uuid, bindparam, select, update
from sqlalchemy.orm import Session

from app.alerts import corrections
from app.audit import service as audit
from app.auth.deps import Principal
from app.db import utcnow
from app.errors import Conflict, IdempotencyMismatch, NotFound, ValidationFailed
from app.hotpath import Prepared
from app.idempotency.service import fingerprint
from app.infusions.models import Infusion
from app.infusions.service import BACKDATE_LIMIT, CLOCK_SKEW, load_infusion
from app.infusions.timeline import closed_at


class Entry(Protocol):
    id: uuid.UUID
    infusion_id: uuid.UUID
    request_hash: str


# What a replay's check reads of a stored entry, and the answer it repeats.
_STORED = ("id", "infusion_id", "request_hash", "answer")


@dataclass(frozen=True, slots=True)
class EntryStatements:
    """The hot statements of a kind of entry (readings, observations)."""

    table: Table
    insert: Prepared
    by_id: Prepared  # the _STORED columns of one entry
    keep_answer: Prepared  # the first answer of a client id, for its replays

    def stored(self, db: Session, ids: Collection[uuid.UUID]) -> list[Any]:
        """The entries already stored under these client ids (a single post's by key)."""
        if len(ids) == 1:
            found = self.by_id.first(db, {"entry_id": next(iter(ids))})
            return [found] if found is not None else []
        columns = [self.table.c[name] for name in _STORED]
        return list(db.execute(select(*columns).where(self.table.c.id.in_(ids))).all())


def entry_statements(table: Table) -> EntryStatements:
    entry_id = bindparam("entry_id", type_=Uuid)
    c = table.c
    return EntryStatements(
        table=table,
        insert=Prepared.insert(table),
        by_id=Prepared(select(*[c[name] for name in _STORED]).where(c.id == entry_id)),
        keep_answer=Prepared(
            update(table).where(c.id == entry_id).values(answer=bindparam("answer", type_=Text))
        ),
    )


def entry_hash(item: Any) -> str:
    """Fingerprint of one request item, to tell a replay (same id, same body) from a clash."""
    return fingerprint("ENTRY", type(item).__name__, item.model_dump(mode="json"))


def check_measured_at(
    infusion: Infusion, measured_at: datetime, now: datetime, loc: list[str | int]
) -> None:
    """PROTOCOL.md: not over 2 minutes ahead, not over 24 hours before the session was created."""
    if measured_at > now + CLOCK_SKEW:
        raise ValidationFailed(
            "measured_at lies more than 2 minutes in the future",
            [
                {
                    "loc": [*loc, "measured_at"],
                    "msg": "must not lie more than 2 minutes in the future",
                }
            ],
        )
    if measured_at < infusion.created_at - BACKDATE_LIMIT:
        raise ValidationFailed(
            "measured_at lies more than 24 hours before the session was created",
            [
                {
                    "loc": [*loc, "measured_at"],
                    "msg": "must not lie more than 24 hours before the session",
                }
            ],
        )
    closed = closed_at(infusion)
    if closed is not None and measured_at >= closed:
        before = closed.isoformat().replace("+00:00", "Z")
        raise Conflict(
            f"the session is {infusion.status}: only late entries measured before {before} "
            "are accepted",
            errors=[{"loc": [*loc, "measured_at"], "msg": f"must lie before {before}"}],
        )


def check_replays(
    existing: Sequence[Entry],
    infusion_id: uuid.UUID,
    hashes: dict[uuid.UUID, tuple[int, str]],
    loc: list[str | int],
) -> set[uuid.UUID]:
    """Ids already stored with the same body (replays); a same id with another body is a 422."""
    replayed: set[uuid.UUID] = set()
    for entry in existing:
        index, item_hash = hashes[entry.id]
        if entry.infusion_id != infusion_id or entry.request_hash != item_hash:
            raise IdempotencyMismatch(
                "an entry with this id was stored before with a different body",
                errors=[
                    {
                        "loc": [*loc, index, "id"] if index >= 0 else [*loc, "id"],
                        "msg": "id reused with another body",
                    }
                ],
            )
        replayed.add(entry.id)
    return replayed


def flag_in_error(
    db: Session, principal: Principal, model: type[Any], entry_id: uuid.UUID, reason: str, name: str
) -> tuple[Any, Any]:
    """Mark a reading or observation entered in error: it stays stored, flagged, and leaves
    baselines, scores, alerts and summaries. A retry keeps the first reason."""
    found = db.get(model, entry_id)
    if found is None or found.clinic_id != principal.clinic_id:
        raise NotFound(f"no such {name}")
    infusion = load_infusion(db, principal, found.infusion_id, lock=True)
    db.refresh(found)  # as it stands now that the session is ours
    if found.status != "entered-in-error":
        now = utcnow()
        found.status, found.entered_in_error_at, found.entered_in_error_reason = (
            "entered-in-error",
            now,
            reason,
        )
        db.flush()
        audit.record(db, principal, f"{name}.entered_in_error", name.capitalize(), found.id)
        corrections.correct(db, infusion, reason, now, **{f"{name}_id": found.id})
    return infusion, found
