"""Observation search: readings (one Observation per vital sign and a panel of them) and
side-effect observations, as one stable order, paged by a cursor that never skips or repeats a resource."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from functools import partial
from typing import Any, NamedTuple, cast

from sqlalchemy import ColumnElement, false, func, or_, select, true, tuple_
from sqlalchemy.orm import Session

from app.audit import service as audit
from app.auth.deps import Principal
from app.errors import NotFound, ValidationFailed
from app.fhir import mapping
from app.fhir.codes import OBSERVATION_ID, PANEL_SUFFIX, PART_BY_SUFFIX, PARTS, READING_ID
from app.fhir.models import ObservationIdentifier
from app.fhir.params import (
    Bound,
    Selection,
    Token,
    last_updated_bounds,
    parse_tokens,
    reference_id,
    select_codes,
)
from app.infusions.models import Infusion
from app.observations.models import Observation
from app.patients.models import Patient
from app.readings.models import Reading
from app.schemas import decode_cursor, encode_cursor, parse_sequence, parse_time, parse_uuid

# A resource's place in the order: bedside time, the entry's id, readings before observations
# (should both share an id), and the part of the reading in PARTS order, its panel after them:
# after the members it references, and a cursor given before readings had panels still names
# the same part.
Key = tuple[datetime, uuid.UUID, int, int]
PART_INDEX = {**{part.suffix: index for index, part in enumerate(PARTS)}, PANEL_SUFFIX: len(PARTS)}
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
    return (
        parse_time(when), parse_uuid(ident),
        parse_sequence(rank, "_cursor"), parse_sequence(part, "_cursor"),
    )  # fmt: skip


def _scope(
    db: Session,
    principal: Principal,
    encounter: str | None,
    patient: str | None,
    identified: bool,
) -> tuple[uuid.UUID | None, list[Callable[[Any], ColumnElement[bool]]]]:
    """The Encounter or Patient searched (of the caller's clinic), as conditions on a model.

    A search by identifier may leave both out: it then looks through the caller's clinic."""
    clinic_id = principal.require_clinic()
    encounter_id = reference_id(encounter, "Encounter", "encounter")
    patient_id = reference_id(patient, "Patient", "patient")
    if encounter_id is None and patient_id is None and not identified:
        raise ValidationFailed(
            "search Observations by encounter, by patient or by identifier",
            [
                {
                    "loc": ["query", "encounter"],
                    "msg": "encounter, patient or identifier is required",
                }
            ],
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
    return encounter_id or patient_id, conditions


def parse_identifiers(value: str) -> list[Token]:
    if "\x00" in value:
        raise ValidationFailed(
            "identifier: NUL is not allowed", [{"loc": ["query", "identifier"], "msg": "NUL"}]
        )
    return parse_tokens(value, "identifier")


def _same_id(column: Any, value: str | None) -> ColumnElement[bool]:
    if value is None:
        return true()
    try:
        return cast(ColumnElement[bool], column == uuid.UUID(value))
    except ValueError:
        return false()


def reading_identified(token: Token, clinic_id: uuid.UUID) -> ColumnElement[bool]:
    """A reading carries ``token``: its own identifier, or one a client gave it (in any
    system, Vigil's own included: the resource shows both, so either finds it)."""
    own = _same_id(Reading.id, token.code) if token.system in (None, READING_ID) else false()
    given = select(ObservationIdentifier.reading_id).where(
        ObservationIdentifier.clinic_id == clinic_id
    )
    if token.system is not None:
        given = given.where(ObservationIdentifier.system == token.system)
    if token.code is not None:
        given = given.where(ObservationIdentifier.value == token.code)
    return or_(own, Reading.id.in_(given))


def _observation_identified(token: Token) -> ColumnElement[bool]:
    """A side-effect observation carries ``token``: only its own identifier can match."""
    if token.system in (None, OBSERVATION_ID):
        return _same_id(Observation.id, token.code)
    return false()


def search_observations(
    db: Session,
    principal: Principal,
    *,
    encounter: str | None,
    patient: str | None,
    codes: Sequence[str],
    categories: Sequence[str],
    last_updated: Sequence[str],
    identifiers: Sequence[str] = (),
    count: int,
    cursor: str | None,
    self_url: str,
    base: str,
) -> dict[str, Any]:
    """A searchset Bundle: ``total`` counts every match, ``next`` continues after this page."""
    searched, scope = _scope(db, principal, encounter, patient, bool(identifiers))
    selection = select_codes(codes, categories)
    bounds = last_updated_bounds(last_updated)
    # Repeated identifier parameters must all match; commas in one are alternatives.
    wanted = [parse_identifiers(value) for value in identifiers]
    after = _decode(cursor) if cursor else None
    readings_where = _readings_where(scope, selection, bounds)
    if readings_where is not None:
        clinic_id = principal.require_clinic()
        readings_where += [or_(*(reading_identified(t, clinic_id) for t in ts)) for ts in wanted]
    observations_where = [
        *(c(Observation) for c in scope),
        Observation.kind.in_(sorted(selection.kinds)),
        *_updated_within(Observation, bounds),
        *(or_(*(_observation_identified(t) for t in ts)) for ts in wanted),
    ]
    total = _total(db, selection, readings_where, observations_where)

    found = [
        *_reading_items(db, readings_where, selection, after, count + 2),
        *_observation_items(db, observations_where, selection, after, count + 2),
    ]
    ordered = sorted(
        (item for item in found if after is None or item.key > after), key=lambda i: i.key
    )
    page = ordered[:count]
    next_url = None
    if len(ordered) > count and page:
        last = page[-1].key
        next_cursor = encode_cursor(last[0], last[1], last[2], last[3])
        next_url = f"{base}/Observation?{_with_cursor(self_url, next_cursor)}"
    if searched is not None:
        audit.record(db, principal, "fhir.observation.search", "Observation", searched)
    else:  # a search of the whole clinic: the sessions whose data it showed
        audit.record_each(
            db, principal, "fhir.observation.search", "Encounter", (i.session_id for i in page)
        )
    return mapping.bundle(
        [item.make() for item in page], base=base, total=total, self_url=self_url, next_url=next_url
    )


class Item(NamedTuple):
    key: Key  # the resource's place in the order
    session_id: uuid.UUID  # the session it belongs to
    make: Callable[[], dict[str, Any]]  # how to make the resource


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
    """The selected parts (and panels) of the first ``limit`` readings from ``after`` on."""
    if where is None:
        return []
    rows = _entries_from(db, Reading, where, after, limit)
    identifiers = client_identifiers(db, [r.id for r, _ in rows])
    items: list[Item] = []
    for reading, owner in rows:
        for suffix in mapping.reading_suffixes(reading, selection):
            make = partial(
                mapping.reading_resource, reading, suffix, owner, identifiers.get(reading.id, [])
            )
            items.append(Item(reading_key(reading, suffix), reading.infusion_id, make))
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
        Item(
            observation_key(obs),
            obs.infusion_id,
            partial(mapping.side_effect_observation, obs, owner),
        )
        for obs, owner in rows
    ]
    return items


def _readings_where(
    scope: Sequence[Callable[[Any], ColumnElement[bool]]],
    selection: Selection,
    bounds: Sequence[Bound],
) -> list[ColumnElement[bool]] | None:
    """Conditions on readings with a selected Observation; None when none is selected. Every
    reading with a part has a panel."""
    suffixes = PART_BY_SUFFIX if selection.panel else sorted(selection.parts)
    columns = [getattr(Reading, PART_BY_SUFFIX[s].field) for s in suffixes]
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
        if selection.panel:  # every reading found has a part (readings_where), so a panel
            counts.append(func.count())
        total += int(db.scalar(select(sum(counts[1:], counts[0])).where(*readings_where)) or 0)
    if selection.kinds:
        total += int(db.scalar(select(func.count()).where(*observations_where)) or 0)
    return total


def _with_cursor(self_url: str, cursor: str) -> str:
    query = self_url.split("?", 1)[1] if "?" in self_url else ""
    kept = [p for p in query.split("&") if p and not p.startswith("_cursor=")]
    return "&".join([*kept, f"_cursor={cursor}"])
