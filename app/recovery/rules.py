"""Post-infusion recovery (PROTOCOL.md) as pure functions of plain values."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

# The esketamine trials' cut-off: a CADSS total above this shows dissociation.
CADSS_CUTOFF = 4


def shows_dissociation(severity: int | None, cadss: int | None) -> bool:
    return (severity or 0) >= 1 or (cadss is not None and cadss > CADSS_CUTOFF)


def resolution(assessments: Sequence[Any]) -> Any | None:
    """The assessment at which dissociation resolved, or None.

    ``assessments`` are the valid post-infusion dissociation observations in time order. It is
    the first one showing none that no later one contradicts; without any, nothing is resolved
    (silence is not recovery).
    """
    resolved = None
    for assessment in assessments:
        if shows_dissociation(assessment.severity, assessment.cadss):
            resolved = None
        elif resolved is None:
            resolved = assessment
    return resolved


def minutes_between(start: datetime, end: datetime) -> float:
    return (end - start).total_seconds() / 60
