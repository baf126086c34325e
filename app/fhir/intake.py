"""A vital-signs Observation posted by an EHR or a device gateway, read as a v1 reading.

Pure: a FHIR resource in, a ``ReadingCreate`` (with its encounter, subject and identifiers) out,
or an error naming the element at fault. 400: not an Observation at all; 422: an Observation
Vigil cannot take (codes, units, missing elements, values outside PROTOCOL.md's ranges).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, NoReturn

from pydantic import TypeAdapter
from pydantic import ValidationError as PydanticError

from app.errors import ValidationFailed
from app.fhir.codes import (
    CATEGORY,
    DIASTOLIC,
    INPUT_CODES,
    INPUT_UNITS,
    LOINC,
    PANEL_CODING,
    SYSTOLIC,
    UCUM,
)
from app.fhir.params import MAX_IDENTIFIER
from app.fhir.shape import array, malformed, number, obj, string, unprocessable
from app.readings.schemas import TEMPERATURE_RANGE, ReadingCreate
from app.schemas import Timestamp

# A reading is final once stored: a preliminary value, which may yet change, is not taken.
STATUSES = ("final", "amended", "corrected")
_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
_TIMESTAMP: TypeAdapter[datetime] = TypeAdapter(Timestamp)


@dataclass(frozen=True)
class Intake:
    encounter: str  # the id of Encounter/<id>, checked against the clinic's sessions later
    subject: str | None
    reading: ReadingCreate
    identifiers: tuple[tuple[str, str], ...]  # (system or "", value)


def read_observation(body: dict[str, Any]) -> Intake:
    """A parsed Observation (see ``shape.parse_body``) as the reading it stands for."""
    _refuse_modifiers(body)
    status = body.get("status")
    if status is None:
        unprocessable("Observation.status", "is required", "required")
    if status not in STATUSES:
        unprocessable("Observation.status", f"must be one of {', '.join(STATUSES)}", "value")
    _check_category(body)
    field = _field_of(body)
    encounter = _reference(body.get("encounter"), "Encounter", "Observation.encounter")
    if encounter is None:
        unprocessable("Observation.encounter", "is required: Encounter/<session id>", "required")
    subject = _reference(body.get("subject"), "Patient", "Observation.subject")
    measured_at = _effective(body)
    values = _blood_pressure(body) if field == "systolic" else {field: _value(body, field)}
    device_id = _device(body.get("device"))
    fields: dict[str, Any] = {"measured_at": measured_at, **values}
    if device_id is not None:
        fields.update(source="device", device_id=device_id)
    try:
        reading = ReadingCreate.model_validate(fields)
    except PydanticError as exc:
        _out_of_range(exc, field)
    return Intake(encounter, subject, reading, _identifiers(body.get("identifier")))


def _refuse_modifiers(body: dict[str, Any]) -> None:
    """FHIR forbids processing a resource whose modifiers the receiver does not understand: a
    modifier extension anywhere it may stand, or rules of its own (``implicitRules``)."""
    if body.get("implicitRules") is not None:
        unprocessable(
            "Observation.implicitRules",
            "no rules other than FHIR's are understood",
            "not-supported",
        )
    places = [("Observation", body)]
    for index, component in enumerate(body.get("component") or []):
        places.append((f"Observation.component[{index}]", component))
    for path, element in list(places):
        for index, range_ in enumerate(element.get("referenceRange") or []):
            places.append((f"{path}.referenceRange[{index}]", range_))
    for path, element in places:
        if element.get("modifierExtension"):
            unprocessable(
                f"{path}.modifierExtension", "no modifier extension is understood", "not-supported"
            )


def _check_category(body: dict[str, Any]) -> None:
    if "category" not in body:
        return
    codes = {
        coding.get("code")
        for i, concept in enumerate(array(body["category"], "Observation.category"))
        for coding in array(obj(concept, f"Observation.category[{i}]").get("coding", []),
                             f"Observation.category[{i}].coding")
        if isinstance(coding, dict) and coding.get("system") == CATEGORY
    }  # fmt: skip
    if codes and "vital-signs" not in codes:
        unprocessable("Observation.category", "a vital sign's category is vital-signs", "value")


def _loinc_codes(concept: Any, path: str) -> list[str]:
    codings = array(obj(concept, path).get("coding", []), f"{path}.coding")
    return [
        string(obj(c, f"{path}.coding[{i}]").get("code"), f"{path}.coding[{i}].code")
        for i, c in enumerate(codings)
        if isinstance(c, dict) and c.get("system") == LOINC
    ]


def _field_of(body: dict[str, Any]) -> str:
    if "code" not in body:
        unprocessable("Observation.code", "is required", "required")
    loinc = _loinc_codes(body["code"], "Observation.code")
    known = {INPUT_CODES[c] for c in loinc if c in INPUT_CODES}
    accepted = ", ".join(sorted(set(INPUT_CODES)))
    if not loinc:
        unprocessable(
            "Observation.code", f"needs a LOINC coding ({LOINC}) of {accepted}", "code-invalid"
        )
    if not known:
        if {SYSTOLIC[1], DIASTOLIC[1]} & set(loinc):
            unprocessable("Observation.code", "systolic and diastolic come together, as the 85354-9 "
                           "blood pressure panel with both components", "code-invalid")  # fmt: skip
        if PANEL_CODING[1] in loinc:
            # Its members would be references to Observations posted before, each a reading of
            # its own: the panel could not become one reading, so Vigil makes it, never takes it.
            unprocessable("Observation.code", f"unknown LOINC code {PANEL_CODING[1]}: the vital "
                          "signs panel is made from each reading's vital signs; post each one, "
                          f"coded {accepted}", "code-invalid")  # fmt: skip
        unprocessable(
            "Observation.code",
            f"unknown LOINC code {loinc[0]}: expected one of {accepted}",
            "code-invalid",
        )
    if len(known) > 1:
        unprocessable("Observation.code", "codes more than one vital sign", "code-invalid")
    return known.pop()


def _reference(value: Any, kind: str, path: str) -> str | None:
    if value is None:
        return None
    text = string(obj(value, path).get("reference"), f"{path}.reference")
    if f"{kind}/" not in text:
        unprocessable(f"{path}.reference", f"must be {kind}/<id>")
    ident = text.rsplit(f"{kind}/", 1)[1]
    if not ident or "/" in ident:
        unprocessable(f"{path}.reference", f"must be {kind}/<id>")
    return ident


def _effective(body: dict[str, Any]) -> datetime:
    name = next((n for n in ("effectiveDateTime", "effectiveInstant") if n in body), None)
    if name is None:
        other = next((n for n in body if n.startswith("effective")), None)
        if other is not None:
            unprocessable(
                f"Observation.{other}",
                "give effectiveDateTime: the moment measured",
                "not-supported",
            )
        unprocessable("Observation.effectiveDateTime", "is required", "required")
    path = f"Observation.{name}"
    text = string(body[name], path)
    if not _DATE_TIME.match(text):
        unprocessable(path, "must be a date and time to the second with a timezone offset "
                       "(e.g. 2026-11-21T14:05:00Z)", "value")  # fmt: skip
    try:
        return _TIMESTAMP.validate_python(text)
    except PydanticError:
        unprocessable(path, "is not a valid date and time", "value")


def _quantity(quantity: Any, field: str, path: str) -> float | int:
    quantity = obj(quantity, path)
    if "comparator" in quantity:
        unprocessable(f"{path}.comparator", "a measurement cannot be a bound", "not-supported")
    if "value" not in quantity:
        unprocessable(f"{path}.value", "is required", "required")
    value = number(quantity["value"], f"{path}.value")
    system = quantity.get("system", UCUM)
    unit = quantity.get("code", quantity.get("unit"))
    allowed = INPUT_UNITS[field]
    if system != UCUM or unit not in allowed:
        unprocessable(
            f"{path}.code", f"the unit must be UCUM {' or '.join(allowed)}", "code-invalid"
        )
    if field == "temperature_c":
        return _celsius(value, fahrenheit=unit == "[degF]")
    if not float(value).is_integer():
        unprocessable(f"{path}.value", "must be a whole number", "value")
    return int(value)


def _celsius(value: float, *, fahrenheit: bool) -> float:
    """Vigil keeps one decimal: a converted (or more precise) temperature is rounded half up,
    in decimal so that 96.71 °F (35.95 °C) gives 36.0. A value outside PROTOCOL.md's range is
    left unrounded for the range check to refuse, never rounded onto a limit."""
    if not math.isfinite(value) or abs(value) >= 1e6:
        return float(value)  # far out of range either way
    celsius = Decimal(repr(float(value)))
    if fahrenheit:
        celsius = (celsius - 32) * 5 / 9
    low, high = TEMPERATURE_RANGE
    if not Decimal(repr(low)) <= celsius <= Decimal(repr(high)):
        return float(celsius)
    return float(celsius.quantize(Decimal("0.1"), ROUND_HALF_UP))


def _value(body: dict[str, Any], field: str) -> float | int:
    if "component" in body:
        unprocessable(
            "Observation.component", "only the blood pressure panel has components", "structure"
        )
    if "valueQuantity" not in body:
        other = next((n for n in body if n.startswith("value") or n == "dataAbsentReason"), None)
        if other is not None:
            unprocessable(
                f"Observation.{other}", "a vital sign needs a valueQuantity", "not-supported"
            )
        unprocessable("Observation.valueQuantity", "is required", "required")
    return _quantity(body["valueQuantity"], field, "Observation.valueQuantity")


def _blood_pressure(body: dict[str, Any]) -> dict[str, float | int]:
    if any(n.startswith("value") for n in body):
        unprocessable(
            "Observation.value[x]",
            "the blood pressure panel's values are its components",
            "structure",
        )
    if "component" not in body:
        unprocessable("Observation.component", "the blood pressure panel needs a systolic (8480-6) "
                       "and a diastolic (8462-4) component", "required")  # fmt: skip
    found: dict[str, float | int] = {}
    for i, component in enumerate(array(body["component"], "Observation.component")):
        path = f"Observation.component[{i}]"
        codes = set(_loinc_codes(obj(component, path).get("code"), f"{path}.code"))
        field = (
            "systolic" if SYSTOLIC[1] in codes else "diastolic" if DIASTOLIC[1] in codes else None
        )
        if field is None:
            unprocessable(
                f"{path}.code",
                "expected LOINC 8480-6 (systolic) or 8462-4 (diastolic)",
                "code-invalid",
            )
        if field in found:
            unprocessable(f"{path}.code", f"{field} is given twice", "structure")
        if "valueQuantity" not in component:
            unprocessable(f"{path}.valueQuantity", "is required", "required")
        found[field] = _quantity(component["valueQuantity"], field, f"{path}.valueQuantity")
    for field, code in (("systolic", SYSTOLIC[1]), ("diastolic", DIASTOLIC[1])):
        if field not in found:
            unprocessable(
                "Observation.component", f"the {field} component ({code}) is missing", "required"
            )
    return found


def _device(device: Any) -> str | None:
    if device is None:
        return None
    device = obj(device, "Observation.device")
    identifier = device.get("identifier")
    if isinstance(identifier, dict) and isinstance(identifier.get("value"), str):
        return str(identifier["value"])
    for name in ("display", "reference"):
        if isinstance(device.get(name), str):
            return str(device[name])
    unprocessable("Observation.device", "name the device by identifier, display or reference")


def _identifiers(value: Any) -> tuple[tuple[str, str], ...]:
    if value is None:
        return ()
    found: list[tuple[str, str]] = []
    for i, identifier in enumerate(array(value, "Observation.identifier")):
        path = f"Observation.identifier[{i}]"
        identifier = obj(identifier, path)
        text = identifier.get("value")
        system = identifier.get("system", "")
        if not isinstance(text, str) or not text:
            unprocessable(f"{path}.value", "is required", "required")
        if not isinstance(system, str):
            malformed(f"{path}.system", "must be a string")
        if len(text) > MAX_IDENTIFIER or len(system) > MAX_IDENTIFIER or "\x00" in text + system:
            unprocessable(
                path, f"system and value are at most {MAX_IDENTIFIER} characters", "too-long"
            )
        if (system, text) not in found:
            found.append((system, text))
    return tuple(found)


_EXPRESSIONS = {"heart_rate": "Observation.valueQuantity.value", "spo2": "Observation.valueQuantity.value",
                "respiratory_rate": "Observation.valueQuantity.value",
                "temperature_c": "Observation.valueQuantity.value",
                "systolic": "Observation.component.where(code.coding.code='8480-6').valueQuantity.value",
                "diastolic": "Observation.component.where(code.coding.code='8462-4').valueQuantity.value",
                "device_id": "Observation.device", "measured_at": "Observation.effectiveDateTime"}  # fmt: skip


def _out_of_range(exc: PydanticError, field: str) -> NoReturn:
    """PROTOCOL.md's plausible ranges (and diastolic below systolic), said of the FHIR element."""
    errors = []
    for error in exc.errors():
        name = str(error["loc"][0]) if error["loc"] else field
        msg = error["msg"].removeprefix("Value error, ")
        if "input" in error and not isinstance(error["input"], dict):
            msg = f"{name} {error['input']}: {msg} (PROTOCOL.md, plausible ranges)"
        errors.append({"loc": ["body", name], "msg": msg, "code": "value",
                       "expression": _EXPRESSIONS.get(name, "Observation")})  # fmt: skip
    raise ValidationFailed("; ".join(f"{e['expression']}: {e['msg']}" for e in errors), errors)
