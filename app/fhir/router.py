import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from app.auth.deps import ClinicalReader
from app.db import CommittingRoute, SessionDep, utcnow
from app.errors import (
    FHIR_JSON,
    Forbidden,
    NotFound,
    Unauthorized,
    ValidationFailed,
    error_responses,
)
from app.fhir import mapping, service

router = APIRouter(prefix="/fhir/R4", tags=["fhir"], route_class=CommittingRoute)
_RESOURCE: dict[int | str, dict[str, Any]] = {
    200: {"content": {FHIR_JSON: {"schema": {"type": "object"}}}, "description": "FHIR resource"}
}


def fhir(resource: dict[str, Any]) -> Response:
    import orjson

    return Response(orjson.dumps(resource), media_type=FHIR_JSON)


@router.get(
    "/metadata",
    summary="FHIR CapabilityStatement (no key needed)",
    response_class=Response,
    responses=_RESOURCE,
)
async def metadata() -> Response:
    return fhir(mapping.capability_statement(utcnow()))


@router.get(
    "/Patient/{patient_id}",
    summary="A patient as a FHIR Patient",
    response_class=Response,
    responses={**_RESOURCE, **error_responses(Unauthorized, Forbidden, NotFound)},
)
async def read_patient(
    patient_id: uuid.UUID, db: SessionDep, principal: ClinicalReader
) -> Response:
    return fhir(service.read_patient(db, principal, patient_id))


@router.get(
    "/Encounter/{session_id}",
    summary="An infusion session as a FHIR Encounter",
    response_class=Response,
    responses={**_RESOURCE, **error_responses(Unauthorized, Forbidden, NotFound)},
)
async def read_encounter(
    session_id: uuid.UUID, db: SessionDep, principal: ClinicalReader
) -> Response:
    return fhir(service.read_encounter(db, principal, session_id))


@router.get(
    "/Observation",
    summary="Search vital-signs Observations by encounter or patient (searchset Bundle)",
    response_class=Response,
    responses={**_RESOURCE, **error_responses(Unauthorized, Forbidden, NotFound, ValidationFailed)},
)
async def search_observations(
    request: Request,
    db: SessionDep,
    principal: ClinicalReader,
    encounter: Annotated[str | None, Query(max_length=200, pattern=r"^[^\x00]*$")] = None,
    patient: Annotated[str | None, Query(max_length=200, pattern=r"^[^\x00]*$")] = None,
    count: Annotated[int, Query(alias="_count", ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(alias="_cursor", max_length=512)] = None,
) -> Response:
    base = str(request.base_url).rstrip("/") + "/fhir/R4"
    return fhir(
        service.search_observations(
            db,
            principal,
            encounter=encounter,
            patient=patient,
            count=count,
            cursor=cursor,
            self_url=str(request.url),
            base=base,
        )
    )
