"""FHIR Observation create: a vital-signs Observation becomes a reading of its Encounter, by the
same path as POST /v1/sessions/{id}/readings; bad resources are refused and nothing is stored."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest

from app.errors import BadRequest
from app.fhir.shape import MAX_ISSUES, parse_body
from tests.factories import World, ago, iso
from tests.fhir_support import (
    CATEGORY,
    FHIR_JSON,
    LOINC,
    blood_pressure,
    codes,
    fhir_body,
    outcome,
    post,
    quantity,
    search,
    valid,
    vital,
)

GATEWAY = "urn:example:device-gateway"
FHIR_BASE = "http://testserver/fhir/R4"  # the test client's own host
UNITS = {"heart_rate": "/min", "respiratory_rate": "/min", "spo2": "%", "temperature_c": "Cel"}


def created(response: Any) -> dict[str, Any]:
    """The resource of a 201, once its Location is checked to read it back."""
    body = fhir_body(response, 201)
    assert body["resourceType"] == "Observation"
    # Absolute, as FHIR's create interaction gives it: [base]/Observation/[id].
    assert response.headers["location"] == f"{FHIR_BASE}/Observation/{body['id']}"
    return body


@pytest.mark.parametrize(
    ("code", "value", "unit", "field", "stored"),
    [("8867-4", 88, "/min", "heart_rate", 88), ("8867-4", 88.0, "{beats}/min", "heart_rate", 88),
     ("9279-1", 16, "/min", "respiratory_rate", 16), ("2708-6", 97, "%", "spo2", 97),
     ("59408-5", 95, "%", "spo2", 95), ("8310-5", 37.2, "Cel", "temperature_c", 37.2),
     ("8310-5", 98.6, "[degF]", "temperature_c", 37.0),
     ("8310-5", 101.3, "[degF]", "temperature_c", 38.5),
     ("8310-5", 100.5, "[degF]", "temperature_c", 38.1),  # 38.06 to one decimal
     ("8310-5", 96.71, "[degF]", "temperature_c", 36.0),  # 35.95 exactly: half up
     ("8310-5", 101.21, "[degF]", "temperature_c", 38.5),  # 38.45 exactly: half up
     ("8310-5", 37.25, "Cel", "temperature_c", 37.3)],
)  # fmt: skip
def test_a_vital_sign_is_stored_as_a_reading(
    world: World, code: str, value: float, unit: str, field: str, stored: float
) -> None:
    session = world.session(state="in_progress")
    resource = vital(session, code, value, unit)
    body = created(post(world.ehr, resource))
    assert body["status"] == "final" and code in codes(body)
    assert body["valueQuantity"] == quantity(stored, UNITS[field])
    assert body["effectiveDateTime"] == resource["effectiveDateTime"]
    assert fhir_body(world.ehr.get(f"/fhir/R4/Observation/{body['id']}")) == body
    reading_id, _ = body["id"].rsplit("-", 1)
    [reading] = [r for r in world.readings(session) if r["id"] == reading_id]
    assert reading[field] == stored
    assert [
        k
        for k in ("heart_rate", "spo2", "respiratory_rate", "temperature_c")
        if reading[k] is not None
    ] == [field]


def test_a_blood_pressure_panel_posted_via_fhir_reads_back_via_v1_field_for_field(
    world: World,
) -> None:
    session = world.session(state="in_progress")
    resource = blood_pressure(
        session, 142, 91, device={"identifier": {"value": "cuff-7"}}, effectiveDateTime=ago(3)
    )
    body = created(post(world.nurse, resource))
    assert codes(body) == {"85354-9"} and body["device"] == {"display": "cuff-7"}
    reading_id = body["id"].removesuffix("-bp")
    [reading] = [r for r in world.readings(session) if r["id"] == reading_id]
    assert reading == {
        **reading,
        "session_id": session["id"], "measured_at": resource["effectiveDateTime"],
        "systolic": 142, "diastolic": 91, "heart_rate": None, "spo2": None,
        "respiratory_rate": None, "temperature_c": None, "consciousness": None,
        "on_oxygen": None, "source": "device", "device_id": "cuff-7", "status": "final",
        "entered_in_error_at": None, "phase": "intra",
    }  # fmt: skip
    assert body["issued"] == reading["recorded_at"]


def test_a_reading_posted_via_v1_reads_back_via_fhir(world: World) -> None:
    session = world.session(state="in_progress")
    reading = world.reading(
        session, measured_at=ago(4), heart_rate=101, systolic=150, diastolic=95, spo2=94,
        respiratory_rate=22, temperature_c=38.3, consciousness="voice", device_id="monitor-2",
        source="device",
    )  # fmt: skip
    bundle = search(world.ehr, encounter=session["id"])
    found = {
        e["resource"]["id"].rsplit("-", 1)[1]: e["resource"]
        for e in bundle["entry"]
        if e["resource"]["id"].startswith(reading["id"])
    }
    # consciousness has none; the panel groups the five
    assert set(found) == {"panel", "hr", "bp", "spo2", "rr", "temp"}
    assert [m["reference"] for m in found["panel"]["hasMember"]] == [
        f"Observation/{reading['id']}-{part}" for part in ("hr", "bp", "spo2", "rr", "temp")
    ]
    assert found["hr"]["valueQuantity"] == quantity(101, "/min")
    assert [c["valueQuantity"] for c in found["bp"]["component"]] == [
        quantity(150, "mm[Hg]"), quantity(95, "mm[Hg]"),
    ]  # fmt: skip
    assert found["spo2"]["valueQuantity"] == quantity(94, "%")
    assert found["rr"]["valueQuantity"] == quantity(22, "/min")
    assert found["temp"]["valueQuantity"] == quantity(38.3, "Cel")
    for resource in found.values():
        assert resource["effectiveDateTime"] == reading["measured_at"]
        assert resource["issued"] == reading["recorded_at"]
        assert resource["device"] == {"display": "monitor-2"}


def test_a_fhir_reading_is_judged_like_a_v1_one(world: World) -> None:
    session = world.session(state="in_progress")
    body = created(post(world.ehr, vital(session, "8867-4", 135)))
    alerts = world.nurse.get("/v1/alerts", params={"session_id": session["id"]}).json()["items"]
    [alert] = [a for a in alerts if a["rule"] == "hr.high"]
    assert alert["severity"] == "high" and alert["reading_id"] == body["id"].removesuffix("-hr")


def test_subject_may_be_omitted_and_follows_from_the_encounter(world: World) -> None:
    session = world.session(state="in_progress")
    resource = vital(session, "8867-4", 70)
    del resource["subject"], resource["category"]
    body = created(post(world.clinician, resource))
    assert body["subject"] == {"reference": f"Patient/{session['patient_id']}"}


# --- bad input: (what is wrong, how to break a good heart-rate Observation, status, element) ----
Breaker = Callable[[dict[str, Any], dict[str, Any]], Any]


def _set(**changes: Any) -> Breaker:
    return lambda r, s: {**r, **changes}


def _drop(*names: str) -> Breaker:
    return lambda r, s: {k: v for k, v in r.items() if k not in names}


_MODIFIER = {"url": "http://example.org/not-measured", "valueBoolean": True}


def _modified_component(session: dict[str, Any], *, in_range: bool = False) -> dict[str, Any]:
    """A blood pressure whose diastolic component carries a modifier extension (or its range)."""
    panel = blood_pressure(session, 130, 80)
    diastolic = panel["component"][1]
    if in_range:
        diastolic["referenceRange"] = [
            {"high": quantity(90, "mm[Hg]"), "modifierExtension": [_MODIFIER]}
        ]
    else:
        diastolic["modifierExtension"] = [_MODIFIER]
    return panel


def _bp_without(*codes_: str) -> Breaker:
    def make(r: dict[str, Any], s: dict[str, Any]) -> dict[str, Any]:
        panel = blood_pressure(s, 130, 80)
        panel["component"] = [
            c for c in panel["component"] if c["code"]["coding"][0]["code"] not in codes_
        ]
        return panel if panel["component"] else {k: v for k, v in panel.items() if k != "component"}

    return make


def _quantity(**changes: Any) -> Breaker:
    return lambda r, s: {**r, "valueQuantity": {**r["valueQuantity"], **changes}}


BAD_INPUT: list[tuple[str, Breaker, int, str]] = [
    ("not JSON", lambda r, s: b"{not json", 400, ""),
    ("a JSON array", lambda r, s: [r], 400, ""),
    ("wrong resourceType", _set(resourceType="Patient"), 400, "Observation.resourceType"),
    ("no resourceType", _drop("resourceType"), 400, ""),
    ("an element R4 does not have", _set(colour="red"), 400, "Observation.colour"),
    ("missing encounter", _drop("encounter"), 422, "Observation.encounter"),
    ("missing subject and encounter", _drop("subject", "encounter"), 422, "Observation.encounter"),
    ("encounter not an Encounter", lambda r, s: {**r, "encounter": {"reference": f"Patient/{s['patient_id']}"}},
     422, "Observation.encounter.reference"),
    ("subject of another patient", _set(subject={"reference": f"Patient/{uuid.uuid4()}"}), 422, "Observation.subject"),
    ("missing status", _drop("status"), 422, "Observation.status"),
    ("status entered-in-error", _set(status="entered-in-error"), 422, "Observation.status"),
    ("status preliminary", _set(status="preliminary"), 422, "Observation.status"),
    ("missing code", _drop("code"), 422, "Observation.code"),
    ("unknown LOINC code", _set(code={"coding": [{"system": LOINC, "code": "1234-5"}]}), 422, "Observation.code"),
    ("a vital signs panel", lambda r, s: {**_drop("valueQuantity")(r, s), "code": {"coding": [{"system": LOINC, "code": "85353-1"}]},
     "hasMember": [{"reference": f"Observation/{uuid.uuid4()}-hr"}]}, 422, "unknown LOINC code 85353-1"),
    ("no LOINC coding", _set(code={"coding": [{"system": "http://snomed.info/sct", "code": "364075005"}]}), 422, "Observation.code"),
    ("systolic alone", _set(code={"coding": [{"system": LOINC, "code": "8480-6"}]}, valueQuantity=quantity(130, "mm[Hg]")), 422, "Observation.code"),
    ("wrong unit", _quantity(unit="mm[Hg]", code="mm[Hg]"), 422, "Observation.valueQuantity.code"),
    ("unit not UCUM", _quantity(system="http://example.org/units", code="/min"), 422, "Observation.valueQuantity.code"),
    ("temperature in kelvin", lambda r, s: vital(s, "8310-5", 310, "K"), 422, "Observation.valueQuantity.code"),
    ("BP panel without components", _bp_without("8480-6", "8462-4"), 422, "Observation.component"),
    ("BP panel without diastolic", _bp_without("8462-4"), 422, "Observation.component"),
    ("BP with diastolic above systolic", lambda r, s: blood_pressure(s, 90, 120), 422, "8462-4"),
    ("naive dateTime", _set(effectiveDateTime="2026-11-21T14:05:00"), 422, "Observation.effectiveDateTime"),
    ("a date without time", _set(effectiveDateTime="2026-11-21"), 422, "Observation.effectiveDateTime"),
    ("no effective time", _drop("effectiveDateTime"), 422, "Observation.effectiveDateTime"),
    ("a period instead", lambda r, s: {**_drop("effectiveDateTime")(r, s), "effectivePeriod": {"start": ago(2)}},
     422, "Observation.effectivePeriod"),
    ("measured in the future", lambda r, s: {**r, "effectiveDateTime": ago(-10)}, 422, "Observation.effectiveDateTime"),
    ("heart rate above 300", _quantity(value=301), 422, "Observation.valueQuantity.value"),
    ("SpO2 above 100", lambda r, s: vital(s, "2708-6", 101, "%"), 422, "Observation.valueQuantity.value"),
    ("temperature above 45", lambda r, s: vital(s, "8310-5", 46, "Cel"), 422, "Observation.valueQuantity.value"),
    ("temperature just above 45, never rounded onto it", lambda r, s: vital(s, "8310-5", 45.04, "Cel"), 422,
     "Observation.valueQuantity.value"),
    ("temperature just below 25 in [degF]", lambda r, s: vital(s, "8310-5", 76.99, "[degF]"), 422,
     "Observation.valueQuantity.value"),
    ("a fractional heart rate", _quantity(value=72.5), 422, "Observation.valueQuantity.value"),
    ("a value that is no number", _quantity(value="72"), 400, "Observation.valueQuantity.value"),
    ("no value", _drop("valueQuantity"), 422, "Observation.valueQuantity"),
    ("a string value", lambda r, s: {**_drop("valueQuantity")(r, s), "valueString": "72"}, 422, "Observation.valueString"),
    ("a modifier extension", _set(modifierExtension=[{"url": "http://example.org/x", "valueBoolean": True}]),
     422, "Observation.modifierExtension"),
    ("rules of its own", _set(implicitRules="http://example.org/rules"), 422, "Observation.implicitRules"),
    ("a modifier extension on a component", lambda r, s: _modified_component(s), 422,
     "Observation.component[1].modifierExtension"),
    ("a modifier extension on a reference range",
     _set(referenceRange=[{"low": quantity(50, "/min"), "modifierExtension": [_MODIFIER]}]), 422,
     "Observation.referenceRange[0].modifierExtension"),
    ("a modifier extension on a component's reference range",
     lambda r, s: _modified_component(s, in_range=True), 422,
     "Observation.component[1].referenceRange[0].modifierExtension"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("what", "breaker", "status", "element"), BAD_INPUT, ids=[b[0] for b in BAD_INPUT]
)
def test_a_bad_resource_is_refused_with_an_operation_outcome_and_nothing_stored(
    world: World, what: str, breaker: Breaker, status: int, element: str
) -> None:
    session = world.session(state="in_progress")
    before = world.readings(session, include_entered_in_error=True)
    broken = breaker(copy.deepcopy(vital(session, "8867-4", 72)), session)
    if isinstance(broken, bytes):
        response = world.ehr.post(
            "/fhir/R4/Observation", content=broken, headers={"Content-Type": FHIR_JSON}
        )
    else:
        response = post(world.ehr, broken)
    body = outcome(response, status)
    if element:
        named = [e for i in body["issue"] for e in i.get("expression", [])] + [
            i["diagnostics"] for i in body["issue"]
        ]
        assert any(element in text for text in named), body
    assert world.readings(session, include_entered_in_error=True) == before


# --- the structure of R4 at any depth: (what, how to break the heart rate, element at fault) -----
def _put(*keys: str | int, value: Any) -> Breaker:
    """Sets ``value`` at the path ``keys`` (element names and array indexes) of the resource."""

    def make(r: dict[str, Any], s: dict[str, Any]) -> dict[str, Any]:
        target: Any = r
        for key in keys[:-1]:
            target = target[key]
        target[keys[-1]] = value
        return r

    return make


def _in_panel(*keys: str | int, value: Any) -> Breaker:
    """The same in a good blood pressure panel, whose components are then at fault."""
    return lambda r, s: _put(*keys, value=value)(blood_pressure(s, 130, 80), s)


def _misspell_value(r: dict[str, Any], s: dict[str, Any]) -> dict[str, Any]:
    return {**r, "valueQuantity": {
        ("vaule" if k == "value" else k): v for k, v in r["valueQuantity"].items()}}  # fmt: skip


EXT = "http://example.org/fhir/StructureDefinition/x"
NOT_R4: list[tuple[str, Breaker, str]] = [
    ("unknown element in valueQuantity", _put("valueQuantity", "bogus", value=1), "Observation.valueQuantity.bogus"),
    ("unknown element in a coding", _put("code", "coding", 0, "bogus", value=1), "Observation.code.coding[0].bogus"),
    ("unknown element in encounter", _put("encounter", "bogus", value=1), "Observation.encounter.bogus"),
    ("a misspelt value", _misspell_value, "Observation.valueQuantity.vaule"),
    ("valueQuantity and valueString", _put("valueString", value="72"), "Observation.valueString"),
    ("effectiveDateTime and effectivePeriod", _put("effectivePeriod", value={"start": ago(2)}),
     "Observation.effectivePeriod"),
    ("a unit that is an object", _put("valueQuantity", "unit", value={"a": 1}), "Observation.valueQuantity.unit"),
    ("meta a number", _put("meta", value=5), "Observation.meta"),
    ("extension a boolean", _put("extension", value=True), "Observation.extension"),
    ("note a number", _put("note", value=5), "Observation.note"),
    ("interpretation a string", _put("interpretation", value="x"), "Observation.interpretation"),
    ("status a number", _put("status", value=5), "Observation.status"),
    ("subject null", _put("subject", value=None), "Observation.subject"),
    ("identifier not an array", _put("identifier", value={"value": "x"}), "Observation.identifier"),
    ("a coding that is a string", _put("code", "coding", value=["8867-4"]), "Observation.code.coding[0]"),
    ("userSelected a string", _put("code", "coding", 0, "userSelected", value="true"),
     "Observation.code.coding[0].userSelected"),
    ("a period's start a number", _put("identifier", value=[{"value": "x", "period": {"start": 2026}}]),
     "Observation.identifier[0].period.start"),
    ("an annotation by two authors", _put("note", value=[{"authorString": "a", "text": "t",
     "authorReference": {"reference": "Practitioner/1"}}]), "Observation.note[0].authorReference"),
    ("unknown element in an extension's value", _put("extension", value=[{"url": EXT,
     "valueQuantity": {"value": 1, "bogus": 1}}]), "Observation.extension[0].valueQuantity.bogus"),
    ("a misspelt choice in a nested extension", _put("extension", value=[{"url": EXT,
     "extension": [{"url": "a", "valueStrin": "x"}]}]), "Observation.extension[0].extension[0].valueStrin"),
    ("unknown element in a reference range", _put("referenceRange", value=[{"low": {"value": 1, "bogus": 2}}]),
     "Observation.referenceRange[0].low.bogus"),
    ("primitive extensions on a complex element", _put("_code", value={"id": "x"}), "Observation._code"),
    ("unknown element in primitive extensions", _put("_status", value={"bogus": 1}), "Observation._status.bogus"),
    ("a contained resource without a type", _put("contained", value=[{"id": "x"}]),
     "Observation.contained[0].resourceType"),
    ("unknown element in a component", _in_panel("component", 0, "bogus", value=1), "Observation.component[0].bogus"),
    ("a component with two values", _in_panel("component", 1, "valueString", value="80"),
     "Observation.component[1].valueString"),
    ("unknown element in a component's value", _in_panel("component", 1, "valueQuantity", "bogus", value=1),
     "Observation.component[1].valueQuantity.bogus"),
]  # fmt: skip


@pytest.mark.parametrize(("what", "breaker", "element"), NOT_R4, ids=[b[0] for b in NOT_R4])
def test_what_r4_does_not_have_at_any_depth_is_refused_and_nothing_stored(
    world: World, what: str, breaker: Breaker, element: str
) -> None:
    session = world.session(state="in_progress")
    before = world.readings(session, include_entered_in_error=True)
    broken = breaker(copy.deepcopy(vital(session, "8867-4", 72)), session)
    body = outcome(post(world.ehr, broken), 400)
    assert [(i["code"], i["expression"]) for i in body["issue"]] == [("structure", [element])]
    assert world.readings(session, include_entered_in_error=True) == before


def test_each_problem_of_structure_is_an_issue_of_its_own(world: World) -> None:
    session = world.session(state="in_progress")
    resource = vital(session, "8867-4", 72, meta=5, note=5)
    resource["valueQuantity"]["bogus"] = 1
    resource["code"]["coding"][0]["display"] = 7
    body = outcome(post(world.ehr, resource), 400)
    assert sorted(e for i in body["issue"] for e in i["expression"]) == [
        "Observation.code.coding[0].display", "Observation.meta", "Observation.note",
        "Observation.valueQuantity.bogus",
    ]  # fmt: skip
    assert len(world.readings(session)) == 1


def test_a_body_of_many_mistakes_is_answered_with_the_first_few() -> None:
    raw = orjson.dumps({"resourceType": "Observation", **{f"bogus{i}": i for i in range(500)}})
    with pytest.raises(BadRequest) as refused:
        parse_body(raw)
    assert len(refused.value.extra["errors"]) == MAX_ISSUES


def test_deeply_nested_extensions_are_read_without_recursion() -> None:
    depth = 500  # orjson reads JSON 1024 levels deep; the check walks them without recursing
    raw = (
        b'{"resourceType": "Observation", "extension": ['
        + b'{"url": "u", "extension": [' * depth
        + b'{"url": "u", "valueBoolean": "yes"}'
        + b"]}" * depth
        + b"]}"
    )
    with pytest.raises(BadRequest) as refused:
        parse_body(raw)
    [error] = refused.value.extra["errors"]
    assert error["expression"].endswith(".extension[0].valueBoolean")
    assert error["expression"].count("extension[0]") == depth + 1


EXAMPLE = "http://example.org/fhir"
SNOMED = "http://snomed.info/sct"


def _coding(code: str, system: str = LOINC) -> dict[str, Any]:
    return {"id": "c", "extension": [{"url": f"{EXAMPLE}/x", "valueString": "x"}],
            "system": system, "version": "2.74", "code": code, "display": code,
            "userSelected": True}  # fmt: skip


def _concept(code: str, system: str = LOINC) -> dict[str, Any]:
    return {"id": "cc", "extension": [], "coding": [_coding(code, system)], "text": code}


def _period() -> dict[str, Any]:
    return {"id": "p", "extension": [{"url": f"{EXAMPLE}/x", "valueBoolean": True}],
            "start": ago(60), "end": ago(30)}  # fmt: skip


def _identifier(value: str) -> dict[str, Any]:
    return {"id": "i", "extension": [], "use": "official",
            "type": _concept("MR", "http://terminology.hl7.org/CodeSystem/v2-0203"),
            "system": GATEWAY, "value": value, "period": _period(),
            "assigner": {"display": "the gateway"}}  # fmt: skip


def _reference(reference: str) -> dict[str, Any]:
    return {"id": "r", "extension": [], "reference": reference, "type": reference.split("/")[0],
            "identifier": _identifier("ref-1"), "display": reference}  # fmt: skip


def _reference_range(low: float, high: float, unit: str) -> list[dict[str, Any]]:
    meaning = "http://terminology.hl7.org/CodeSystem/referencerange-meaning"
    return [{"id": "rr", "extension": [], "low": quantity(low, unit), "high": quantity(high, unit),
             "type": _concept("normal", meaning), "appliesTo": [_concept("248153007", SNOMED)],
             "age": {"id": "a", "extension": [], "low": quantity(18, "a"),
                     "high": quantity(120, "a")},
             "text": f"{low} to {high}"}]  # fmt: skip


def every_element(session: dict[str, Any]) -> dict[str, Any]:
    """A heart rate carrying every element of R4 that Vigil takes or passes over, each datatype
    inside with all its elements (implicitRules and modifierExtension change meaning: refused)."""
    sd = f"{EXAMPLE}/StructureDefinition"
    interpretation = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
    return {**vital(session, "8867-4", 72), **{
        "id": "from-the-gateway",
        "meta": {"id": "m", "extension": [], "versionId": "1", "lastUpdated": ago(1),
                 "source": GATEWAY, "profile": ["http://hl7.org/fhir/StructureDefinition/heartrate"],
                 "security": [_coding("N", "http://terminology.hl7.org/CodeSystem/v3-Confidentiality")],
                 "tag": [_coding("gateway", f"{EXAMPLE}/tags")]},
        "language": "en-GB",
        "text": {"id": "t", "extension": [], "status": "generated",
                 "div": '<div xmlns="http://www.w3.org/1999/xhtml">heart rate 72/min</div>'},
        "contained": [{"resourceType": "Device", "id": "cuff", "identifier": [{"value": "cuff-7"}]}],
        "extension": [
            {"id": "e", "url": f"{sd}/site", "extension": [
                {"url": "ward", "valueCodeableConcept": _concept("ward-3", f"{EXAMPLE}/wards")},
                {"url": "shift", "valuePeriod": _period()},
                {"url": "chair", "valueInteger": 4},
                {"url": "ratio", "valueRatio": {"numerator": quantity(1, "1"),
                                                "denominator": quantity(2, "1")}},
                {"url": "trace", "valueSampledData": {"origin": quantity(0, "1"), "period": 1000,
                                                      "dimensions": 1, "data": "1 2 3"}},
                {"url": "when", "valueTiming": {"event": [ago(5)], "repeat": {
                    "boundsDuration": quantity(1, "h"), "frequency": 1, "period": 1,
                    "periodUnit": "h"}}},
                {"url": "remark", "valueAnnotation": {"authorString": "gateway", "text": "x"}},
            ]},
            {"url": f"{sd}/room", "valueAddress": {"line": ["1 Main St"], "city": "Springfield"}},
        ],
        "identifier": [_identifier("msg-every")],
        "basedOn": [{"reference": "ServiceRequest/monitoring"}],
        "partOf": [{"reference": "Procedure/infusion"}],
        "_status": {"extension": [{"url": f"{sd}/checked", "valueBoolean": True}]},
        "category": [_concept("vital-signs", CATEGORY)],
        "code": _concept("8867-4"),
        "subject": _reference(f"Patient/{session['patient_id']}"),
        "focus": [{"reference": f"Patient/{session['patient_id']}"}],
        "encounter": _reference(f"Encounter/{session['id']}"),
        "_effectiveDateTime": {"id": "when", "extension": [{"url": f"{sd}/clock",
                                                            "valueString": "device"}]},
        "issued": ago(1),
        "performer": [{"reference": "Practitioner/nurse-1", "display": "the nurse"}],
        "valueQuantity": {**quantity(72, "/min"), "id": "q", "extension": [],
                          "unit": "beats/minute"},
        "interpretation": [_concept("N", interpretation)],
        "note": [{"id": "n", "extension": [], "authorString": "the nurse", "time": ago(1),
                  "text": "at rest"},
                 {"authorReference": {"reference": "Practitioner/nurse-1"}, "text": "again"}],
        "bodySite": _concept("368209003", SNOMED),
        "method": _concept("258104002", SNOMED),
        "specimen": {"display": "none"},
        "device": {**_reference("#cuff"), "type": "Device", "identifier": {"value": "cuff-7"}},
        "referenceRange": _reference_range(60, 100, "/min"),
        "hasMember": [{"reference": "Observation/other"}],
        "derivedFrom": [{"reference": "Observation/raw"}],
    }}  # fmt: skip


def test_every_r4_element_at_every_depth_is_still_taken(world: World) -> None:
    session = world.session(state="in_progress")
    resource = valid(every_element(session))  # R4B's own models take it too
    body = created(post(world.ehr, resource))
    assert body["valueQuantity"] == quantity(72, "/min")
    assert {"system": GATEWAY, "value": "msg-every"} in body["identifier"]
    [reading] = [r for r in world.readings(session) if r["id"] == body["id"].removesuffix("-hr")]
    assert (reading["heart_rate"], reading["device_id"]) == (72, "cuff-7")


def test_every_component_element_of_a_panel_is_still_taken(world: World) -> None:
    session = world.session(state="in_progress")
    panel = blood_pressure(session, 132, 84)
    for component, value in zip(panel["component"], (132, 84), strict=True):
        code = component["code"]["coding"][0]["code"]
        component.update(
            id=f"c-{code}", extension=[{"url": f"{EXAMPLE}/x", "valueString": "left arm"}],
            code=_concept(code), valueQuantity={**quantity(value, "mm[Hg]"), "id": "q"},
            interpretation=[_concept("N", "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation")],
            referenceRange=_reference_range(60, 140, "mm[Hg]"),
        )  # fmt: skip
    body = created(post(world.ehr, valid(panel)))
    [reading] = [r for r in world.readings(session) if r["id"] == body["id"].removesuffix("-bp")]
    assert (reading["systolic"], reading["diastolic"]) == (132, 84)


@pytest.mark.parametrize("where", ["Observation", "Observation.component"])
def test_data_absent_reason_and_primitive_extensions_are_r4(where: str) -> None:
    """Structure alone: whether Vigil can take such a reading is intake's question (422)."""
    absent = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/data-absent-reason",
                          "code": "not-performed"}], "text": "cuff failed"}  # fmt: skip
    element: dict[str, Any] = {"code": {"coding": [{"system": LOINC, "code": "8480-6"}]},
                               "dataAbsentReason": absent, "_valueString": {"id": "v"}}  # fmt: skip
    resource: dict[str, Any] = {"resourceType": "Observation", "status": "final"}
    if where == "Observation":
        resource.update(element)
    else:
        resource.update(
            code={"coding": [{"system": LOINC, "code": "85354-9"}]}, component=[element]
        )
    assert parse_body(orjson.dumps(resource)) == resource


