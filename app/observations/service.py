"""Side-effect and assessment observations: stored once, never deleted."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import select, tuple_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.alerts import engine
from app.alerts import queries as alert_queries
from app.alerts import store as alert_store
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
from app.errors import Conflict
from app.infusions.models import Infusion
from app.infusions.service import load_infusion
from app.infusions.timeline import phase_at
from app.observations.models import Observation
from app.observations.schemas import (
    DissociationCreate,
    ObservationRead,
    ObservationRecorded,
    SedationCreate,
    SymptomCreate,
)

_COLUMNS = (
    "id", "infusion_id", "measured_at", "recorded_at", "kind", "severity", "moaas", "cadss", "note",
    "status", "entered_in_error_at", "entered_in_error_reason",
)  # fmt: skip


def to_read(infusion: Infusion, obs: Observation | dict[str, Any]) -> ObservationRead:
    row = obs if isinstance(obs, dict) else {c: getattr(obs, c) for c in _COLUMNS}
    return ObservationRead.model_validate(
        {**row, "session_id": row["infusion_id"], "phase": phase_at(infusion, row["measured_at"])}
    )


def record_observation(
    db: Session,
    principal: Principal,
    infusion_id: uuid.UUID,
    item: SymptomCreate | SedationCreate | DissociationCreate,
) -> ObservationRecorded:
    infusion = load_infusion(db, principal, infusion_id, lock=True)
    now = utcnow()
    item_hash = entry_hash(item)
    if item.id is not None:  # a replay answers as it first did, even if the session has closed
        replay = _replay(db, infusion, item.id, item_hash)
        if replay is not None:
            return replay
    check_measured_at(infusion, item.measured_at, now, ["body"])
    obs_id = item.id or uuid.uuid4()
    row = {
        "id": obs_id,
        "infusion_id": infusion.id,
        "clinic_id": infusion.clinic_id,
        "measured_at": item.measured_at,
        "recorded_at": now,
        "kind": item.kind,
        "severity": getattr(item, "severity", None),
        "moaas": getattr(item, "moaas", None),
        "cadss": getattr(item, "cadss", None),
        "note": item.note,
        "status": "final",
        "entered_in_error_at": None,
        "entered_in_error_reason": None,
        "recorded_by": principal.key_id,
        "request_hash": item_hash,
        "answer": None,
    }
    try:
        _STATEMENTS.insert.execute(db, row)
    except IntegrityError:
        db.rollback()
        infusion = load_infusion(db, principal, infusion_id, lock=True)
        replay = _replay(db, infusion, obs_id, item_hash)
        if replay is None:
            raise Conflict("a request with this id is still being processed") from None
        return replay
    audit.record(db, principal, "observation.create", "Observation", obs_id)
    changed = engine.evaluate_observation(db, infusion, row, now)
    answer = _recorded(infusion, row, changed)
    if item.id is not None:
        _STATEMENTS.keep_answer.execute(
            db, {"entry_id": obs_id, "answer": answer.model_dump_json()}
        )
    return answer


def _recorded(
    infusion: Infusion, obs: Observation | dict[str, Any], alerts: list[dict[str, Any]]
) -> ObservationRecorded:
    return ObservationRecorded.model_validate(
        {**to_read(infusion, obs).model_dump(), "alerts": [alert_store.to_read(a) for a in alerts]}
    )


def _replay(
    db: Session, infusion: Infusion, obs_id: uuid.UUID, item_hash: str
) -> ObservationRecorded | None:
    """The first answer of a replayed id; an observation stored before answers were kept is
    answered as it now stands."""
    stored = _STATEMENTS.stored(db, [obs_id])
    if not stored:
        return None
    check_replays(stored, infusion.id, {obs_id: (-1, item_hash)}, ["body"])
    if stored[0].answer is not None:
        return ObservationRecorded.model_validate_json(stored[0].answer)
    observation = db.get_one(Observation, obs_id)
    return _recorded(
        infusion, observation, alert_queries.alerts_with_evidence(db, observation_id=obs_id)
    )


def list_observations(
    db: Session,
    principal: Principal,
    infusion_id: uuid.UUID,
    *,
    kind: str | None,
    include_entered_in_error: bool,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> tuple[Infusion, list[Observation]]:
    infusion = load_infusion(db, principal, infusion_id)
    query = select(Observation).where(Observation.infusion_id == infusion.id)
    if kind is not None:
        query = query.where(Observation.kind == kind)
    if not include_entered_in_error:
        query = query.where(Observation.status == "final")
    if after is not None:
        query = query.where(tuple_(Observation.measured_at, Observation.id) > tuple_(*after))
    rows = list(db.scalars(query.order_by(Observation.measured_at, Observation.id).limit(limit)))
    audit.record(db, principal, "observation.list", "Session", infusion.id)
    return infusion, rows


def enter_in_error(
    db: Session, principal: Principal, entry_id: uuid.UUID, reason: str
) -> ObservationRead:
    infusion, found = flag_in_error(db, principal, Observation, entry_id, reason, "observation")
    return to_read(infusion, found)


_STATEMENTS = entry_statements(table_of(Observation))
