"""Every table, imported in one place for Alembic and the schema check."""

from app.audit.models import AuditEvent
from app.auth.models import ApiKey, Clinic
from app.db import Base
from app.idempotency.models import IdempotencyRecord
from app.infusions.models import Infusion
from app.observations.models import Observation
from app.patients.models import Patient
from app.readings.models import Reading

metadata = Base.metadata

__all__ = [
    "ApiKey", "AuditEvent", "Clinic", "IdempotencyRecord", "Infusion", "Observation", "Patient",
    "Reading", "metadata",
]  # fmt: skip
