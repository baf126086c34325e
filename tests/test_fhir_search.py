"""FHIR Observation search: side effects beside vital signs and their panels, code, category,
_lastUpdated and identifier, and next links that visit every match once."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from tests.factories import World, ago, create_entry
from tests.fhir_support import (
    CATEGORY,
    KIND_SYSTEM,
    LOINC,
    codes,
    fhir_body,
    outcome,
    post,
    resources,
    search,
    vital,
)

SNOMED = "http://snomed.info/sct"
GATEWAY = "urn:example:device-gateway"
READING_ID = "urn:vigil:reading"
OBSERVATION_ID = "urn:vigil:observation"
SEVERITY_SYSTEM = "https://vigil.example/fhir/CodeSystem/severity"
VITAL_SIGNS_PROFILE = "http://hl7.org/fhir/StructureDefinition/vitalsigns"
VITALS_PANEL_PROFILE = "http://hl7.org/fhir/StructureDefinition/vitalspanel"


def observe(world: World, session: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return create_entry(world, session, "observations", **fields)


def by_id(bundle: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["id"]: r for r in resources(bundle)}


def walk(world: World, params: dict[str, Any]) -> tuple[list[str], int]:
    """Every resource id a client sees by following next links, and the total each page gave."""
    first = world.ehr.get("/fhir/R4/Observation", params=params)
    url: str | None = None
    bundle = fhir_body(first)
    seen, totals = [], set()
    while True:
        seen += [r["id"] for r in resources(bundle)]
        totals.add(bundle["total"])
        url = next((x["url"] for x in bundle["link"] if x["relation"] == "next"), None)
        if url is None:
            break
        assert url.startswith("http"), url  # absolute, as FHIR clients expect
        bundle = fhir_body(world.ehr.get(url))
    assert len(totals) == 1
    return seen, totals.pop()


def test_side_effects_and_assessments_are_observations_with_their_codes(world: World) -> None:
    session = world.session(state="recovery")
    nausea = observe(world, session, kind="nausea", severity=2, note="after the infusion")
    sedation = observe(world, session, kind="sedation", moaas=3)
    dissociation = observe(world, session, kind="dissociation", severity=1, cadss=12)
    other = observe(world, session, kind="other", severity=0)
    found = by_id(search(world.ehr, encounter=f"Encounter/{session['id']}"))

    resource = found[nausea["id"]]
    assert resource["status"] == "final"
    assert {(c["system"], c["code"]) for c in resource["code"]["coding"]} == {
        (KIND_SYSTEM, "nausea"), (SNOMED, "422587007"),
    }  # fmt: skip
    assert resource["category"][0]["coding"][0] == {
        "system": CATEGORY, "code": "exam", "display": "Exam",
    }  # fmt: skip
    severity = {c["system"]: c["code"] for c in resource["valueCodeableConcept"]["coding"]}
    assert severity == {SEVERITY_SYSTEM: "moderate", SNOMED: "6736007"}
    assert resource["note"] == [{"text": "after the infusion"}]
    assert resource["effectiveDateTime"] == nausea["measured_at"]
    assert resource["subject"] == {"reference": f"Patient/{session['patient_id']}"}
    assert resource["encounter"] == {"reference": f"Encounter/{session['id']}"}

    resource = found[sedation["id"]]
    assert codes(resource) == {"sedation"} and resource["valueInteger"] == 3
    assert resource["category"][0]["coding"][0]["code"] == "survey"
    resource = found[dissociation["id"]]
    assert codes(resource) == {"dissociation"}
    assert resource["valueCodeableConcept"]["coding"][0]["code"] == "mild"
    [cadss] = resource["component"]
    assert codes(cadss) == {"cadss"} and cadss["valueInteger"] == 12
    resource = found[other["id"]]
    assert codes(resource) == {"other"}  # no SNOMED code says "other side effect"
    assert resource["valueCodeableConcept"]["coding"][0]["code"] == "none"


def test_an_entered_in_error_side_effect_shows_that_status(world: World) -> None:
    session = world.session(state="in_progress")
    observation = observe(world, session, kind="vomiting", severity=1)
    response = world.nurse.post(
        f"/v1/observations/{observation['id']}/entered-in-error", json={"reason": "other patient"}
    )
    assert response.status_code == 200, response.text
    found = by_id(search(world.ehr, encounter=session["id"]))
    assert found[observation["id"]]["status"] == "entered-in-error"


@pytest.fixture
def charted(world: World) -> dict[str, Any]:
    """A session with vitals of every kind (and consciousness), a symptom and a sedation score."""
    session = world.session(state="in_progress")
    world.reading(
        session, measured_at=ago(3), heart_rate=80, systolic=120, diastolic=80, spo2=97,
        respiratory_rate=14, temperature_c=36.8, consciousness="alert",
    )  # fmt: skip
    observe(world, session, kind="nausea", severity=1, measured_at=ago(2))
    observe(world, session, kind="sedation", moaas=4, measured_at=ago(2))
    return session


@pytest.mark.parametrize(
    ("code", "expected"),
    [("8867-4", {"8867-4"}), (f"{LOINC}|8867-4", {"8867-4"}), ("59408-5", {"2708-6", "59408-5"}),
     (f"{LOINC}|8310-5,{LOINC}|9279-1", {"8310-5", "9279-1"}),
     (f"{LOINC}|", {"85353-1", "8867-4", "85354-9", "2708-6", "59408-5", "9279-1", "8310-5"}),
     ("85353-1", {"85353-1"}), (f"{LOINC}|85353-1", {"85353-1"}),
     ("85353-1,8867-4", {"85353-1", "8867-4"}), ("http://example.org|85353-1", set()),
     ("|8867-4", set()), ("http://example.org|8867-4", set()), ("1234-5", set()),
     ("8480-6", set()),  # a component's code is not the Observation's code
     (f"{KIND_SYSTEM}|nausea", {"nausea", "422587007"}), (f"{SNOMED}|422587007", {"nausea", "422587007"}),
     (f"{KIND_SYSTEM}|consciousness", set()), ("sedation", {"sedation"})],
)  # fmt: skip
def test_search_by_code_token(
    world: World, charted: dict[str, Any], code: str, expected: set[str]
) -> None:
    bundle = search(world.ehr, encounter=charted["id"], code=code)
    found = set().union(*(codes(r) for r in resources(bundle)))
    assert found == expected
    assert bundle["total"] == len(resources(bundle))


@pytest.mark.parametrize(
    ("category", "count"),
    [("vital-signs", 5 + 2 + 2), (f"{CATEGORY}|vital-signs", 9), (f"{CATEGORY}|exam", 1),
     ("survey", 1), ("exam,survey", 2), ("laboratory", 0)],
)  # fmt: skip
def test_search_by_category(
    world: World, charted: dict[str, Any], category: str, count: int
) -> None:
    # The baseline reading (HR, BP) counts too: 5 + 2 vital signs and a vital signs panel of
    # each reading; nausea is an exam.
    bundle = search(world.ehr, encounter=charted["id"], category=category)
    assert bundle["total"] == len(resources(bundle)) == count


def test_code_and_category_together_must_both_match(world: World, charted: dict[str, Any]) -> None:
    both = search(world.ehr, encounter=charted["id"], code="8867-4", category="vital-signs")
    assert [codes(r) for r in resources(both)] == [{"8867-4"}, {"8867-4"}]
    assert (
        search(world.ehr, encounter=charted["id"], code="8867-4", category="survey")["total"] == 0
    )


def test_a_reading_is_also_a_vital_signs_panel_of_its_parts(world: World) -> None:
    session = world.session(state="in_progress")
    reading = world.reading(
        session, measured_at=ago(3), heart_rate=92, systolic=128, diastolic=82, spo2=96,
        consciousness="alert", device_id="monitor-1", source="device",
    )  # fmt: skip
    given = [{"system": GATEWAY, "value": "rr-1"}]
    posted = fhir_body(post(world.ehr, vital(session, "9279-1", 18, identifier=given)), 201)
    found = by_id(search(world.ehr, encounter=session["id"]))
    posted_reading = posted["id"].rsplit("-", 1)[0]
    for reading_id, parts in ((reading["id"], ["hr", "bp", "spo2"]), (posted_reading, ["rr"])):
        panel = found[f"{reading_id}-panel"]
        members = [found[f"{reading_id}-{part}"] for part in parts]
        assert panel["code"] == {
            "coding": [{"system": LOINC, "code": "85353-1", "display": "Vital signs panel"}]
        }
        assert panel["meta"]["profile"] == [VITAL_SIGNS_PROFILE, VITALS_PANEL_PROFILE]
        # its members are exactly the reading's parts, and it has no value of its own
        assert panel["hasMember"] == [{"reference": f"Observation/{m['id']}"} for m in members]
        assert not [k for k in panel if k.startswith("value") or k == "component"]
        for member in members:
            for element in ("identifier", "status", "category", "subject", "encounter",
                            "effectiveDateTime", "issued", "device"):  # fmt: skip
                assert panel.get(element) == member.get(element), element
            assert panel["meta"]["lastUpdated"] == member["meta"]["lastUpdated"]
        assert fhir_body(world.ehr.get(f"/fhir/R4/Observation/{reading_id}-panel")) == panel
    assert given[0] in found[f"{posted_reading}-panel"]["identifier"]
    assert found[f"{reading['id']}-panel"]["device"] == {"display": "monitor-1"}


def test_a_reading_of_consciousness_alone_has_no_panel(world: World) -> None:
    # A panel needs a member, and consciousness has no Observation.
    session = world.session(state="in_progress")
    reading = world.reading(session, measured_at=ago(2), heart_rate=None, consciousness="voice")
    outcome(world.ehr.get(f"/fhir/R4/Observation/{reading['id']}-panel"), 404)
    panels = search(world.ehr, encounter=session["id"], code="85353-1")
    assert panels["total"] == len(resources(panels)) == 1  # the baseline reading's
    assert reading["id"] not in resources(panels)[0]["id"]
    assert search(world.ehr, encounter=session["id"], _count=0)["total"] == 3
    assert found_ids(world, identifier=reading["id"]) == set()


def test_last_updated_prefixes_compare_with_the_instants_given(world: World) -> None:
    session = world.session(state="in_progress")
    readings = [world.reading(session, measured_at=ago(5 - i), heart_rate=70 + i) for i in range(3)]
    params = {"encounter": session["id"], "code": "8867-4"}
    stamps = {r["id"]: r["meta"]["lastUpdated"] for r in resources(search(world.ehr, **params))}
    first, middle, last = (stamps[f"{r['id']}-hr"] for r in readings)

    def hits(*values: str) -> set[int]:
        bundle = search(world.ehr, **params, _lastUpdated=list(values))
        ids = {r["id"] for r in resources(bundle)}
        return {i for i, r in enumerate(readings) if f"{r['id']}-hr" in ids}

    assert hits(f"gt{middle}") == {2}
    assert hits(f"ge{middle}") == {1, 2}
    assert hits(f"lt{middle}") == {0}
    assert hits(f"le{middle}") == {0, 1}
    assert hits(f"eq{middle}") == hits(middle) == {1}
    assert hits(f"ge{first}", f"lt{last}") == {0, 1}
    shifted = middle.replace("Z", "+00:00")
    assert hits(f"gt{shifted}") == {2}
    assert hits("gt2000-01-01T00:00:00+01:00") == {0, 1, 2}
    assert hits("lt2000-01-01T00:00:00Z") == set()


def test_a_poller_that_cuts_its_time_to_the_second_misses_nothing(world: World) -> None:
    session = world.session(state="in_progress")
    since = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    reading = world.reading(session, measured_at=ago(1), heart_rate=77)
    bundle = search(world.ehr, encounter=session["id"], _lastUpdated=f"gt{since}")
    assert f"{reading['id']}-hr" in {r["id"] for r in resources(bundle)}
    # eq names the whole second (or minute) it is precise to
    stamp = next(r for r in resources(bundle) if r["id"] == f"{reading['id']}-hr")["meta"][
        "lastUpdated"
    ]
    for cut in (stamp, stamp[:19] + "Z", stamp[:16] + "Z"):
        ids = {
            r["id"] for r in resources(search(world.ehr, encounter=session["id"], _lastUpdated=cut))
        }
        assert f"{reading['id']}-hr" in ids, cut


def test_marking_entered_in_error_moves_last_updated(world: World) -> None:
    session = world.session(state="in_progress")
    reading = world.reading(session, measured_at=ago(2), heart_rate=150)
    before = resources(search(world.ehr, encounter=session["id"], code="8867-4"))
    stamp = max(r["meta"]["lastUpdated"] for r in before)
    assert search(world.ehr, encounter=session["id"], _lastUpdated=f"gt{stamp}")["total"] == 0
    world.nurse.post(f"/v1/readings/{reading['id']}/entered-in-error", json={"reason": "typo"})
    changed = resources(search(world.ehr, encounter=session["id"], _lastUpdated=f"gt{stamp}"))
    # the reading's one vital sign and its panel
    assert [r["id"] for r in changed] == [f"{reading['id']}-hr", f"{reading['id']}-panel"]
    assert {r["status"] for r in changed} == {"entered-in-error"}
    assert len({r["meta"]["lastUpdated"] for r in changed}) == 1


@pytest.mark.parametrize(
    "value",
    ["gt2026-11-21T14:05:00", "gt2026-11-21", "2026-11-21T14:05", "sa2026-11-21T14:05:00Z",
     "ne2026-11-21T14:05:00Z", "gtyesterday", "gt2026-13-40T14:05:00Z",
     "gt0001-01-01T00:00:00+14:00", "gt9999-12-31T23:59:59-14:00", "le9999-12-31T23:59:59Z",
     "eq0001-01-01T00:00:00Z"],
)  # fmt: skip
def test_last_updated_needs_a_supported_prefix_and_an_offset(world: World, value: str) -> None:
    session = world.session()
    response = world.ehr.get(
        "/fhir/R4/Observation", params={"encounter": session["id"], "_lastUpdated": value}
    )
    assert "_lastUpdated" in outcome(response, 422)["issue"][0]["diagnostics"]


@pytest.mark.parametrize(
    "params",
    [{}, {"code": "8867-4,85354-9"}, {"category": "vital-signs"}, {"code": "nausea,sedation"},
     {"_lastUpdated": "gt2000-01-01T00:00:00Z"}, {"code": "85353-1"},
     {"code": "85353-1,nausea"}, {"code": "85353-1,85354-9"}],
)  # fmt: skip
def test_next_links_visit_every_match_once_in_a_stable_order(
    world: World, params: dict[str, Any]
) -> None:
    session = world.session(state="in_progress")
    for minute in range(6):
        at = ago(20 - minute)  # readings and observations share bedside times
        world.reading(session, measured_at=at, heart_rate=70 + minute, systolic=120, diastolic=80)
        observe(world, session, measured_at=at, kind="nausea", severity=1)
        if minute % 2:
            observe(world, session, measured_at=at, kind="sedation", moaas=5)
        if minute == 3:  # consciousness alone: no vital sign, so no panel either
            world.reading(session, measured_at=at, heart_rate=None, consciousness="voice")
    query = {"encounter": f"Encounter/{session['id']}", **params}
    everything, total = walk(world, {**query, "_count": 500})
    assert len(everything) == len(set(everything)) == total > 0
    for count in (1, 2, 3, 7):
        seen, paged_total = walk(world, {**query, "_count": count})
        assert seen == everything and paged_total == total


def test_a_count_of_zero_gives_the_total_only(world: World, charted: dict[str, Any]) -> None:
    bundle = search(world.ehr, encounter=charted["id"], _count=0)
    # 7 vital signs (5 charted, the baseline's HR and BP), a panel of each of the two readings,
    # the nausea and the sedation score
    assert bundle["total"] == 7 + 2 + 2 and "entry" not in bundle
    assert not [x for x in bundle["link"] if x["relation"] == "next"]


def test_search_by_patient_spans_their_sessions(world: World) -> None:
    patient = world.patient()
    first = world.session(patient_id=patient["id"], state="in_progress")
    world.transition(first, "abort", reason="felt unwell")
    second = world.session(patient_id=patient["id"], state="in_progress")
    observe(world, second, kind="anxiety", severity=1)
    bundle = search(world.ehr, patient=f"Patient/{patient['id']}")
    encounters = {r["encounter"]["reference"] for r in resources(bundle)}
    assert encounters == {f"Encounter/{first['id']}", f"Encounter/{second['id']}"}
    assert bundle["total"] == 7  # each session's baseline: HR, BP and their panel; the anxiety
    outcome(world.other_nurse.get("/fhir/R4/Observation", params={"patient": patient["id"]}), 404)
    response = world.ehr.get("/fhir/R4/Observation", params={"encounter": "Encounter/nope"})
    outcome(response, 422)


@pytest.fixture
def gateway_posts(world: World) -> dict[str, Any]:
    """Two sessions of the clinic with Observations a gateway posted under its own identifiers
    (one without a system), a nurse's reading and a side effect beside them."""
    first, second = world.session(state="in_progress"), world.session(state="in_progress")
    pulse = vital(first, "8867-4", 88, identifier=[{"system": GATEWAY, "value": "msg-1"}])
    breaths = vital(second, "9279-1", 16, identifier=[{"system": GATEWAY, "value": "msg-2"}])
    bare = vital(second, "8867-4", 90, identifier=[{"value": "msg-3"}])
    made = [fhir_body(post(world.ehr, r), 201)["id"] for r in (pulse, breaths, bare)]
    nurse = world.reading(first, heart_rate=70)
    nausea = observe(world, first, kind="nausea", severity=1)
    return {"sessions": (first, second), "made": made, "nurse": nurse, "nausea": nausea}