@pytest.mark.parametrize("encounter", ["other clinic", "unknown", "not a uuid"])
def test_an_encounter_outside_the_clinic_is_not_found(world: World, encounter: str) -> None:
    theirs = world.session(world.other_nurse, state="in_progress")
    resource = vital(theirs, "8867-4", 80)
    if encounter == "unknown":
        resource["encounter"] = {"reference": f"Encounter/{uuid.uuid4()}"}
    elif encounter == "not a uuid":
        resource["encounter"] = {"reference": "Encounter/abc"}
    assert outcome(post(world.ehr, resource), 404)["issue"][0]["code"] == "not-found"
    assert len(world.readings(theirs, world.other_nurse)) == 1  # its baseline alone


def test_a_closed_session_takes_only_late_entries(world: World) -> None:
    session = world.session(state="in_progress")
    world.transition(session, "abort", reason="patient left")
    outcome(post(world.ehr, vital(session, "8867-4", 80, effectiveDateTime=ago(0))), 409)
    created(post(world.ehr, vital(session, "8867-4", 80, effectiveDateTime=ago(10))))


def test_a_body_other_than_json_is_an_unsupported_media_type(world: World) -> None:
    session = world.session(state="in_progress")
    response = world.ehr.post(
        "/fhir/R4/Observation",
        content=b"<Observation/>",
        headers={"Content-Type": "application/fhir+xml"},
    )
    outcome(response, 415)
    assert len(world.readings(session)) == 1


