"""The default monitoring protocol of PROTOCOL.md, as data a clinic may later override."""

from typing import Any

DEFAULT_PROTOCOL_VERSION = 1

# The whole document, in the shape `GET /v1/protocol` answers and `PUT /v1/protocol` takes.
DEFAULT_PROTOCOL: dict[str, Any] = {
    # PROTOCOL.md "Threshold rules": each rule with exactly the levels of its row.
    "thresholds": {
        "bp.systolic.high": {"medium": 160, "high": 180},
        "bp.diastolic.high": {"medium": 100, "high": 110},
        "bp.systolic.low": {"medium": 90, "high": 80},
        "hr.high": {"medium": 110, "high": 130},
        "hr.low": {"medium": 50, "high": 40},
        "spo2.low": {"medium": 93, "high": 90},
        "rr.low": {"medium": 10, "high": 8},
        "rr.high": {"medium": 25},
        "news2": {"medium": 5, "high": 7},
        "sedation.deep": {"medium": 3, "high": 2},
        "dissociation.severe": {"medium": 3},
        "symptom.vomiting": {"medium": 1},
        "symptom.severe": {"medium": 3},
        "vitals.overdue": {"low": 15, "medium": 30},
        "dissociation.unresolved": {"medium": 60, "high": 120},
    },
    # bp.rise_from_baseline (medium): the esketamine label's clinically notable rise.
    "rise_from_baseline": {"systolic": 40, "diastolic": 25},
    # Baseline pressure above which `start` needs a clinician's review (esketamine label).
    "screening": {"systolic_max": 140, "diastolic_max": 90},
    "recovery": {
        "min_observation_min": 30,
        "min_observation_intranasal_min": 120,  # esketamine REMS: at least 2 hours
        "assessment_interval_min": 15,
        "resolved_within_min": 30,
        "overdue_after_min": 60,
        "vomiting_window_min": 30,
        "near_baseline": {
            "systolic_rise": 20,
            "diastolic_rise": 10,
            "heart_rate_rise": 20,
            "systolic_below": 140,
            "diastolic_below": 90,
            "heart_rate_below": 100,
        },
    },
}
