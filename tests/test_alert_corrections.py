"""Alerts stay true to their evidence: updates, late entries into closed sessions, corrections."""

from __future__ import annotations

from typing import Any

import pytest

from tests.factories import (
    World,
    ago,
    parse_time,
    raised,
    started,
)

Json = dict[str, Any]


def alert(world: World, alert_id: str) -> Json:
    response = world.nurse.get(f"/v1/alerts/{alert_id}")
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def void(world: World, entry: Json, what: str = "readings") -> None:
    url = f"/v1/{what}/{entry['id']}/entered-in-error"
    response = world.nurse.post(url, json={"reason": "wrong patient"})
    assert response.status_code == 200, response.text


def same(a: str | None, b: str | None) -> bool:
    return a is not None and b is not None and parse_time(a) == parse_time(b)


# --- an updated alert's value and threshold come from the same finding --------------------------
@pytest.mark.parametrize(
    ("first", "then", "value", "threshold"),
    [((165, 80), (150, 106), 106, 105), ((150, 106), (165, 80), 165, 160)],
)
def test_updated_rise_from_baseline_takes_value_and_threshold_from_one_component(
    world: World, first: tuple[int, int], then: tuple[int, int], value: int, threshold: int
) -> None:
    session = world.session()
    world.reading(session, measured_at=ago(28), systolic=120, diastolic=80)
    session = world.transition(session, "start", at=ago(25))
    rise = "bp.rise_from_baseline"
    sys_, dia = first
    opened = raised(world.reading(session, measured_at=ago(6), systolic=sys_, diastolic=dia), rise)
    sys_, dia = then
    updated = raised(world.reading(session, measured_at=ago(5), systolic=sys_, diastolic=dia), rise)
    assert (updated["id"], updated["count"]) == (opened["id"], 2)
    assert (updated["value"], updated["threshold"]) == (value, threshold)
    assert str(value) in updated["message"]
    assert alert(world, updated["id"]) == updated


def test_a_lower_violation_keeps_the_limit_of_the_current_severity(world: World) -> None:
    session = started(world)
    world.reading(session, measured_at=ago(6), heart_rate=135)
    later = raised(world.reading(session, measured_at=ago(5), heart_rate=115), "hr.high")
    assert (later["severity"], later["value"], later["threshold"]) == ("high", 115, 130)
