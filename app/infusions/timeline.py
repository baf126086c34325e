"""Where a bedside time falls in a session: pure functions of the session's times."""

from __future__ import annotations

from datetime import datetime
from typing import Any


def phase_at(infusion: Any, measured_at: datetime) -> str:
    """Before the start (pre), during the infusion (intra), or after its end (post)."""
    if infusion.started_at is None or measured_at < infusion.started_at:
        return "pre"
    if infusion.infusion_ended_at is not None and measured_at >= infusion.infusion_ended_at:
        return "post"
    return "intra"


def closed_at(infusion: Any) -> datetime | None:
    """When the session stopped taking new entries (discharge or abort), if it has."""
    return infusion.discharged_at or infusion.aborted_at  # type: ignore[no-any-return]