@pytest.mark.parametrize("role", ["nurse", "clinician", "ehr"])
def test_nurses_clinicians_and_ehrs_may_post(world: World, role: str) -> None:
    session = world.session(state="in_progress")
    created(post(getattr(world, role), vital(session, "8867-4", 75)))


@pytest.mark.parametrize("role", ["dashboard", "admin", "global_admin"])
def test_other_roles_may_not_post(world: World, role: str) -> None:
    session = world.session(state="in_progress")
    body = outcome(post(getattr(world, role), vital(session, "8867-4", 75)), 403)
    assert body["issue"][0]["code"] == "forbidden"
    outcome(world.client.post("/fhir/R4/Observation", json=vital(session, "8867-4", 75)), 401)
    assert len(world.readings(session)) == 1


def test_a_create_is_audited(world: World) -> None:
    session = world.session(state="in_progress")
    body = created(post(world.ehr, vital(session, "8867-4", 75)))
    reading_id = body["id"].removesuffix("-hr")
    entries = world.admin.get("/v1/audit", params={"resource_id": reading_id}).json()["items"]
    assert {(e["action"], e["actor_key_id"]) for e in entries} >= {
        ("reading.create", str(world.ehr.key_id)), ("fhir.observation.create", str(world.ehr.key_id)),
    }  # fmt: skip


