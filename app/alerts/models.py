import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Float, ForeignKey, Index, Integer, String, Text, Uuid, text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base

ACTIVE_STATUSES = ("open", "acknowledged")
_ACTIVE = text("status IN ('open', 'acknowledged')")
Seq = BigInteger().with_variant(Integer(), "sqlite")


class Alert(Base):
    """A rule's violation in one session, from first evidence to resolution."""

    __tablename__ = "alerts"
    __table_args__ = (
        # At most one open-or-acknowledged alert per (session, rule), also under concurrent posts.
        Index(
            "uq_alerts_infusion_id_rule_active",
            "infusion_id",
            "rule",
            unique=True,
            sqlite_where=_ACTIVE,
            postgresql_where=_ACTIVE,
        ),
        Index("ix_alerts_clinic_id_change_seq", "clinic_id", "change_seq"),
        Index("ix_alerts_infusion_id_status", "infusion_id", "status"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    clinic_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("clinics.id"))
    infusion_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("infusions.id"))
    patient_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("patients.id"))
    rule: Mapped[str] = mapped_column(String(40))
    severity: Mapped[str] = mapped_column(String(10))
    status: Mapped[str] = mapped_column(String(20))
    message: Mapped[str] = mapped_column(Text)
    value: Mapped[float | None] = mapped_column(Float)
    threshold: Mapped[float | None] = mapped_column(Float)
    first_seen_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]
    count: Mapped[int]
    reading_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("readings.id"))
    observation_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("observations.id"))
    cleared_at: Mapped[datetime | None]
    acknowledged_at: Mapped[datetime | None]
    acknowledged_by: Mapped[uuid.UUID | None]
    acknowledgement_note: Mapped[str | None] = mapped_column(Text)
    resolved_at: Mapped[datetime | None]
    resolved_by: Mapped[uuid.UUID | None]
    resolution_note: Mapped[str | None] = mapped_column(Text)
    protocol_version: Mapped[int]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    change_seq: Mapped[int] = mapped_column(Seq)


class AlertEvidence(Base):
    """The readings and observations that violated an alert's rule (to know its only evidence)."""

    __tablename__ = "alert_evidence"
    __table_args__ = (
        Index("ix_alert_evidence_reading_id", "reading_id"),
        Index("ix_alert_evidence_observation_id", "observation_id"),
    )

    id: Mapped[int] = mapped_column(Seq, primary_key=True, autoincrement=True)
    alert_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("alerts.id"), index=True)
    reading_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("readings.id"))
    observation_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("observations.id"))


class AlertEvent(Base):
    """Every change of an alert, numbered per clinic in commit order: the SSE stream's source."""

    __tablename__ = "alert_events"

    clinic_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("clinics.id"), primary_key=True)
    seq: Mapped[int] = mapped_column(Seq, primary_key=True, autoincrement=False)
    alert_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("alerts.id"))
    kind: Mapped[str] = mapped_column(String(20))
    at: Mapped[datetime]
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)


class ChangeCounter(Base):
    """Per clinic, the last alert change number handed out.

    Taking a number locks the clinic's row until commit, so numbers become visible in order and a
    poller that has seen N never later meets a change numbered below N.
    """

    __tablename__ = "change_counters"

    clinic_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("clinics.id"), primary_key=True)
    alert_seq: Mapped[int] = mapped_column(Seq, default=0)