def found_ids(world: World, **params: Any) -> set[str]:
    return {r["id"] for r in resources(search(world.ehr, **params))}


def with_panel(part_id: str) -> set[str]:
    """A reading's part and the panel of its reading, which carries the same identifiers."""
    return {part_id, f"{part_id.rsplit('-', 1)[0]}-panel"}


@pytest.mark.parametrize(
    ("identifier", "expected"),
    [(f"{GATEWAY}|msg-1", [0]), ("msg-2", [1]), (f"{GATEWAY}|msg-1,{GATEWAY}|msg-2", [0, 1]),
     (f"{GATEWAY}|", [0, 1]), ("|msg-3", [2]), ("msg-3", [2]), (f"{GATEWAY}|msg-3", []),
     ("urn:example:other|msg-1", []), ("msg-9", [])],
)  # fmt: skip
def test_search_by_identifier_alone_looks_through_the_clinic(
    world: World, gateway_posts: dict[str, Any], identifier: str, expected: list[int]
) -> None:
    made = gateway_posts["made"]
    assert found_ids(world, identifier=identifier) == set().union(
        *(with_panel(made[i]) for i in expected)
    )


def test_search_by_identifier_finds_vigils_own_identifiers_too(
    world: World, gateway_posts: dict[str, Any]
) -> None:
    nurse, nausea = gateway_posts["nurse"], gateway_posts["nausea"]
    assert found_ids(world, identifier=f"{READING_ID}|{nurse['id']}") == with_panel(
        f"{nurse['id']}-hr"
    )
    assert found_ids(world, identifier=nurse["id"]) == with_panel(f"{nurse['id']}-hr")
    assert found_ids(world, identifier=f"{OBSERVATION_ID}|{nausea['id']}") == {nausea["id"]}
    assert found_ids(world, identifier=nausea["id"]) == {nausea["id"]}
    assert found_ids(world, identifier=f"{READING_ID}|{nausea['id']}") == set()
    assert found_ids(world, identifier=f"{READING_ID}|not-a-uuid") == set()


