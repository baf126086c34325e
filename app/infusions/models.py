import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Float, ForeignKey, Index, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, utcnow


class Infusion(Base):
    """An infusion session: one patient in the chair, from baseline to discharge."""

    __tablename__ = "infusions"
    __table_args__ = (
        Index("ix_infusions_clinic_id_status_created_at", "clinic_id", "status", "created_at"),
        Index("ix_infusions_clinic_id_created_at", "clinic_id", "created_at"),
        Index("ix_infusions_patient_id_created_at", "patient_id", "created_at"),
        Index("ix_infusions_clinic_id_next_check_at", "clinic_id", "next_check_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    clinic_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("clinics.id"))
    patient_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("patients.id"))
    status: Mapped[str] = mapped_column(String(20))
    route: Mapped[str] = mapped_column(String(20))
    planned_duration_min: Mapped[int | None]
    dose_mg_per_kg: Mapped[float | None] = mapped_column(Float)
    protocol_version: Mapped[int]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    infusion_ended_at: Mapped[datetime | None]
    discharged_at: Mapped[datetime | None]
    aborted_at: Mapped[datetime | None]
    abort_reason: Mapped[str | None] = mapped_column(Text)
    screening_override: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    discharge_override: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # When a time rule (vitals overdue, dissociation unresolved) may next change state; null: never.
    next_check_at: Mapped[datetime | None]
