"""Every table, imported in one place for Alembic and the schema check."""

from app.alerts.models import Alert, AlertEvent, AlertEvidence, ChangeCounter
from app.audit.models import AuditEvent
from app.auth.models import ApiKey, Clinic
from app.db import Base
from app.fhir.models import ObservationIdentifier
from app.idempotency.models import IdempotencyRecord
from app.infusions.models import Infusion
from app.observations.models import Observation
from app.patients.models import Patient
from app.protocol.models import ProtocolVersion
from app.readings.models import Reading

metadata = Base.metadata

__all__ = [
    "Alert",
    "AlertEvent",
    "AlertEvidence",
    "ApiKey",
    "AuditEvent",
    "ChangeCounter",
    "Clinic",
    "IdempotencyRecord",
    "Infusion",
    "Observation",
    "ObservationIdentifier",
    "Patient",
    "ProtocolVersion",
    "Reading",
    "metadata",
]  # fmt: skip
