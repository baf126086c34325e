"""The shape of a posted FHIR resource: JSON of the right types (else 400), and the errors
that name the element at fault as a FHIRPath expression."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any, NamedTuple, NoReturn

import orjson

from app.errors import BadRequest, ValidationFailed

# The R4 elements of an Observation and of every datatype inside it, as the element's type:
# "Type" for 0..1, "Type*" for 0..*, and "name[x]": "A|B" for a choice (valueQuantity, ...).
# Lower-case types are primitives (see _PRIMITIVES); "Resource" is a contained resource, which
# Vigil never reads and only checks to be one. SimpleQuantity (in Range, SampledData and
# referenceRange) is a Quantity here, as in FHIR JSON.
_VALUE = (
    "Quantity|CodeableConcept|string|boolean|integer|Range|Ratio|SampledData|time|dateTime|Period"
)
_ANY = (  # an extension's value[x]: every R4 datatype
    "base64Binary|boolean|canonical|code|date|dateTime|decimal|id|instant|integer|markdown|oid|"
    "positiveInt|string|time|unsignedInt|uri|url|uuid|Address|Age|Annotation|Attachment|"
    "CodeableConcept|Coding|ContactPoint|Count|Distance|Duration|HumanName|Identifier|Money|"
    "Period|Quantity|Range|Ratio|Reference|SampledData|Signature|Timing|ContactDetail|"
    "Contributor|DataRequirement|Expression|ParameterDefinition|RelatedArtifact|"
    "TriggerDefinition|UsageContext|Dosage|Meta"
)
_ELEMENT = {"id": "string", "extension": "Extension*"}
_BACKBONE = {**_ELEMENT, "modifierExtension": "Extension*"}
_QUANTITY = {**_ELEMENT, "value": "decimal", "comparator": "code", "unit": "string",
             "system": "uri", "code": "code"}  # fmt: skip
_REFERENCE_RANGE = {**_BACKBONE, "low": "Quantity", "high": "Quantity", "type": "CodeableConcept",
                    "appliesTo": "CodeableConcept*", "age": "Range", "text": "string"}  # fmt: skip
DATATYPES: dict[str, dict[str, str]] = {
    "Observation": {
        "resourceType": "code", "id": "id", "meta": "Meta", "implicitRules": "uri",
        "language": "code", "text": "Narrative", "contained": "Resource*",
        "extension": "Extension*", "modifierExtension": "Extension*", "identifier": "Identifier*",
        "basedOn": "Reference*", "partOf": "Reference*", "status": "code",
        "category": "CodeableConcept*", "code": "CodeableConcept", "subject": "Reference",
        "focus": "Reference*", "encounter": "Reference",
        "effective[x]": "dateTime|Period|Timing|instant", "issued": "instant",
        "performer": "Reference*", "value[x]": _VALUE, "dataAbsentReason": "CodeableConcept",
        "interpretation": "CodeableConcept*", "note": "Annotation*",
        "bodySite": "CodeableConcept", "method": "CodeableConcept", "specimen": "Reference",
        "device": "Reference", "referenceRange": "Observation.referenceRange*",
        "hasMember": "Reference*", "derivedFrom": "Reference*",
        "component": "Observation.component*",
    },
    "Observation.referenceRange": _REFERENCE_RANGE,
    "Observation.component": {
        **_BACKBONE, "code": "CodeableConcept", "value[x]": _VALUE,
        "dataAbsentReason": "CodeableConcept", "interpretation": "CodeableConcept*",
        "referenceRange": "Observation.referenceRange*",
    },
    "Element": _ELEMENT,  # the extensions of a primitive, under "_name"
    "Extension": {**_ELEMENT, "url": "uri", "value[x]": _ANY},
    "Meta": {**_ELEMENT, "versionId": "id", "lastUpdated": "instant", "source": "uri",
             "profile": "canonical*", "security": "Coding*", "tag": "Coding*"},
    "Narrative": {**_ELEMENT, "status": "code", "div": "xhtml"},
    "Identifier": {**_ELEMENT, "use": "code", "type": "CodeableConcept", "system": "uri",
                   "value": "string", "period": "Period", "assigner": "Reference"},
    "Reference": {**_ELEMENT, "reference": "string", "type": "uri", "identifier": "Identifier",
                  "display": "string"},
    "CodeableConcept": {**_ELEMENT, "coding": "Coding*", "text": "string"},
    "Coding": {**_ELEMENT, "system": "uri", "version": "string", "code": "code",
               "display": "string", "userSelected": "boolean"},
    "Quantity": _QUANTITY, "Age": _QUANTITY, "Count": _QUANTITY, "Distance": _QUANTITY,
    "Duration": _QUANTITY,
    "Money": {**_ELEMENT, "value": "decimal", "currency": "code"},
    "Period": {**_ELEMENT, "start": "dateTime", "end": "dateTime"},
    "Range": {**_ELEMENT, "low": "Quantity", "high": "Quantity"},
    "Ratio": {**_ELEMENT, "numerator": "Quantity", "denominator": "Quantity"},
    "SampledData": {**_ELEMENT, "origin": "Quantity", "period": "decimal", "factor": "decimal",
                    "lowerLimit": "decimal", "upperLimit": "decimal",
                    "dimensions": "positiveInt", "data": "string"},
    "Annotation": {**_ELEMENT, "author[x]": "Reference|string", "time": "dateTime",
                   "text": "markdown"},
    "Timing": {**_BACKBONE, "event": "dateTime*", "repeat": "Timing.repeat",
               "code": "CodeableConcept"},
    "Timing.repeat": {
        **_ELEMENT, "bounds[x]": "Duration|Range|Period", "count": "positiveInt",
        "countMax": "positiveInt", "duration": "decimal", "durationMax": "decimal",
        "durationUnit": "code", "frequency": "positiveInt", "frequencyMax": "positiveInt",
        "period": "decimal", "periodMax": "decimal", "periodUnit": "code", "dayOfWeek": "code*",
        "timeOfDay": "time*", "when": "code*", "offset": "unsignedInt",
    },
    "Address": {**_ELEMENT, "use": "code", "type": "code", "text": "string", "line": "string*",
                "city": "string", "district": "string", "state": "string",
                "postalCode": "string", "country": "string", "period": "Period"},
    "Attachment": {**_ELEMENT, "contentType": "code", "language": "code", "data": "base64Binary",
                   "url": "url", "size": "unsignedInt", "hash": "base64Binary",
                   "title": "string", "creation": "dateTime"},
    "ContactPoint": {**_ELEMENT, "system": "code", "value": "string", "use": "code",
                     "rank": "positiveInt", "period": "Period"},
    "HumanName": {**_ELEMENT, "use": "code", "text": "string", "family": "string",
                  "given": "string*", "prefix": "string*", "suffix": "string*",
                  "period": "Period"},
    "Signature": {**_ELEMENT, "type": "Coding*", "when": "instant", "who": "Reference",
                  "onBehalfOf": "Reference", "targetFormat": "code", "sigFormat": "code",
                  "data": "base64Binary"},
}  # fmt: skip
# The rest of _ANY (metadata types and Dosage) only an extension could carry here, and Vigil
# reads no extension: such a value is checked to be a JSON object, not looked into.

# A primitive's JSON type: its test and what the error says.
_JSON: dict[str, tuple[Callable[[Any], bool], str]] = {
    "string": (lambda v: isinstance(v, str), "must be a string"),
    "boolean": (lambda v: isinstance(v, bool), "must be true or false"),
    "number": (lambda v: isinstance(v, int | float) and not isinstance(v, bool),
               "must be a number"),
    "integer": (lambda v: isinstance(v, int) and not isinstance(v, bool),
                "must be an integer"),
}  # fmt: skip
_PRIMITIVES = {
    "decimal": "number", "boolean": "boolean",
    **dict.fromkeys(("integer", "positiveInt", "unsignedInt"), "integer"),
    **dict.fromkeys(("string", "code", "id", "uri", "url", "canonical", "oid", "uuid",
                     "markdown", "base64Binary", "date", "dateTime", "instant", "time", "xhtml"),
                    "string"),
}  # fmt: skip
MAX_ISSUES = 20  # a body of a megabyte of mistakes is answered with the first few


class _Element(NamedTuple):
    type: str
    many: bool  # 0..*: a JSON array
    choice: str | None  # "value[x]" for valueQuantity


def _compile(elements: dict[str, str]) -> dict[str, _Element]:
    """Each element under its JSON name: a choice under each of its names."""
    compiled = {}
    for name, spec in elements.items():
        many = spec.endswith("*")
        for type_ in spec.removesuffix("*").split("|"):
            if name.endswith("[x]"):
                stem = name.removesuffix("[x]")
                compiled[stem + type_[0].upper() + type_[1:]] = _Element(type_, many, name)
            else:
                compiled[name] = _Element(type_, many, None)
    return compiled


_ELEMENTS = {name: _compile(elements) for name, elements in DATATYPES.items()}


def structure_problems(body: dict[str, Any]) -> list[dict[str, Any]]:
    """What R4 does not allow in the Observation ``body``: elements its datatype does not have,
    values not of their JSON type, a second choice of an [x] element (the first MAX_ISSUES)."""
    problems: list[dict[str, Any]] = []
    pending: deque[tuple[dict[str, Any], str, str]] = deque([(body, "Observation", "Observation")])
    while pending and len(problems) < MAX_ISSUES:
        value, datatype, path = pending.popleft()
        elements = _ELEMENTS[datatype]
        chosen: dict[str, str] = {}  # each [x] element given, as the name it was given by
        for name, item in value.items():
            where, given = f"{path}.{name}", name.removeprefix("_")
            element = elements.get(given)
            # "_status" carries the id and extensions of the primitive "status".
            if element is None or (given != name and element.type not in _PRIMITIVES):
                problems.append(_structure(where, f"is not an element of an R4 {datatype}"))
                continue
            if element.choice is not None and chosen.setdefault(element.choice, given) != given:
                msg = f"a second {element.choice}: {chosen[element.choice]} is given already"
                problems.append(_structure(where, msg))
                continue
            type_ = element.type if given == name else "Element"
            if not element.many:
                _check(item, type_, where, problems, pending)
            elif not isinstance(item, list):
                problems.append(_structure(where, "must be a JSON array"))
            else:
                for i, each in enumerate(item):
                    # null holds a place in a primitive's array paired with its "_name" array
                    if each is not None or not (type_ in _PRIMITIVES or type_ == "Element"):
                        _check(each, type_, f"{where}[{i}]", problems, pending)
    return problems[:MAX_ISSUES]


def _check(
    value: Any,
    type_: str,
    path: str,
    problems: list[dict[str, Any]],
    pending: deque[tuple[dict[str, Any], str, str]],
) -> None:
    """A primitive's JSON type here; a complex value's elements later, from ``pending``."""
    if type_ in _PRIMITIVES:
        test, msg = _JSON[_PRIMITIVES[type_]]
        if not test(value):
            problems.append(_structure(path, msg))
    elif not isinstance(value, dict):
        problems.append(_structure(path, "must be a JSON object"))
    elif type_ == "Resource":
        if not isinstance(value.get("resourceType"), str):
            problems.append(_structure(f"{path}.resourceType", "is required"))
    elif type_ in _ELEMENTS:
        pending.append((value, type_, path))


def _structure(path: str, msg: str) -> dict[str, Any]:
    return {"loc": ["body", *path.split(".")[1:]], "msg": msg, "expression": path,
            "code": "structure"}  # fmt: skip


def unprocessable(path: str, msg: str, code: str = "invalid") -> NoReturn:
    """422: an Observation, but not one Vigil can take; ``code`` is the FHIR issue type."""
    raise ValidationFailed(
        f"{path}: {msg}",
        [{"loc": ["body", *path.split(".")[1:]], "msg": msg, "expression": path, "code": code}],
    )


def malformed(path: str, msg: str) -> NoReturn:
    """400: the element is not what FHIR JSON has there."""
    raise BadRequest(f"{path}: {msg}", [_structure(path, msg)])


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
    """The body as an R4 Observation in FHIR JSON (see ``structure_problems``), else 400."""
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
    problems = structure_problems(body)
    if problems:
        raise BadRequest("; ".join(f"{p['expression']}: {p['msg']}" for p in problems), problems)
    return body


def number(value: Any, path: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        malformed(path, "must be a number")
    return value