# --- conditional create and retries ------------------------------------------------------------
def test_if_none_exist_stores_once_and_returns_the_existing_resource(world: World) -> None:
    session = world.session(state="in_progress")
    resource = vital(session, "8867-4", 82, identifier=[{"system": GATEWAY, "value": "msg-1"}])
    condition = {"If-None-Exist": f"identifier={GATEWAY}|msg-1"}
    first = created(post(world.ehr, resource, **condition))
    assert {"system": GATEWAY, "value": "msg-1"} in first["identifier"]
    for body in (resource, vital(session, "8867-4", 99)):  # a match ignores the body
        again = post(world.ehr, body, **condition)
        assert fhir_body(again, 200) == first
        assert again.headers["content-location"] == f"{FHIR_BASE}/Observation/{first['id']}"
    assert len(world.readings(session)) == 2  # the baseline and this one
    # Any system, and the same identifier written by a nurse of the clinic, match too.
    assert (
        fhir_body(post(world.nurse, resource, **{"If-None-Exist": "identifier=msg-1"}))["id"]
        == first["id"]
    )
    created(post(world.ehr, resource, **{"If-None-Exist": "identifier=urn:example:other|msg-1"}))
    assert len(world.readings(session)) == 3


def test_if_none_exist_finds_a_resource_whose_body_did_not_carry_the_identifier(
    world: World,
) -> None:
    session = world.session(state="in_progress")
    condition = {"If-None-Exist": f"identifier={GATEWAY}|msg-3"}
    first = created(post(world.ehr, vital(session, "8867-4", 84), **condition))
    assert {"system": GATEWAY, "value": "msg-3"} in first["identifier"]
    assert (
        fhir_body(post(world.ehr, vital(session, "8867-4", 84), **condition))["id"] == first["id"]
    )
    assert len(world.readings(session)) == 2