def test_identifier_narrows_other_parameters_and_repeats_must_all_match(
    world: World, gateway_posts: dict[str, Any]
) -> None:
    (first, second), made = gateway_posts["sessions"], gateway_posts["made"]
    assert found_ids(world, encounter=first["id"], identifier="msg-1") == with_panel(made[0])
    assert found_ids(world, encounter=second["id"], identifier="msg-1") == set()
    assert found_ids(world, identifier="msg-2", code="8867-4") == set()
    assert found_ids(world, identifier="msg-2", code="85353-1") == with_panel(made[1]) - {made[1]}
    assert found_ids(world, identifier=["msg-1,msg-2", "msg-2,msg-3"]) == with_panel(made[1])
    bundle = search(world.ehr, identifier=f"{GATEWAY}|", _count=1)
    assert bundle["total"] == 2 + 2 and len(resources(bundle)) == 1  # two vitals, two panels


def test_identifier_search_stays_in_the_callers_clinic_and_is_audited(
    world: World, gateway_posts: dict[str, Any]
) -> None:
    (first, _), made = gateway_posts["sessions"], gateway_posts["made"]
    theirs = world.other_nurse.get("/fhir/R4/Observation", params={"identifier": "msg-1"})
    assert fhir_body(theirs)["total"] == 0
    assert found_ids(world, identifier=f"{GATEWAY}|msg-1") == with_panel(made[0])
    entries = world.admin.get("/v1/audit", params={"resource_id": first["id"]}).json()["items"]
    assert any(
        e["action"] == "fhir.observation.search" and e["resource_type"] == "Encounter"
        for e in entries
    ), entries
    outcome(world.ehr.get("/fhir/R4/Observation", params={"identifier": "a\x00b"}), 422)
    outcome(world.ehr.get("/fhir/R4/Observation", params={"identifier": "|"}), 422)
    outcome(world.ehr.get("/fhir/R4/Observation", params={"code": "8867-4"}), 422)
