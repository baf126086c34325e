from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Header, Path, Query, Request
from starlette.responses import Response

from app.alerts.service import refresh_due
from app.auth.deps import ClinicalReader, Principal, require
from app.auth.roles import FHIR_WRITE
from app.db import CommittingRoute, SessionDep, utcnow
from app.errors import (
    FHIR_JSON,
    BadRequest,
    Conflict,
    Forbidden,
    IdempotencyMismatch,
    NotAcceptable,
    NotFound,
    PreconditionFailed,
    Unauthorized,
    UnsupportedMediaType,
    ValidationFailed,
    error_responses,
)
from app.fhir import create, search, service
from app.fhir.capability import capability_statement
from app.idempotency.service import IdempotencyDep

_JSON_FORMATS = frozenset(
    {"json", "application/json", "application/fhir+json", "application/json+fhir"}
)
_ACCEPTED = _JSON_FORMATS | {"*/*", "application/*"}


async def negotiate(
    request: Request,
    format_: Annotated[
        str | None,
        Query(
            alias="_format",
            max_length=100,
            description="json or application/fhir+json (the only format served)",
        ),
    ] = None,
) -> None:
    """JSON only: ``_format`` (it overrides Accept) or an Accept header that takes JSON."""
    if format_ is not None:
        # An unencoded "+" in a query string arrives as a space.
        if format_.strip().lower().replace(" ", "+") not in _JSON_FORMATS:
            raise NotAcceptable("this server speaks FHIR JSON only: _format=json")
        return
    accept = request.headers.get("accept")
    if not accept:
        return
    for media_range in accept.split(","):
        kind, *params = (p.strip().lower() for p in media_range.split(";"))
        if kind in _ACCEPTED and "q=0" not in params and "q=0.0" not in params:
            return
    raise NotAcceptable("this server speaks FHIR JSON only: Accept application/fhir+json")


router = APIRouter(
    prefix="/fhir/R4",
    tags=["fhir"],
    route_class=CommittingRoute,
    dependencies=[Depends(negotiate)],
)
FhirWriter = Annotated[Principal, Depends(require(*FHIR_WRITE))]
_RESOURCE: dict[int | str, dict[str, Any]] = {
    200: {"content": {FHIR_JSON: {"schema": {"type": "object"}}}, "description": "FHIR resource"}
}
_READ = {**_RESOURCE, **error_responses(Unauthorized, Forbidden, NotFound, NotAcceptable)}
# A FHIR id is any string of up to 64 characters: one that names nothing here is a 404, not a 422.
FhirId = Annotated[str, Path(max_length=64, description="The resource's id")]
ObservationId = Annotated[
    str, Path(max_length=64, description="<reading id>-<part>, or a side effect's id")
]


def fhir(resource: dict[str, Any], status_code: int = 200) -> Response:
    return Response(orjson.dumps(resource), status_code=status_code, media_type=FHIR_JSON)


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/") + "/fhir/R4"


@router.get(
    "/metadata",
    summary="FHIR CapabilityStatement (no key needed)",
    response_class=Response,
    responses={**_RESOURCE, **error_responses(NotAcceptable)},
)
async def metadata(request: Request) -> Response:
    return fhir(capability_statement(utcnow(), _base(request)))


@router.get(
    "/Patient/{patient_id}",
    summary="A patient as a FHIR Patient",
    response_class=Response,
    responses=_READ,
)
async def read_patient(patient_id: FhirId, db: SessionDep, principal: ClinicalReader) -> Response:
    return fhir(service.read_patient(db, principal, patient_id))


@router.get(
    "/Encounter/{session_id}",
    summary="An infusion session as a FHIR Encounter",
    response_class=Response,
    responses=_READ,
)
async def read_encounter(session_id: FhirId, db: SessionDep, principal: ClinicalReader) -> Response:
    return fhir(service.read_encounter(db, principal, session_id))


@router.get(
    "/Encounter/{session_id}/$everything",
    summary="Everything of a session: Patient, Encounter, Observations, alerts as DetectedIssue",
    response_class=Response,
    responses=_READ,
)
async def encounter_everything(
    request: Request, session_id: FhirId, db: SessionDep, principal: ClinicalReader
) -> Response:
    refresh_due(db, principal, utcnow())  # time-based alerts are judged whenever alerts are read
    return fhir(
        service.everything(
            db, principal, session_id, base=_base(request), self_url=str(request.url)
        )
    )


