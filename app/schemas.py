"""Building blocks shared by every domain's request and response schemas."""

from __future__ import annotations

import base64
import re
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Generic, TypeVar

import orjson
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    PlainSerializer,
    StringConstraints,
    field_validator,
)

from app.errors import ValidationFailed


def _to_utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00:00+01:00 lies before year 1 in UTC
        raise ValueError("timestamp out of range") from None


def format_utc(value: datetime) -> str:
    text = value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return text


_RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$"
)


def _rfc3339(value: Any) -> Any:
    """Text in RFC 3339 (seconds and an offset), not the other forms Pydantic would take (a
    number of epoch seconds, a time without seconds or without an offset)."""
    if isinstance(value, datetime):  # built by the server itself, not read from JSON
        return value
    if not isinstance(value, str) or not _RFC3339.match(value):
        raise ValueError("expected an RFC 3339 timestamp with an offset, like 2026-11-21T14:05:00Z")
    return value


# Requests must carry an offset (a naive timestamp is a 422); responses always say UTC with Z.
Timestamp = Annotated[
    AwareDatetime,
    BeforeValidator(_rfc3339),
    AfterValidator(_to_utc),
    PlainSerializer(format_utc, return_type=str, when_used="json"),
]


class RequestModel(BaseModel):
    """Requests reject unknown fields rather than ignore them, and text holding NUL characters
    (which no database stores faithfully)."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("*")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        if _has_nul(value):
            raise ValueError("text must not contain NUL characters")
        return value


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, list | tuple):
        return any(_has_nul(v) for v in value)
    return False


# A query parameter of free text (NUL characters refused like in bodies).
QueryText = Annotated[str, StringConstraints(max_length=200, pattern=r"^[^\x00]*$")]


class ResponseModel(BaseModel):
    model_config = ConfigDict(from_attributes=True)


T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None


def etag_matches(if_none_match: str, etag: str) -> bool:
    """Whether ``If-None-Match`` holds ``etag``, by RFC 9110's weak comparison (``W/`` or not)
    or as ``*`` (any current representation)."""
    wanted = etag.removeprefix("W/")
    return any(
        tag == "*" or tag.removeprefix("W/") == wanted
        for tag in (t.strip() for t in if_none_match.split(","))
    )


def encode_cursor(*parts: object) -> str:
    raw = orjson.dumps([p.isoformat() if isinstance(p, datetime) else str(p) for p in parts])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, arity: int) -> list[str]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        parts = orjson.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, TypeError) as exc:
        raise ValidationFailed(
            "cursor is not valid", [{"loc": ["query", "cursor"], "msg": "invalid cursor"}]
        ) from exc
    if (
        not isinstance(parts, list)
        or len(parts) != arity
        or not all(isinstance(p, str) for p in parts)
    ):
        raise ValidationFailed(
            "cursor is not valid", [{"loc": ["query", "cursor"], "msg": "invalid cursor"}]
        )
    return parts


MAX_SEQUENCE = 2**63 - 1  # a BIGINT: the change and audit sequences, never beyond


def parse_sequence(text: str, name: str = "cursor") -> int:
    """A sequence number read from a cursor: ASCII digits within a BIGINT, else a 422."""
    if not (text.isascii() and text.isdigit() and int(text) <= MAX_SEQUENCE):
        raise ValidationFailed(
            f"{name} is not valid", [{"loc": ["query", name], "msg": "invalid cursor"}]
        )
    return int(text)


def parse_uuid(text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError as exc:
        raise ValidationFailed(
            "cursor is not valid", [{"loc": ["query", "cursor"], "msg": "invalid cursor"}]
        ) from exc


def _bad_cursor() -> ValidationFailed:
    return ValidationFailed(
        "cursor is not valid", [{"loc": ["query", "cursor"], "msg": "invalid cursor"}]
    )


def parse_time(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError as exc:
        raise _bad_cursor() from exc
    if value.tzinfo is None:
        raise _bad_cursor()
    return value


def decode_timeline_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    """A cursor over rows ordered by a timestamp, then id."""
    when, ident = decode_cursor(cursor, 2)
    return parse_time(when), parse_uuid(ident)
