"""A real FHIR client (the SMART on FHIR ``fhirclient`` package, with its own R4 models) against a
running ``vigil serve``: it reads the CapabilityStatement, pages through a session's Observations
and creates one."""

from __future__ import annotations

import warnings
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
from fhirclient import client
from fhirclient.models.bundle import Bundle
from fhirclient.models.encounter import Encounter
from fhirclient.models.observation import Observation

from tests.factories import World, ago, create_entry
from tests.fhir_support import vital
from tests.live import live_server, live_world  # noqa: F401  (fixtures)


def connect(base_url: str, key: str) -> client.FHIRClient:
    smart = client.FHIRClient(settings={"app_id": "vigil-tests", "api_base": f"{base_url}/fhir/R4"})
    smart.server.session.headers["Authorization"] = f"Bearer {key}"
    return smart


def test_fhirclient_reads_a_sessions_observations_page_by_page(
    live_server: str,  # noqa: F811
    live_world: World,  # noqa: F811
) -> None:
    world = live_world
    session = world.session(state="in_progress")
    for minute in range(4):
        world.reading(session, measured_at=ago(20 - minute), heart_rate=80 + minute, spo2=97)
    create_entry(world, session, "observations", kind="dizziness", severity=1)
    expected = world.ehr.get(
        "/fhir/R4/Observation", params={"encounter": session["id"], "_count": 500}
    ).json()
    smart = connect(live_server, world.ehr.key)
    assert smart.prepare()  # reads the CapabilityStatement; the key goes in the header
    capability = smart.server.capabilityStatement
    assert capability.fhirVersion == "4.0.1"
    assert {r.type for r in capability.rest[0].resource} == {"Patient", "Encounter", "Observation"}

    search = Observation.where(struct={"encounter": f"Encounter/{session['id']}", "_count": "3"})
    pages = list(search.perform_iter(smart.server))
    found = [e.resource for page in pages for e in page.entry or []]
    assert len(pages) == -(-expected["total"] // 3) > 1
    assert [o.id for o in found] == [e["resource"]["id"] for e in expected["entry"]]
    heart_rates = [o.valueQuantity.value for o in found if o.code.coding[0].code == "8867-4"]
    assert heart_rates == [72, 80, 81, 82, 83]  # the baseline, then this session's readings
    assert all(o.encounter.reference == f"Encounter/{session['id']}" for o in found)

    encounter = Encounter.read(session["id"], smart.server)
    assert encounter.status == "in-progress"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        everything = Bundle.read_from(f"Encounter/{session['id']}/$everything", smart.server)
    kinds = [e.resource.resource_type for e in everything.entry]
    assert kinds[:2] == ["Patient", "Encounter"] and kinds.count("Observation") == len(found)


def test_fhirclient_creates_an_observation(
    live_server: str,  # noqa: F811
    live_world: World,  # noqa: F811
) -> None:
    world = live_world
    session = world.session(state="in_progress")
    smart = connect(live_server, world.nurse.key)
    resource: dict[str, Any] = vital(session, "9279-1", 18)
    response = Observation(resource).create(smart.server)
    assert response is not None and response["resourceType"] == "Observation"
    created = Observation.read(response["id"], smart.server)
    assert created.valueQuantity.value == 18 and created.valueQuantity.code == "/min"
    [reading] = [r for r in world.readings(session) if r["respiratory_rate"] is not None]
    assert reading["respiratory_rate"] == 18


def test_concurrent_conditional_creates_store_one_reading(
    live_server: str,  # noqa: F811
    live_world: World,  # noqa: F811
) -> None:
    """A gateway that retries at once on several connections (two server processes) gets one
    201; every other answer is the 200 of If-None-Exist with the same resource."""
    world = live_world
    session = world.session(state="in_progress")
    identifier = [{"system": "urn:example:gateway", "value": "burst-1"}]
    resource = vital(session, "8867-4", 90, identifier=identifier)
    headers = {
        **world.ehr.headers,
        "Content-Type": "application/fhir+json",
        "If-None-Exist": "identifier=urn:example:gateway|burst-1",
    }

    def send(_: int) -> httpx.Response:
        with httpx.Client(base_url=live_server, timeout=60) as http:
            return http.post("/fhir/R4/Observation", json=resource, headers=headers)

    with ThreadPoolExecutor(max_workers=6) as pool:
        responses = list(pool.map(send, range(6)))
    assert sorted(r.status_code for r in responses) == [200] * 5 + [201]
    assert len({r.json()["id"] for r in responses}) == 1
    assert len(world.readings(session)) == 2  # the baseline and this one