@router.get(
    "/Observation",
    summary="Search Observations by encounter, patient or identifier (searchset Bundle, paged by next)",
    response_class=Response,
    responses={**_READ, **error_responses(ValidationFailed)},
)
async def search_observations(
    request: Request,
    db: SessionDep,
    principal: ClinicalReader,
    encounter: Annotated[str | None, Query(max_length=200, pattern=r"^[^\x00]*$")] = None,
    patient: Annotated[str | None, Query(max_length=200, pattern=r"^[^\x00]*$")] = None,
    code: Annotated[
        list[str], Query(description="[system]|[code]; commas: any of; repeated: all of")
    ] = [],  # noqa: B006  (FastAPI copies defaults)
    category: Annotated[list[str], Query(description="vital-signs, exam or survey")] = [],  # noqa: B006
    identifier: Annotated[
        list[str],
        Query(
            description="[system]|value: the Observations carrying that identifier (one given "
            "at create, or Vigil's own); searches the whole clinic when given alone",
        ),
    ] = [],  # noqa: B006
    last_updated: Annotated[
        list[str], Query(alias="_lastUpdated", description="gt|ge|lt|le|eq and an instant")
    ] = [],  # noqa: B006
    count: Annotated[int, Query(alias="_count", ge=0, le=500)] = 50,
    cursor: Annotated[str | None, Query(alias="_cursor", max_length=512)] = None,
) -> Response:
    return fhir(
        search.search_observations(
            db,
            principal,
            encounter=encounter,
            patient=patient,
            codes=code,
            categories=category,
            last_updated=last_updated,
            identifiers=identifier,
            count=count,
            cursor=cursor,
            self_url=str(request.url),
            base=_base(request),
        )
    )


@router.get(
    "/Observation/{observation_id}",
    summary="One Observation: a vital sign of a reading, or a side effect or assessment",
    response_class=Response,
    responses=_READ,
)
async def read_observation(
    observation_id: ObservationId, db: SessionDep, principal: ClinicalReader
) -> Response:
    return fhir(service.read_observation(db, principal, observation_id))


_OBSERVATION_BODY = {
    "required": True,
    "content": {
        FHIR_JSON: {
            "schema": {
                "type": "object",
                "required": ["resourceType", "status", "code", "encounter", "effectiveDateTime"],
                "properties": {"resourceType": {"const": "Observation"}},
                "description": "A vital-signs Observation (PROTOCOL.md, FHIR mapping)",
            }
        }
    },
}


def _where(what: str) -> dict[str, Any]:
    return {"description": f"[base]/Observation/[id] of {what}", "schema": {"type": "string"}}


@router.post(
    "/Observation",
    status_code=201,
    summary="Record a vital-signs Observation as a reading of its Encounter (If-None-Exist)",
    response_class=Response,
    openapi_extra={"requestBody": _OBSERVATION_BODY},
    responses={
        201: {
            "content": {FHIR_JSON: {"schema": {"type": "object"}}},
            "description": "Created",
            "headers": {"Location": _where("the new Observation")},
        },
        200: {
            "content": {FHIR_JSON: {"schema": {"type": "object"}}},
            "description": "If-None-Exist found it: the existing Observation, nothing stored",
            "headers": {"Content-Location": _where("the existing Observation")},
        },
        **error_responses(
            BadRequest,
            Unauthorized,
            Forbidden,
            NotFound,
            NotAcceptable,
            Conflict,
            PreconditionFailed,
            UnsupportedMediaType,
            ValidationFailed,
            IdempotencyMismatch,
        ),
    },
)
async def create_observation(
    request: Request,
    db: SessionDep,
    principal: FhirWriter,
    idem: IdempotencyDep,
    if_none_exist: Annotated[
        str | None,
        Header(max_length=1000, description="identifier=<system>|<value>: create only if new"),
    ] = None,
) -> Response:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type and content_type not in _JSON_FORMATS:
        raise UnsupportedMediaType("send the Observation as application/fhir+json")
    raw = await request.body()

    def produce() -> tuple[int, bytes]:
        status_code, resource = create.create_observation(db, principal, raw, if_none_exist)
        return status_code, orjson.dumps(resource)

    base = _base(request)
    return idem.run_rendered(produce, lambda status_code, body: _created(status_code, body, base))


def _created(status_code: int, body: bytes, base: str) -> Response:
    """The new resource and its Location ([base]/Observation/[id], absolute as FHIR's create
    interaction gives it); a match of If-None-Exist (200) says where it is."""
    location = f"{base}/Observation/{orjson.loads(body)['id']}"
    header = "Location" if status_code == 201 else "Content-Location"
    return Response(body, status_code=status_code, media_type=FHIR_JSON, headers={header: location})
