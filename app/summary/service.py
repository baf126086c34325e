"""After the session: what happened, from valid data only (entries in error are left out)."""

from __future__ import annotations

import uuid
from datetime import datetime
from statistics import fmean
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.alerts import store as alert_store
from app.alerts.queries import session_alerts
from app.auth.deps import Principal
from app.infusions.service import read_infusion
from app.infusions.timeline import phase_at
from app.readings.models import Reading
from app.recovery.rules import minutes_between
from app.recovery.service import recovery
from app.summary.chart import render
from app.summary.schemas import Durations, PeakSystolic, RecoverySummary, SessionSummary, VitalStats

VITALS = ("heart_rate", "systolic", "diastolic", "spo2", "respiratory_rate", "temperature_c")


def valid_readings(db: Session, infusion_id: uuid.UUID) -> list[Reading]:
    query = select(Reading).where(Reading.infusion_id == infusion_id, Reading.status == "final")
    return list(db.scalars(query.order_by(Reading.measured_at, Reading.id)))


def phase_stats(infusion: Any, readings: list[Reading]) -> dict[str, dict[str, VitalStats]]:
    values: dict[str, dict[str, list[float]]] = {}
    for reading in readings:
        phase = values.setdefault(phase_at(infusion, reading.measured_at), {})
        for vital in VITALS:
            value = getattr(reading, vital)
            if value is not None:
                phase.setdefault(vital, []).append(value)
    return {
        phase: {
            vital: VitalStats(min=min(v), max=max(v), mean=round(fmean(v), 2), count=len(v))
            for vital, v in vitals.items()
        }
        for phase, vitals in values.items()
    }


def summarize(
    db: Session, principal: Principal, infusion_id: uuid.UUID, now: datetime
) -> SessionSummary:
    infusion = read_infusion(db, principal, infusion_id)
    readings = valid_readings(db, infusion.id)
    peak = None
    with_bp = [r for r in readings if r.systolic is not None]
    if with_bp:
        top = max(with_bp, key=lambda r: (r.systolic or 0, -r.measured_at.timestamp()))
        since_start = (
            minutes_between(infusion.started_at, top.measured_at) if infusion.started_at else None
        )
        peak = PeakSystolic(
            value=top.systolic or 0, measured_at=top.measured_at, minutes_from_start=since_start
        )
    ended, started = infusion.infusion_ended_at, infusion.started_at
    state = recovery(db, infusion, now)
    return SessionSummary(
        session_id=infusion.id,
        durations=Durations(
            infusion_min=minutes_between(started, ended) if started and ended else None,
            recovery_min=minutes_between(ended, infusion.discharged_at)
            if ended and infusion.discharged_at
            else None,
        ),
        phases=phase_stats(infusion, readings),
        peak_systolic=peak,
        alerts=[alert_store.to_read(a) for a in session_alerts(db, infusion.id)],
        recovery=RecoverySummary(
            status=state.status, minutes_to_resolution=state.dissociation.minutes_to_resolution
        ),
    )


def chart(db: Session, principal: Principal, infusion_id: uuid.UUID) -> str:
    infusion = read_infusion(db, principal, infusion_id)
    title = f"Session {infusion.id}: vital signs"
    return render(infusion, valid_readings(db, infusion.id), session_alerts(db, infusion.id), title)
