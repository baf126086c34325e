from __future__ import annotations

import uuid
from typing import Annotated

from pydantic import Field, StringConstraints

from app.auth.roles import Role
from app.schemas import RequestModel, ResponseModel, Timestamp

Label = Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)]


class ClinicCreate(RequestModel):
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class ClinicRead(ResponseModel):
    id: uuid.UUID
    name: str
    created_at: Timestamp


class ApiKeyCreate(RequestModel):
    clinic_id: uuid.UUID | None = None
    role: Role
    label: Label = ""
    expires_at: Timestamp | None = Field(
        default=None, description="When the key stops working (must lie ahead); none: never"
    )


class ApiKeyRevoke(RequestModel):
    """Revocation takes no fields: the body may be omitted or ``{}``."""


class ApiKeyRead(ResponseModel):
    id: uuid.UUID
    role: Role
    clinic_id: uuid.UUID | None
    label: str
    key_prefix: str
    created_at: Timestamp
    revoked_at: Timestamp | None
    expires_at: Timestamp | None
    last_used_at: Timestamp | None = Field(description="When the key was last used, to the minute")


class ApiKeyCreated(ResponseModel):
    """The only answer that ever shows the secret ``key``."""

    id: uuid.UUID
    role: Role
    clinic_id: uuid.UUID | None
    label: str
    key: str | None = Field(
        description="The secret, shown only here (null on an idempotent replay)"
    )
    created_at: Timestamp
    expires_at: Timestamp | None
