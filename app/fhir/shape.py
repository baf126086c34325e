"""The shape of a posted FHIR resource: JSON of the right types (else 400), and the errors
that name the element at fault as a FHIRPath expression."""

from __future__ import annotations

from typing import Any, NoReturn

import orjson

from app.errors import BadRequest, ValidationFailed

# Every element of an R4 Observation: anything else is not an Observation (400).
ELEMENTS = frozenset({
    "resourceType", "id", "meta", "implicitRules", "language", "text", "contained", "extension",
    "modifierExtension", "identifier", "basedOn", "partOf", "status", "category", "code",
    "subject", "focus", "encounter", "effectiveDateTime", "effectivePeriod", "effectiveTiming",
    "effectiveInstant", "issued", "performer", "valueQuantity", "valueCodeableConcept",
    "valueString", "valueBoolean", "valueInteger", "valueRange", "valueRatio", "valueSampledData",
    "valueTime", "valueDateTime", "valuePeriod", "dataAbsentReason", "interpretation", "note",
    "bodySite", "method", "specimen", "device", "referenceRange", "hasMember", "derivedFrom",
    "component",
})  # fmt: skip


def unprocessable(path: str, msg: str, code: str = "invalid") -> NoReturn:
    """422: an Observation, but not one Vigil can take; ``code`` is the FHIR issue type."""
    raise ValidationFailed(
        f"{path}: {msg}",
        [{"loc": ["body", *path.split(".")[1:]], "msg": msg, "expression": path, "code": code}],
    )


def malformed(path: str, msg: str) -> NoReturn:
    """400: the element is not what FHIR JSON has there."""
    raise BadRequest(
        f"{path}: {msg}",
        [{"loc": ["body", *path.split(".")[1:]], "msg": msg, "expression": path,
          "code": "structure"}],
    )  # fmt: skip


def obj(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        malformed(path, "must be a JSON object")
    return value


def array(value: Any, path: str) -> list[Any]:
    if not isinstance(value, list):
        malformed(path, "must be a JSON array")
    return value


def string(value: Any, path: str) -> str:
    if not isinstance(value, str):
        malformed(path, "must be a string")
    return value


def parse_body(raw: bytes) -> dict[str, Any]:
    """The body as a JSON object whose resourceType is Observation, else 400."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise BadRequest(
            "the body is not valid JSON",
            [{"loc": ["body"], "msg": "not valid JSON", "code": "structure"}],
        ) from None
    if not isinstance(body, dict) or "resourceType" not in body:
        raise BadRequest(
            "the body must be a FHIR resource (a JSON object with a resourceType)",
            [{"loc": ["body"], "msg": "not a FHIR resource", "code": "structure"}],
        )
    if body["resourceType"] != "Observation":
        malformed("Observation.resourceType", f"expected Observation, got {body['resourceType']!r}")
    unknown = sorted(k for k in body if k not in ELEMENTS and not k.startswith("_"))
    if unknown:
        malformed(f"Observation.{unknown[0]}", "is not an element of an R4 Observation")
    return body


def number(value: Any, path: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        malformed(path, "must be a number")
    return value
