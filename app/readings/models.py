import uuid
from datetime import datetime

from sqlalchemy import Float, ForeignKey, Index, String, Text, Uuid, text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base

# The NEWS2 parameters a reading may take from an earlier one (never on_oxygen).
CARRIED_FORWARD = (
    "respiratory_rate",
    "spo2",
    "systolic",
    "heart_rate",
    "consciousness",
    "temperature_c",
)


class Reading(Base):
    """One set of vital signs taken at the bedside (``measured_at``), stored at ``recorded_at``."""

    __tablename__ = "readings"
    __table_args__ = (
        Index("ix_readings_infusion_id_measured_at_id", "infusion_id", "measured_at", "id"),
        # NEWS2 carry-forward: the latest earlier value of each parameter, without a scan.
        *(
            Index(
                f"ix_readings_latest_{name}",
                "infusion_id",
                "measured_at",
                "id",
                sqlite_where=text(f"{name} IS NOT NULL"),
                postgresql_where=text(f"{name} IS NOT NULL"),
            )
            for name in CARRIED_FORWARD
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    infusion_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("infusions.id"))
    clinic_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("clinics.id"))
    measured_at: Mapped[datetime]
    recorded_at: Mapped[datetime]
    heart_rate: Mapped[int | None]
    systolic: Mapped[int | None]
    diastolic: Mapped[int | None]
    spo2: Mapped[int | None]
    respiratory_rate: Mapped[int | None]
    temperature_c: Mapped[float | None] = mapped_column(Float)
    consciousness: Mapped[str | None] = mapped_column(String(20))
    on_oxygen: Mapped[bool | None]
    source: Mapped[str] = mapped_column(String(10))
    device_id: Mapped[str | None] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(20))
    entered_in_error_at: Mapped[datetime | None]
    entered_in_error_reason: Mapped[str | None] = mapped_column(Text)
    recorded_by: Mapped[uuid.UUID | None]
    # Fingerprint of the request item, so a replay with a client-supplied id can be recognised.
    request_hash: Mapped[str] = mapped_column(String(64))
    # The 201 item as first answered (JSON), kept when the client gave an id: a replay repeats it.
    answer: Mapped[str | None] = mapped_column(Text, deferred=True)
