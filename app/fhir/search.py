"""Observation search: readings (one Observation per vital sign) and side-effect observations,
as one stable order, paged by a cursor that never skips or repeats a resource."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from functools import partial
from typing import Any

from sqlalchemy import ColumnElement, func, or_, select, tuple_
from sqlalchemy.orm import Session

from app.audit import service as audit
from app.auth.deps import Principal
from app.errors import NotFound, ValidationFailed
from app.fhir import mapping
from app.fhir.codes import PART_BY_SUFFIX, PARTS
from app.fhir.models import ObservationIdentifier
from app.fhir.params import Bound, Selection, last_updated_bounds, reference_id, select_codes
from app.infusions.models import Infusion
from app.observations.models import Observation
from app.patients.models import Patient
from app.readings.models import Reading
from app.schemas import decode_cursor, encode_cursor, parse_time, parse_uuid

# A resource's place in the order: bedside time, the entry's id, readings before observations
# (should both share an id), and the part of the reading in PARTS order.
Key = tuple[datetime, uuid.UUID, int, int]
PART_INDEX = {part.suffix: index for index, part in enumerate(PARTS)}
READING, OBSERVATION = 0, 1


def reading_key(reading: Any, suffix: str) -> Key:
    return (reading.measured_at, reading.id, READING, PART_INDEX[suffix])


def observation_key(obs: Any) -> Key:
    return (obs.measured_at, obs.id, OBSERVATION, 0)


def client_identifiers(
    db: Session, reading_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[tuple[str, str]]]:
    """The identifiers clients gave readings they created through FHIR."""
    found: dict[uuid.UUID, list[tuple[str, str]]] = {}
    if reading_ids:
        query = select(ObservationIdentifier).where(
            ObservationIdentifier.reading_id.in_(reading_ids)
        )
        for row in db.scalars(
            query.order_by(ObservationIdentifier.system, ObservationIdentifier.value)
        ):
            found.setdefault(row.reading_id, []).append((row.system, row.value))
    return found


def _updated_within(model: Any, bounds: Sequence[Bound]) -> list[ColumnElement[bool]]:
    updated = func.coalesce(model.entered_in_error_at, model.recorded_at)
    return [updated >= b.at if b.at_least else updated < b.at for b in bounds]


def _decode(cursor: str) -> Key:
    when, ident, rank, part = decode_cursor(cursor, 4)
    if not (rank.isdigit() and part.isdigit()):
        raise ValidationFailed(
            "cursor is not valid", [{"loc": ["query", "_cursor"], "msg": "invalid cursor"}]
        )
    return (parse_time(when), parse_uuid(ident), int(rank), int(part))


def _scope(
    db: Session, principal: Principal, encounter: str | None, patient: str | None
) -> tuple[uuid.UUID, list[Callable[[Any], ColumnElement[bool]]]]:
    """The Encounter or Patient searched (of the caller's clinic), as conditions on a model."""
    clinic_id = principal.require_clinic()
    encounter_id = reference_id(encounter, "Encounter", "encounter")
    patient_id = reference_id(patient, "Patient", "patient")
    if encounter_id is None and patient_id is None:
        raise ValidationFailed(
            "search Observations by encounter or by patient",
            [{"loc": ["query", "encounter"], "msg": "encounter or patient is required"}],
        )
    conditions: list[Callable[[Any], ColumnElement[bool]]] = [lambda m: m.clinic_id == clinic_id]
    if encounter_id is not None:
        infusion = db.get(Infusion, encounter_id)
        if infusion is None or infusion.clinic_id != clinic_id:
            raise NotFound("no such Encounter")
        conditions.append(lambda m: m.infusion_id == encounter_id)
    if patient_id is not None:
        found = db.get(Patient, patient_id)
        if found is None or found.clinic_id != clinic_id:
            raise NotFound("no such Patient")
        sessions = select(Infusion.id).where(Infusion.patient_id == patient_id)
        conditions.append(lambda m: m.infusion_id.in_(sessions))
    return encounter_id or patient_id, conditions  # type: ignore[return-value]


def search_observations(
    db: Session,
    principal: Principal,
    *,
    encounter: str | None,
    patient: str | None,
    codes: Sequence[str],
    categories: Sequence[str],
    last_updated: Sequence[str],
    count: int,
    cursor: str | None,
    self_url: str,
    base: str,
) -> dict[str, Any]:
    """A searchset Bundle: ``total`` counts every match, ``next`` continues after this page."""
    searched, scope = _scope(db, principal, encounter, patient)
    selection = select_codes(codes, categories)
    bounds = last_updated_bounds(last_updated)
    after = _decode(cursor) if cursor else None
    readings_where = _readings_where(scope, selection, bounds)
    observations_where = [
        *(c(Observation) for c in scope),
        Observation.kind.in_(sorted(selection.kinds)),
        *_updated_within(Observation, bounds),
    ]
    total = _total(db, selection, readings_where, observations_where)

    found = [
        *_reading_items(db, readings_where, selection, after, count + 2),
        *_observation_items(db, observations_where, selection, after, count + 2),
    ]
    ordered = sorted(
        (item for item in found if after is None or item[0] > after), key=lambda i: i[0]
    )
    page = ordered[:count]
    next_url = None
    if len(ordered) > count and page:
        last = page[-1][0]
        next_cursor = encode_cursor(last[0], last[1], last[2], last[3])
        next_url = f"{base}/Observation?{_with_cursor(self_url, next_cursor)}"
    audit.record(db, principal, "fhir.observation.search", "Observation", searched)
    return mapping.bundle(
        [make() for _, make in page], base=base, total=total, self_url=self_url, next_url=next_url
    )


Item = tuple[Key, Callable[[], dict[str, Any]]]  # a resource's place, and how to make it


def _entries_from(
    db: Session,
    model: type[Reading] | type[Observation],
    where: list[ColumnElement[bool]],
    after: Key | None,
    limit: int,
) -> Sequence[Any]:
    """The first ``limit`` entries of ``model`` (with their patient) in bedside order from
    ``after`` on."""
    query = (
        select(model, Infusion.patient_id)
        .join(Infusion, Infusion.id == model.infusion_id)
        .where(*where)
    )
    if after is not None:
        query = query.where(tuple_(model.measured_at, model.id) >= tuple_(*after[:2]))
    return db.execute(query.order_by(model.measured_at, model.id).limit(limit)).all()


def _reading_items(
    db: Session,
    where: list[ColumnElement[bool]] | None,
    selection: Selection,
    after: Key | None,
    limit: int,
) -> list[Item]:
    """The selected parts of the first ``limit`` readings from ``after`` on."""
    if where is None:
        return []
    rows = _entries_from(db, Reading, where, after, limit)
    identifiers = client_identifiers(db, [r.id for r, _ in rows])
    items: list[Item] = []
    for reading, owner in rows:
        for part in mapping.reading_parts(reading, sorted(selection.parts)):
            make = partial(
                mapping.reading_observation, reading, part, owner, identifiers.get(reading.id, [])
            )
            items.append((reading_key(reading, part.suffix), make))
    return items


def _observation_items(
    db: Session,
    where: list[ColumnElement[bool]],
    selection: Selection,
    after: Key | None,
    limit: int,
) -> list[Item]:
    """The first ``limit`` side-effect observations from ``after`` on."""
    if not selection.kinds:
        return []
    rows = _entries_from(db, Observation, where, after, limit)
    items: list[Item] = [
        (observation_key(obs), partial(mapping.side_effect_observation, obs, owner))
        for obs, owner in rows
    ]
    return items


def _readings_where(
    scope: Sequence[Callable[[Any], ColumnElement[bool]]],
    selection: Selection,
    bounds: Sequence[Bound],
) -> list[ColumnElement[bool]] | None:
    """Conditions on readings with at least one selected part; None when no part is selected."""
    columns = [getattr(Reading, PART_BY_SUFFIX[s].field) for s in sorted(selection.parts)]
    if not columns:
        return None
    return [
        *(c(Reading) for c in scope),
        or_(*(column.is_not(None) for column in columns)),
        *_updated_within(Reading, bounds),
    ]


def _total(
    db: Session,
    selection: Selection,
    readings_where: list[ColumnElement[bool]] | None,
    observations_where: list[ColumnElement[bool]],
) -> int:
    total = 0
    if readings_where is not None:
        counts = [func.count(getattr(Reading, PART_BY_SUFFIX[s].field)) for s in selection.parts]
        total += int(db.scalar(select(sum(counts[1:], counts[0])).where(*readings_where)) or 0)
    if selection.kinds:
        total += int(db.scalar(select(func.count()).where(*observations_where)) or 0)
    return total


def _with_cursor(self_url: str, cursor: str) -> str:
    query = self_url.split("?", 1)[1] if "?" in self_url else ""
    kept = [p for p in query.split("&") if p and not p.startswith("_cursor=")]
    return "&".join([*kept, f"_cursor={cursor}"])
