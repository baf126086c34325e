"""The pure parts of the FHIR facade: search parameters as values, and an Observation read as a
reading. No database, no HTTP."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from app.errors import BadRequest, ValidationFailed
from app.fhir.intake import read_observation
from app.fhir.params import Bound, Token, if_none_exist, last_updated_bounds, select_codes

AT = datetime(2026, 11, 21, 14, 5, tzinfo=UTC)
SECOND, TENTH, MICRO = timedelta(seconds=1), timedelta(milliseconds=100), timedelta(microseconds=1)


@pytest.mark.parametrize(
    ("value", "bounds"),
    [("eq2026-11-21T14:05:00Z", [Bound(AT, True), Bound(AT + SECOND, False)]),
     ("2026-11-21T14:05:00Z", [Bound(AT, True), Bound(AT + SECOND, False)]),
     ("eq2026-11-21T14:05:00.5Z", [Bound(AT + 5 * TENTH, True), Bound(AT + 6 * TENTH, False)]),
     ("eq2026-11-21T14:05Z", [Bound(AT, True), Bound(AT + 60 * SECOND, False)]),
     ("gt2026-11-21T14:05:00Z", [Bound(AT + MICRO, True)]),
     ("ge2026-11-21T14:05:00Z", [Bound(AT, True)]),
     ("lt2026-11-21T14:05:00Z", [Bound(AT, False)]),
     ("le2026-11-21T14:05:00Z", [Bound(AT + MICRO, False)]),
     ("gt2026-11-21T14:05:00.000001Z", [Bound(AT + 2 * MICRO, True)]),
     ("gt2026-11-21T15:05:00+01:00", [Bound(AT + MICRO, True)]),
     ("gt2026-11-21T15:05:00 01:00", [Bound(AT + MICRO, True)]),  # "+" sent unencoded
     ("ge2026-11-21T14:05Z", [Bound(AT, True)])],
)  # fmt: skip
def test_last_updated_compares_with_the_instant_and_eq_with_its_span(
    value: str, bounds: list[Bound]
) -> None:
    assert last_updated_bounds([value]) == bounds


def test_tokens_select_reading_parts_and_observation_kinds() -> None:
    assert select_codes(["8867-4"], []).parts == {"hr"}
    assert select_codes(["8867-4"], []).kinds == set()
    assert select_codes(["http://loinc.org|"], []).parts == {"hr", "bp", "spo2", "rr", "temp"}
    assert select_codes([], ["survey"]).kinds == {"sedation", "dissociation"}
    assert select_codes(["8867-4,nausea"], ["exam"]).parts == set()
    assert select_codes(["8867-4,nausea"], ["exam"]).kinds == {"nausea"}
    assert select_codes(["8867-4", "8310-5"], []).parts == set()  # repeated: all must match
    assert select_codes([], []).panel and select_codes([], ["vital-signs"]).panel
    assert select_codes(["http://loinc.org|"], []).panel
    assert select_codes(["85353-1"], []).parts == set() and select_codes(["85353-1"], []).panel
    assert not select_codes(["8867-4"], []).panel
    assert not select_codes([], ["exam"]).panel
    assert not select_codes(["85353-1", "8867-4"], []).panel
    with pytest.raises(ValidationFailed):
        select_codes(["8867-4,"], [])


@pytest.mark.parametrize(
    ("header", "token"),
    [("identifier=urn:x|42", Token("urn:x", "42")), ("identifier=42", Token(None, "42")),
     ("identifier=|42", Token("", "42")), ("identifier=urn%3Ax%7C4%202", Token("urn:x", "4 2"))],
)  # fmt: skip
def test_if_none_exist_is_one_identifier_token(header: str, token: Token) -> None:
    assert if_none_exist(header) == token


@pytest.mark.parametrize(
    "header",
    ["", "identifier", "identifier=urn:x|", "_id=1", "identifier=1&identifier=2",
     f"identifier=urn:x|{'9' * 256}"],
)  # fmt: skip
def test_if_none_exist_refuses_anything_else(header: str) -> None:
    with pytest.raises(BadRequest):
        if_none_exist(header)


def _observation(**fields: Any) -> dict[str, Any]:
    return {
        "resourceType": "Observation", "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8310-5"}]},
        "encounter": {"reference": "Encounter/abc"}, "effectiveDateTime": "2026-11-21T14:05:00Z",
        "valueQuantity": {"value": 100.4, "system": "http://unitsofmeasure.org", "code": "[degF]"},
        **fields,
    }  # fmt: skip


def test_fahrenheit_becomes_celsius_to_one_decimal() -> None:
    intake = read_observation(_observation())
    assert intake.reading.temperature_c == 38.0
    assert intake.reading.measured_at == AT
    assert (intake.encounter, intake.subject, intake.identifiers) == ("abc", None, ())


def test_a_device_and_identifiers_are_kept() -> None:
    intake = read_observation(
        _observation(
            device={"display": "thermometer 3"},
            identifier=[
                {"system": "urn:x", "value": "1"},
                {"value": "2"},
                {"system": "urn:x", "value": "1"},
            ],
        )
    )
    assert (intake.reading.source, intake.reading.device_id) == ("device", "thermometer 3")
    assert intake.identifiers == (("urn:x", "1"), ("", "2"))


def test_a_reference_may_be_absolute() -> None:
    intake = read_observation(
        _observation(encounter={"reference": "https://ehr.example/fhir/R4/Encounter/abc"})
    )
    assert intake.encounter == "abc"
