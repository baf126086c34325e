"""Session summaries in numbers and the SVG chart of the session's vitals."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

import pytest

from tests.factories import (
    Caller,
    World,
    after_end,
    ago,
    assess,
    expect_problem,
    parse_time,
    shifted,
)

Json = dict[str, Any]
SVG = "{http://www.w3.org/2000/svg}"
EPS = 1e-6
VITALS = ("systolic", "diastolic", "heart_rate", "spo2")
# (minutes from start, systolic, diastolic, heart_rate, spo2) in each phase; None: not measured.
PRE = [(-10, 120, 80, 70, 98), (-5, 124, 78, 72, 96)]
INTRA = [
    (10, 130, 82, 80, 97),
    (20, 140, 84, 84, None),
    (38.5, 150, 92, 112, 95),
    (50, 140, 86, 88, None),
]
POST = [(70, 126, 80, 74, 98), (80, 122, 76, 70, None)]
WRONG = (30, 156, 88, 88, None)  # entered in error: higher than every valid systolic


def stats(rows: list[tuple[Any, ...]], vital: str) -> Json:
    values = [row[1 + VITALS.index(vital)] for row in rows]
    values = [v for v in values if v is not None]
    return {
        "min": min(values),
        "max": max(values),
        "mean": sum(values) / len(values),
        "count": len(values),
    }


def post(world: World, session: Json, start: str, row: tuple[Any, ...]) -> Json:
    vitals = {k: v for k, v in zip(VITALS, row[1:], strict=True) if v is not None}
    return world.reading(session, measured_at=shifted(start, row[0]), **vitals)


def finished(world: World) -> Json:
    """Started 100 min ago for 60 min, resolved 15 min after the end, discharged 35 min after it."""
    session = world.session()
    start = ago(100)
    for row in PRE:
        post(world, session, start, row)
    world.transition(session, "start", at=start)
    for row in INTRA:
        post(world, session, start, row)
    wrong = post(world, session, start, WRONG)
    response = world.nurse.post(
        f"/v1/readings/{wrong['id']}/entered-in-error", json={"reason": "cuff slipped"}
    )
    assert response.status_code == 200, response.text
    session = world.transition(session, "end", at=shifted(start, 60))
    for row in POST:
        post(world, session, start, row)
    assess(world, session, 15)
    return world.transition(session, "discharge", at=after_end(session, 35))


def get(caller: Caller, session: Json, what: str) -> Any:
    response = caller.get(f"/v1/sessions/{session['id']}/{what}")
    assert response.status_code == 200, response.text
    return response


def session_alerts(world: World, session: Json) -> list[Json]:
    response = world.nurse.get("/v1/alerts", params={"session_id": session["id"]})
    assert response.status_code == 200, response.text
    return response.json()["items"]  # type: ignore[no-any-return]


@pytest.fixture
def session(world: World) -> Json:
    return finished(world)


# --- the summary ------------------------------------------------------------------------------
def test_summary_durations_and_recovery(world: World, session: Json) -> None:
    body = get(world.nurse, session, "summary").json()
    assert set(body) == {"session_id", "durations", "phases", "peak_systolic", "alerts", "recovery"}
    assert body["session_id"] == session["id"]
    assert body["durations"]["infusion_min"] == pytest.approx(60, abs=EPS)
    assert body["durations"]["recovery_min"] == pytest.approx(35, abs=EPS)
    assert body["recovery"]["status"] == "resolved_within_30"
    assert body["recovery"]["minutes_to_resolution"] == pytest.approx(15, abs=EPS)


@pytest.mark.parametrize(("phase", "rows"), [("pre", PRE), ("intra", INTRA), ("post", POST)])
def test_summary_phases_give_min_max_mean_count_per_vital(
    world: World, session: Json, phase: str, rows: list[tuple[Any, ...]]
) -> None:
    phases = get(world.nurse, session, "summary").json()["phases"]
    assert set(phases) == {"pre", "intra", "post"}
    for vital in VITALS:
        expected = stats(rows, vital)
        found = phases[phase][vital]
        assert set(found) == {"min", "max", "mean", "count"}
        assert (found["min"], found["max"], found["count"]) == (
            expected["min"], expected["max"], expected["count"],
        ), vital  # fmt: skip
        assert found["mean"] == pytest.approx(expected["mean"], abs=0.01), vital


def test_summary_peak_systolic_leaves_out_entries_in_error(world: World, session: Json) -> None:
    body = get(world.nurse, session, "summary").json()
    peak = body["peak_systolic"]
    assert peak["value"] == 150  # not the 156 entered in error
    assert parse_time(peak["measured_at"]) == parse_time(shifted(session["started_at"], 38.5))
    assert peak["minutes_from_start"] == pytest.approx(38.5, abs=EPS)
    assert body["phases"]["intra"]["systolic"]["max"] == 150
    assert body["phases"]["intra"]["systolic"]["count"] == len(INTRA)


def test_summary_lists_the_sessions_alerts(world: World, session: Json) -> None:
    listed = get(world.nurse, session, "summary").json()["alerts"]
    assert {a["id"] for a in listed} == {a["id"] for a in session_alerts(world, session)}
    [hr] = [a for a in listed if a["rule"] == "hr.high"]  # the 112 at 38.5 min
    assert (hr["severity"], hr["value"], hr["session_id"]) == ("medium", 112, session["id"])
    assert all(a["status"] == "resolved" for a in listed)  # discharged


def test_summary_before_the_end(world: World) -> None:
    session = world.session(state="in_progress")
    body = get(world.nurse, session, "summary").json()
    assert body["recovery"] == {"status": "infusion_not_ended", "minutes_to_resolution": None}
    assert body["peak_systolic"]["value"] == 124
    assert body["phases"]["pre"]["systolic"]["count"] == 1


# --- the chart --------------------------------------------------------------------------------
def chart(caller: Caller, session: Json) -> ET.Element:
    response = get(caller, session, "chart.svg")
    assert response.headers["content-type"].startswith("image/svg+xml")
    root = ET.fromstring(response.text)
    assert root.tag == f"{SVG}svg"
    return root


def points(line: ET.Element) -> list[tuple[float, float]]:
    return [(float(x), float(y)) for x, y in (p.split(",") for p in line.attrib["points"].split())]


def test_chart_draws_one_point_per_valid_reading_for_each_vital(
    world: World, session: Json
) -> None:
    root = chart(world.nurse, session)
    lines = {
        e.attrib["data-vital"]: e for e in root.iter(f"{SVG}polyline") if "data-vital" in e.attrib
    }
    assert set(lines) == set(VITALS)
    everything = PRE + INTRA + POST
    for vital in VITALS:
        drawn = points(lines[vital])
        assert len(drawn) == stats(everything, vital)["count"], vital
        xs = [x for x, _ in drawn]
        assert xs == sorted(xs), vital  # in time order
    systolic = points(lines["systolic"])
    peak = len(PRE) + 2  # 150 mmHg at 38.5 min: drawn highest (smallest y)
    assert systolic[peak][1] < min(y for i, (_, y) in enumerate(systolic) if i != peak)


def test_chart_shades_the_infusion_and_marks_its_end(world: World, session: Json) -> None:
    root = chart(world.nurse, session)
    [shade] = [e for e in root.iter(f"{SVG}rect") if e.attrib.get("class") == "infusion"]
    [end] = [e for e in root.iter(f"{SVG}line") if e.attrib.get("class") == "infusion-end"]
    left, right = float(shade.attrib["x"]), float(shade.attrib["x"]) + float(shade.attrib["width"])
    assert float(end.attrib["x1"]) == pytest.approx(right, abs=0.2)
    [systolic] = [
        e for e in root.iter(f"{SVG}polyline") if e.attrib.get("data-vital") == "systolic"
    ]
    inside = [x for x, _ in points(systolic) if left < x < right]
    assert len(inside) == len(INTRA)


def test_chart_marks_every_alert_with_its_severity(world: World, session: Json) -> None:
    root = chart(world.nurse, session)
    markers = [e for e in root.iter() if "data-severity" in e.attrib]
    alerts = session_alerts(world, session)
    assert alerts
    assert sorted(m.attrib["data-severity"] for m in markers) == sorted(
        a["severity"] for a in alerts
    )


def test_chart_labels_its_axes_with_units(world: World, session: Json) -> None:
    root = chart(world.nurse, session)
    text = " ".join("".join(e.itertext()) for e in root.iter(f"{SVG}text"))
    for unit in ("mmHg", "/min", "%"):
        assert unit in text, unit


# --- who may read ---------------------------------------------------------------------------
@pytest.mark.parametrize("what", ["summary", "chart.svg"])
def test_the_dashboard_reads_and_another_clinic_gets_404(
    world: World, session: Json, what: str
) -> None:
    get(world.dashboard, session, what)
    response = world.other_nurse.get(f"/v1/sessions/{session['id']}/{what}")
    expect_problem(response, 404, "not-found")
