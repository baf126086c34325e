"""NEWS2 as pure functions (PROTOCOL.md "NEWS2"): every band at its edges, risk, carry-forward."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from app.alerts.news2 import PARAMETERS, compute, risk_of, score_parameter

T = datetime(2026, 11, 21, 14, 0, tzinfo=UTC)
FIELDS = (
    "heart_rate", "systolic", "diastolic", "spo2", "respiratory_rate",
    "temperature_c", "consciousness", "on_oxygen",
)  # fmt: skip
# Every parameter at a value scoring 0.
NORMAL = {
    "respiratory_rate": 16,
    "spo2": 98,
    "systolic": 124,
    "diastolic": 78,
    "heart_rate": 72,
    "consciousness": "alert",
    "temperature_c": 36.8,
}


def reading(at: datetime = T, **fields: Any) -> SimpleNamespace:
    """A reading as the engine hands it over: every field present, None when not measured."""
    return SimpleNamespace(measured_at=at, **{name: fields.get(name) for name in FIELDS})


def full(at: datetime = T, **fields: Any) -> SimpleNamespace:
    return reading(at, **{**NORMAL, **fields})


# (parameter, value, score): the edges of every band of the RCP chart, SpO2 scale 1.
BANDS: list[tuple[str, Any, int]] = [
    *[("respiratory_rate", v, s) for v, s in [(0, 3), (8, 3), (9, 1), (11, 1), (12, 0)]],
    *[("respiratory_rate", v, s) for v, s in [(20, 0), (21, 2), (24, 2), (25, 3), (60, 3)]],
    *[("spo2", v, s) for v, s in [(0, 3), (91, 3), (92, 2), (93, 2), (94, 1), (95, 1)]],
    *[("spo2", v, s) for v, s in [(96, 0), (100, 0)]],
    *[("on_oxygen", v, s) for v, s in [(True, 2), (False, 0)]],
    *[("systolic", v, s) for v, s in [(20, 3), (90, 3), (91, 2), (100, 2), (101, 1)]],
    *[("systolic", v, s) for v, s in [(110, 1), (111, 0), (219, 0), (220, 3), (300, 3)]],
    *[("heart_rate", v, s) for v, s in [(0, 3), (40, 3), (41, 1), (50, 1), (51, 0), (90, 0)]],
    *[("heart_rate", v, s) for v, s in [(91, 1), (110, 1), (111, 2), (130, 2), (131, 3)]],
    ("heart_rate", 300, 3),
    *[("consciousness", v, 0 if v == "alert" else 3) for v in ["alert", "confusion"]],
    *[("consciousness", v, 3) for v in ["voice", "pain", "unresponsive"]],
    *[("temperature_c", v, s) for v, s in [(25.0, 3), (35.0, 3), (35.1, 1), (36.0, 1)]],
    *[("temperature_c", v, s) for v, s in [(36.1, 0), (38.0, 0), (38.1, 1), (39.0, 1)]],
    *[("temperature_c", v, s) for v, s in [(39.1, 2), (45.0, 2)]],
]


@pytest.mark.parametrize(("name", "value", "score"), BANDS, ids=lambda v: str(v))
def test_every_band_edge_scores_as_the_chart(name: str, value: Any, score: int) -> None:
    assert score_parameter(name, value) == score


@pytest.mark.parametrize(("name", "value", "score"), BANDS, ids=lambda v: str(v))
def test_compute_uses_the_band_score_of_each_parameter(name: str, value: Any, score: int) -> None:
    fields = {**NORMAL, name: value}
    if name == "systolic":
        fields["diastolic"] = min(78, value - 1)
    result = compute(reading(**fields), [])
    assert result.parameters[name].score == score
    assert result.parameters[name].value == value
    assert result.score == score
    assert result.complete is True and result.missing == []


def test_unknown_parameter_is_refused() -> None:
    with pytest.raises(ValueError):
        score_parameter("diastolic", 80)


def test_all_normal_scores_zero_with_every_parameter_named_as_reading_fields() -> None:
    result = compute(full(), [])
    assert (result.score, result.risk, result.complete, result.missing) == (0, "low", True, [])
    assert set(result.parameters) == set(PARAMETERS) == {
        "respiratory_rate", "spo2", "on_oxygen", "systolic", "heart_rate",
        "consciousness", "temperature_c",
    }  # fmt: skip
    assert all(p.measured_at == T for p in result.parameters.values())
    as_dict = result.as_dict()
    assert set(as_dict) == {"score", "risk", "complete", "missing", "parameters"}
    assert as_dict["parameters"]["heart_rate"] == {"value": 72, "score": 0, "measured_at": T}


# (fields changed from NORMAL, aggregate, risk)
RISKS: list[tuple[dict[str, Any], int, str]] = [
    ({"heart_rate": 91}, 1, "low"),
    ({"heart_rate": 111, "temperature_c": 38.1, "spo2": 94}, 4, "low"),
    ({"respiratory_rate": 25}, 3, "low-medium"),
    ({"consciousness": "voice"}, 3, "low-medium"),
    ({"systolic": 90, "diastolic": 60, "heart_rate": 91}, 4, "low-medium"),
    ({"respiratory_rate": 21, "spo2": 94, "heart_rate": 91, "temperature_c": 38.1}, 5, "medium"),
    ({"respiratory_rate": 21, "on_oxygen": True, "heart_rate": 91}, 5, "medium"),
    ({"spo2": 91, "on_oxygen": True}, 5, "medium"),
    ({"respiratory_rate": 21, "on_oxygen": True, "heart_rate": 111}, 6, "medium"),
    ({"respiratory_rate": 21, "on_oxygen": True, "heart_rate": 111, "spo2": 95}, 7, "high"),
    ({"consciousness": "pain", "spo2": 91, "temperature_c": 39.1}, 8, "high"),
    ({"respiratory_rate": 25, "spo2": 91, "systolic": 90, "diastolic": 60, "heart_rate": 131,
      "consciousness": "unresponsive", "temperature_c": 35.0, "on_oxygen": True}, 20, "high"),
]  # fmt: skip


@pytest.mark.parametrize(("fields", "score", "risk"), RISKS, ids=lambda v: str(v))
def test_aggregate_and_risk(fields: dict[str, Any], score: int, risk: str) -> None:
    result = compute(full(**fields), [])
    assert (result.score, result.risk, result.complete) == (score, risk, True)


@pytest.mark.parametrize(
    ("score", "single_three", "risk"),
    [
        (0, False, "low"), (4, False, "low"), (3, True, "low-medium"), (4, True, "low-medium"),
        (5, False, "medium"), (5, True, "medium"), (6, True, "medium"), (7, False, "high"),
        (7, True, "high"), (20, True, "high"),
    ],
)  # fmt: skip
def test_risk_bands(score: int, single_three: bool, risk: str) -> None:
    assert risk_of(score, single_three) == risk


# --- carry-forward (60 minutes; temperature 4 hours) ------------------------------------------
CARRIED = [
    ("respiratory_rate", 22, 2, timedelta(minutes=60)),
    ("spo2", 92, 2, timedelta(minutes=60)),
    ("systolic", 95, 2, timedelta(minutes=60)),
    ("heart_rate", 115, 2, timedelta(minutes=60)),
    ("consciousness", "confusion", 3, timedelta(minutes=60)),
    ("temperature_c", 39.5, 2, timedelta(hours=4)),
]


def _without(name: str) -> dict[str, Any]:
    fields = {k: v for k, v in NORMAL.items() if k != name}
    if name == "systolic":
        fields.pop("diastolic")
    return fields


@pytest.mark.parametrize(("name", "value", "score", "window"), CARRIED, ids=lambda v: str(v))
def test_missing_parameter_is_carried_forward_at_the_edge_of_its_window(
    name: str, value: Any, score: int, window: timedelta
) -> None:
    earlier = reading(T - window, **{name: value, "diastolic": 60 if name == "systolic" else None})
    result = compute(reading(**_without(name)), [earlier])
    assert result.complete is True and result.missing == []
    used = result.parameters[name]
    assert (used.value, used.score, used.measured_at) == (value, score, T - window)
    assert result.score == score


@pytest.mark.parametrize(("name", "value", "score", "window"), CARRIED, ids=lambda v: str(v))
def test_value_just_outside_the_window_is_not_carried_forward(
    name: str, value: Any, score: int, window: timedelta
) -> None:
    earlier = reading(T - window - timedelta(seconds=1), **{name: value})
    result = compute(reading(**_without(name)), [earlier])
    assert result.complete is False
    assert result.missing == [name]
    assert name not in result.parameters
    assert result.score == 0


def test_temperature_carries_beyond_an_hour_but_other_parameters_do_not() -> None:
    earlier = reading(T - timedelta(minutes=90), spo2=92, temperature_c=39.5)
    fields = {k: v for k, v in NORMAL.items() if k not in ("spo2", "temperature_c")}
    result = compute(reading(**fields), [earlier])
    assert result.missing == ["spo2"]
    assert result.parameters["temperature_c"].value == 39.5


def test_the_latest_earlier_value_is_carried_and_later_or_own_values_win() -> None:
    older = reading(T - timedelta(minutes=40), heart_rate=120)
    newer = reading(T - timedelta(minutes=10), heart_rate=95)
    later = reading(T + timedelta(minutes=1), heart_rate=140)  # not before this reading
    result = compute(reading(**_without("heart_rate")), [later, older, newer])
    carried = result.parameters["heart_rate"]
    assert (carried.value, carried.score, carried.measured_at) == (95, 1, T - timedelta(minutes=10))
    own = compute(full(heart_rate=60), [newer]).parameters["heart_rate"]
    assert (own.value, own.score, own.measured_at) == (60, 0, T)


def test_earlier_reading_lacking_the_parameter_is_skipped_for_an_older_one() -> None:
    older = reading(T - timedelta(minutes=30), spo2=93)
    newer = reading(T - timedelta(minutes=5), heart_rate=80)
    result = compute(reading(**_without("spo2")), [newer, older])
    assert result.parameters["spo2"].value == 93
    assert result.parameters["spo2"].measured_at == T - timedelta(minutes=30)


def test_on_oxygen_is_never_carried_forward_omitted_means_room_air() -> None:
    earlier = reading(T - timedelta(minutes=5), on_oxygen=True, **NORMAL)
    result = compute(full(), [earlier])
    used = result.parameters["on_oxygen"]
    assert (used.value, used.score, used.measured_at) == (False, 0, T)
    assert result.score == 0 and result.complete is True
    on_air = compute(reading(**_without("heart_rate")), [earlier])
    assert on_air.parameters["on_oxygen"].value is False
    assert on_air.parameters["heart_rate"].measured_at == T - timedelta(minutes=5)


def test_on_oxygen_of_the_reading_itself_scores_two() -> None:
    result = compute(full(on_oxygen=True), [])
    used = result.parameters["on_oxygen"]
    assert (used.value, used.score, used.measured_at) == (True, 2, T)
    assert (result.score, result.risk) == (2, "low")


def test_incomplete_lists_missing_names_and_gives_the_partial_score() -> None:
    result = compute(reading(heart_rate=131, spo2=93), [])
    assert result.complete is False
    assert set(result.missing) == {
        "respiratory_rate", "systolic", "consciousness", "temperature_c"
    }  # fmt: skip
    assert "on_oxygen" not in result.missing
    assert set(result.parameters) == {"heart_rate", "spo2", "on_oxygen"}
    assert result.score == 3 + 2


def test_incomplete_partial_score_with_carry_forward_and_oxygen() -> None:
    earlier = reading(T - timedelta(minutes=20), respiratory_rate=26, consciousness="pain")
    result = compute(reading(on_oxygen=True, heart_rate=72), [earlier])
    assert result.complete is False
    assert set(result.missing) == {"spo2", "systolic", "temperature_c"}
    assert result.score == 3 + 3 + 2
    assert result.parameters["respiratory_rate"].measured_at == T - timedelta(minutes=20)
    as_dict = result.as_dict()
    assert as_dict["complete"] is False and set(as_dict["missing"]) == set(result.missing)


def test_reading_with_nothing_but_consciousness_misses_the_rest() -> None:
    result = compute(reading(consciousness="alert"), [])
    assert set(result.missing) == set(PARAMETERS) - {"consciousness", "on_oxygen"}
    assert result.score == 0 and result.risk == "low"