def test_if_none_exist_finds_a_resource_by_the_identifier_vigil_gave_it(world: World) -> None:
    """Every Observation shows ``urn:vigil:reading|<id>``; naming it in a conditional create
    finds that reading as a search by it does, whether posted through FHIR or v1."""
    session = world.session(state="in_progress")
    first = created(post(world.ehr, vital(session, "8867-4", 84)))
    [own] = [i for i in first["identifier"] if i["system"] == "urn:vigil:reading"]
    for condition in (f"identifier=urn:vigil:reading|{own['value']}", f"identifier={own['value']}"):
        again = post(world.ehr, vital(session, "8867-4", 99), **{"If-None-Exist": condition})
        assert fhir_body(again, 200)["id"] == first["id"]
    baseline = world.readings(session)[0]
    again = post(
        world.ehr,
        vital(session, "8867-4", 99),
        **{"If-None-Exist": f"identifier=urn:vigil:reading|{baseline['id']}"},
    )
    assert {"system": "urn:vigil:reading", "value": baseline["id"]} in fhir_body(again, 200)[
        "identifier"
    ]
    assert len(world.readings(session)) == 2
    # Another clinic's reading is not found: its id names nothing here, so a create follows.
    theirs = world.session(world.other_nurse, state="in_progress")
    other = world.readings(theirs, world.other_nurse)[0]
    created(
        post(
            world.ehr,
            vital(session, "8867-4", 99),
            **{"If-None-Exist": f"identifier=urn:vigil:reading|{other['id']}"},
        )
    )
    assert len(world.readings(session)) == 3


