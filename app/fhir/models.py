import uuid

from sqlalchemy import ForeignKey, Index, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base


class ObservationIdentifier(Base):
    """An identifier a client gave an Observation it created through FHIR (a device gateway's
    message id, an EHR's own id), kept with the reading so If-None-Exist can find it again."""

    __tablename__ = "fhir_observation_identifiers"
    __table_args__ = (
        Index("ix_fhir_observation_identifiers_clinic_id_value", "clinic_id", "value"),
    )

    reading_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("readings.id"), primary_key=True)
    # "" when the identifier has no system (FHIR allows that; a token search can ask for it).
    system: Mapped[str] = mapped_column(String(255), primary_key=True)
    value: Mapped[str] = mapped_column(String(255), primary_key=True)
    clinic_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("clinics.id"))
