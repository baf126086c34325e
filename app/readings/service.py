"""Vital-sign readings: validated, stored once, never deleted (entered-in-error instead)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select, tuple_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.alerts import engine
from app.alerts import queries as alert_queries
from app.alerts import store as alert_store
from app.alerts.news2 import News2
from app.audit import service as audit
from app.auth.deps import Principal
from app.db import table_of, utcnow
from app.entries.service import (
    check_measured_at,
    check_replays,
    entry_hash,
    entry_statements,
    flag_in_error,
)
from app.errors import Conflict, ValidationFailed
from app.infusions.models import Infusion
from app.infusions.service import baseline_of, load_infusion
from app.infusions.timeline import phase_at
from app.readings.models import Reading
from app.readings.schemas import ReadingCreate, ReadingRead, ReadingRecorded

_STORED_FIELDS = (
    "heart_rate", "systolic", "diastolic", "spo2", "respiratory_rate",
    "temperature_c", "consciousness", "on_oxygen", "source", "device_id",
)  # fmt: skip


def to_read(infusion: Infusion, reading: Reading | dict[str, Any]) -> ReadingRead:
    row = reading if isinstance(reading, dict) else {c: getattr(reading, c) for c in _COLUMNS}
    return ReadingRead.model_validate(
        {**row, "session_id": row["infusion_id"], "phase": phase_at(infusion, row["measured_at"])}
    )


_COLUMNS = (
    "id", "infusion_id", "measured_at", "recorded_at", *_STORED_FIELDS, "status",
    "entered_in_error_at", "entered_in_error_reason",
)  # fmt: skip


def record_readings(
    db: Session,
    principal: Principal,
    infusion_id: uuid.UUID,
    items: Sequence[ReadingCreate],
    *,
    batch: bool,
) -> list[ReadingRecorded]:
    """Store readings all or nothing and judge them; a client id stored with the same body replays."""
    infusion = load_infusion(db, principal, infusion_id, lock=True)
    now = utcnow()
    base_loc: list[str | int] = ["body", "readings"] if batch else ["body"]
    hashes: dict[uuid.UUID, tuple[int, str]] = {}
    rows: list[dict[str, Any]] = []
    for index, item in enumerate(items):
        loc = [*base_loc, index] if batch else base_loc
        item_hash = entry_hash(item)
        if item.id is not None:
            if item.id in hashes:
                raise ValidationFailed(
                    "two readings in the batch share an id",
                    [{"loc": [*loc, "id"], "msg": "duplicate id"}],
                )
            hashes[item.id] = (index if batch else -1, item_hash)
        rows.append(
            {
                "id": item.id or uuid.uuid4(),
                "infusion_id": infusion.id,
                "clinic_id": infusion.clinic_id,
                "measured_at": item.measured_at,
                "recorded_at": now,
                **{name: getattr(item, name) for name in _STORED_FIELDS},
                "status": "final",
                "entered_in_error_at": None,
                "entered_in_error_reason": None,
                "recorded_by": principal.key_id,
                "request_hash": item_hash,
                "answer": None,
            }
        )
    replayed = _replayed(db, infusion.id, hashes, base_loc)
    # A replay answers as it first did, even if the session has closed since: only what is new
    # must keep to the bedside timing rules.
    for index, item in enumerate(items):
        if item.id not in replayed:
            loc = [*base_loc, index] if batch else base_loc
            check_measured_at(infusion, item.measured_at, now, loc)
    new_rows = [row for row in rows if row["id"] not in replayed]
    if new_rows:
        try:
            _STATEMENTS.insert.execute(db, new_rows)
        except IntegrityError:
            # A concurrent request stored one of these ids first: answer as a replay would.
            db.rollback()
            infusion = load_infusion(db, principal, infusion_id, lock=True)
            replayed = _replayed(db, infusion.id, hashes, base_loc)
            if not all(row["id"] in replayed for row in rows):
                raise Conflict("a request with these ids is still being processed") from None
            new_rows = []
    for row in new_rows:
        audit.record(db, principal, "reading.create", "Reading", row["id"])
    baseline = baseline_of(db, infusion) if infusion.started_at is not None else None
    judged = engine.evaluate_readings(db, infusion, new_rows, baseline, now)
    answers = {row["id"]: _recorded(infusion, row, *judged[row["id"]]) for row in new_rows}
    kept = [
        {"entry_id": row_id, "answer": answer.model_dump_json()}
        for row_id, answer in answers.items()
        if row_id in hashes
    ]
    if kept:
        _STATEMENTS.keep_answer.execute(db, kept)
    for reading_id, entry in replayed.items():
        answers[reading_id] = _replayed_answer(db, infusion, entry)
    return [answers[row["id"]] for row in rows]


def _replayed_answer(db: Session, infusion: Infusion, entry: Any) -> ReadingRecorded:
    """A replayed id's first answer; a reading stored before answers were kept is judged again
    as it now stands."""
    if entry.answer is not None:
        return ReadingRecorded.model_validate_json(entry.answer)
    reading = db.get_one(Reading, entry.id)
    return _recorded(
        infusion,
        reading,
        engine.news2_of(db, infusion, reading),
        alert_queries.alerts_with_evidence(db, reading_id=reading.id),
    )


def _recorded(
    infusion: Infusion,
    reading: Reading | dict[str, Any],
    news2: News2,
    alerts: list[dict[str, Any]],
) -> ReadingRecorded:
    return ReadingRecorded.model_validate(
        {
            **to_read(infusion, reading).model_dump(),
            "news2": news2.as_dict(),
            "alerts": [alert_store.to_read(a) for a in alerts],
        }
    )


def _replayed(
    db: Session,
    infusion_id: uuid.UUID,
    hashes: dict[uuid.UUID, tuple[int, str]],
    loc: list[str | int],
) -> dict[uuid.UUID, Any]:
    """The stored entries of the ids sent again with the same body (a different body: 422)."""
    if not hashes:
        return {}
    stored = _STATEMENTS.stored(db, hashes)
    replayed = check_replays(stored, infusion_id, hashes, loc)
    return {entry.id: entry for entry in stored if entry.id in replayed}


def list_readings(
    db: Session,
    principal: Principal,
    infusion_id: uuid.UUID,
    *,
    include_entered_in_error: bool,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> tuple[Infusion, list[Reading]]:
    infusion = load_infusion(db, principal, infusion_id)
    query = select(Reading).where(Reading.infusion_id == infusion.id)
    if not include_entered_in_error:
        query = query.where(Reading.status == "final")
    if after is not None:
        query = query.where(tuple_(Reading.measured_at, Reading.id) > tuple_(*after))
    rows = list(db.scalars(query.order_by(Reading.measured_at, Reading.id).limit(limit)))
    audit.record(db, principal, "reading.list", "Session", infusion.id)
    return infusion, rows


def enter_in_error(
    db: Session, principal: Principal, entry_id: uuid.UUID, reason: str
) -> ReadingRead:
    infusion, found = flag_in_error(db, principal, Reading, entry_id, reason, "reading")
    return to_read(infusion, found)


_STATEMENTS = entry_statements(table_of(Reading))