def test_if_none_exist_looks_only_in_the_callers_clinic(world: World) -> None:
    ours = world.session(state="in_progress")
    theirs = world.session(world.other_nurse, state="in_progress")
    identifier = [{"system": GATEWAY, "value": "msg-2"}]
    condition = {"If-None-Exist": f"identifier={GATEWAY}|msg-2"}
    mine = created(post(world.ehr, vital(ours, "8867-4", 70, identifier=identifier), **condition))
    other = created(
        post(world.other_nurse, vital(theirs, "8867-4", 70, identifier=identifier), **condition)
    )
    assert mine["id"] != other["id"]


def test_if_none_exist_with_several_matches_fails_the_precondition(world: World) -> None:
    session = world.session(state="in_progress")
    resource = vital(session, "8867-4", 70, identifier=[{"system": GATEWAY, "value": "dup"}])
    created(post(world.ehr, resource))
    created(post(world.ehr, resource))  # a plain create always creates
    outcome(post(world.ehr, resource, **{"If-None-Exist": f"identifier={GATEWAY}|dup"}), 412)
    assert len(world.readings(session)) == 3


@pytest.mark.parametrize(
    "header", ["code=8867-4", "identifier=", "identifier=a&code=b", f"identifier={GATEWAY}|"]
)
def test_if_none_exist_takes_one_identifier(world: World, header: str) -> None:
    session = world.session(state="in_progress")
    outcome(post(world.ehr, vital(session, "8867-4", 70), **{"If-None-Exist": header}), 400)
    assert len(world.readings(session)) == 1


def test_an_idempotency_key_replays_the_first_answer(world: World) -> None:
    session = world.session(state="in_progress")
    resource = vital(session, "8867-4", 77)
    first = post(world.ehr, resource, **{"Idempotency-Key": "retry-1"})
    again = post(world.ehr, resource, **{"Idempotency-Key": "retry-1"})
    assert created(again) == created(first)
    assert again.headers["idempotent-replayed"] == "true"
    assert len(world.readings(session)) == 2
    outcome(post(world.ehr, vital(session, "8867-4", 78), **{"Idempotency-Key": "retry-1"}), 422)


def test_effective_time_keeps_its_instant_whatever_the_offset(world: World) -> None:
    session = world.session(state="in_progress")
    moment = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=3)
    local = moment.astimezone(timezone(timedelta(hours=1))).isoformat()
    body = created(post(world.ehr, vital(session, "8867-4", 70, effectiveDateTime=local)))
    assert body["effectiveDateTime"] == iso(moment)
