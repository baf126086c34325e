import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base


class Observation(Base):
    """A side effect or assessment (nausea, sedation, dissociation, ...) seen at the bedside."""

    __tablename__ = "observations"
    __table_args__ = (
        Index("ix_observations_infusion_id_measured_at_id", "infusion_id", "measured_at", "id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    infusion_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("infusions.id"))
    clinic_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("clinics.id"))
    measured_at: Mapped[datetime]
    recorded_at: Mapped[datetime]
    kind: Mapped[str] = mapped_column(String(30))
    severity: Mapped[int | None]
    moaas: Mapped[int | None]
    cadss: Mapped[int | None]
    note: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20))
    entered_in_error_at: Mapped[datetime | None]
    entered_in_error_reason: Mapped[str | None] = mapped_column(Text)
    recorded_by: Mapped[uuid.UUID | None]
    request_hash: Mapped[str] = mapped_column(String(64))
    # The 201 body as first answered (JSON), kept when the client gave an id: a replay repeats it.
    answer: Mapped[str | None] = mapped_column(Text, deferred=True)
