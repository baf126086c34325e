"""Domain errors and the one problem+json (RFC 9457) rendering of every error."""

from __future__ import annotations

import logging
from typing import Any

import orjson
import sqlalchemy.exc
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.routing import Match

log = logging.getLogger("vigil.errors")

PROBLEM_JSON = "application/problem+json"


class AppError(Exception):
    """An error a client can act on: carries its HTTP status and problem slug."""

    status = 400
    slug = "bad-request"
    title = "Bad request"
    headers: dict[str, str] | None = None

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra


class NotFound(AppError):
    status, slug, title = 404, "not-found", "Not found"


class Conflict(AppError):
    status, slug, title = 409, "conflict", "Conflict"


class InvalidTransition(AppError):
    status, slug, title = 409, "invalid-transition", "Invalid transition"


class ScreeningReviewRequired(AppError):
    status, slug, title = 409, "screening-review-required", "Screening review required"

    def __init__(self, detail: str, reasons: list[str]) -> None:
        super().__init__(detail, reasons=reasons)


class DischargeBlocked(AppError):
    status, slug, title = 409, "discharge-blocked", "Discharge blocked"

    def __init__(self, detail: str, blockers: list[str]) -> None:
        super().__init__(detail, blockers=blockers)


class IdempotencyMismatch(AppError):
    status, slug, title = 422, "idempotency-mismatch", "Idempotency key reused with another body"


class ValidationFailed(AppError):
    status, slug, title = 422, "validation", "Validation failed"

    def __init__(self, detail: str, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(detail, errors=errors or [])


class Unauthorized(AppError):
    status, slug, title = 401, "unauthorized", "Unauthorized"


class Forbidden(AppError):
    status, slug, title = 403, "forbidden", "Forbidden"


class RetryLater(AppError):
    """An error the client may retry after ``retry_after`` seconds (the Retry-After header)."""

    def __init__(self, detail: str, retry_after: int) -> None:
        super().__init__(detail)
        self.headers = {"Retry-After": str(retry_after)}


class TooManyRequests(RetryLater):
    status, slug, title = 429, "rate-limited", "Too many requests"


class ServiceUnavailable(RetryLater):
    status, slug, title = 503, "unavailable", "Service unavailable"

    def __init__(self, detail: str, retry_after: int = 5) -> None:
        super().__init__(detail, retry_after)


class PayloadTooLarge(AppError):
    status, slug, title = 413, "payload-too-large", "Payload too large"


class BadRequest(AppError):
    """A body that cannot be read as what the route takes (FHIR: not a parseable resource)."""

    status, slug, title = 400, "bad-request", "Bad request"

    def __init__(self, detail: str, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(detail, errors=errors or [])


class NotAcceptable(AppError):
    status, slug, title = 406, "not-acceptable", "Not acceptable"


class PreconditionFailed(AppError):
    status, slug, title = 412, "precondition-failed", "Precondition failed"


class UnsupportedMediaType(AppError):
    status, slug, title = 415, "unsupported-media-type", "Unsupported media type"


class Problem(BaseModel):
    """RFC 9457 problem details."""

    type: str
    title: str
    status: int
    detail: str
    instance: str
    errors: list[dict[str, Any]] | None = None
    reasons: list[str] | None = None
    blockers: list[str] | None = None


_HTTP_SLUGS = {
    401: ("unauthorized", "Unauthorized"),
    403: ("forbidden", "Forbidden"),
    404: ("not-found", "Not found"),
    405: ("method-not-allowed", "Method not allowed"),
    406: ("not-acceptable", "Not acceptable"),
    413: ("payload-too-large", "Payload too large"),
    415: ("unsupported-media-type", "Unsupported media type"),
}


def problem_response(
    request: Request, status: int, slug: str, title: str, detail: str, **extra: Any
) -> Response:
    body: dict[str, Any] = {
        "type": f"/problems/{slug}",
        "title": title,
        "status": status,
        "detail": detail,
        "instance": request.url.path,
    }
    body.update({k: v for k, v in extra.items() if v is not None})
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    if request.url.path.startswith("/fhir/"):  # FHIR clients get an OperationOutcome
        outcome = {
            "resourceType": "OperationOutcome",
            "issue": fhir_issues(status, detail, extra.get("errors")),
        }
        return Response(
            orjson.dumps(outcome), status_code=status, media_type=FHIR_JSON, headers=headers
        )
    return Response(
        orjson.dumps(body), status_code=status, media_type=PROBLEM_JSON, headers=headers
    )


FHIR_JSON = "application/fhir+json"
_FHIR_CODES = {400: "structure", 401: "login", 403: "forbidden", 404: "not-found",
               405: "not-supported", 406: "not-supported", 409: "conflict",
               412: "multiple-matches", 413: "too-long", 415: "not-supported", 422: "invalid",
               500: "exception"}  # fmt: skip


def fhir_issues(
    status: int, detail: str, errors: list[dict[str, Any]] | None = None
) -> list[dict[str, Any]]:
    """OperationOutcome issues: one per entry of ``errors`` (each naming its element where it
    knows it as a FHIRPath ``expression``, and its own issue ``code``), else one for ``detail``."""
    default = _FHIR_CODES.get(status, "processing")
    if not errors:
        return [{"severity": "error", "code": default, "diagnostics": detail}]
    issues = []
    for error in errors:
        issue: dict[str, Any] = {"severity": "error", "code": error.get("code", default)}
        if error.get("expression"):
            issue["diagnostics"] = f"{error['expression']}: {error.get('msg', detail)}"
            issue["expression"] = [error["expression"]]
        else:
            where = ".".join(map(str, error.get("loc", ())))
            issue["diagnostics"] = f"{where}: {error.get('msg', detail)}" if where else detail
        issues.append(issue)
    return issues


def problem_for(request: Request, exc: AppError) -> Response:
    response = problem_response(request, exc.status, exc.slug, exc.title, exc.detail, **exc.extra)
    if exc.headers:
        response.headers.update(exc.headers)
    return response


def _jsonable_loc(loc: Any) -> list[str | int]:
    return [p if isinstance(p, int) else str(p) for p in loc]


def validation_errors(errors: Any) -> list[dict[str, Any]]:
    return [{"loc": _jsonable_loc(e.get("loc", ())), "msg": str(e.get("msg", ""))} for e in errors]


async def _app_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, AppError)
    if exc.status in (401, 403):
        from app.audit.service import record_denial  # the audit trail needs the models

        record_denial(request, exc.status)
    return problem_for(request, exc)


async def _database_unavailable(request: Request, exc: Exception) -> Response:
    # Unreachable, or locked past the busy timeout: the client may retry; the log gets the
    # kind of failure only (the driver's message may quote the statement and its values).
    log.error(
        "database unavailable on %s %s: %s",
        request.method,
        getattr(request.scope.get("route"), "path", "?"),
        type(getattr(exc, "orig", None) or exc).__name__,
    )
    return problem_for(
        request, ServiceUnavailable("The database is unavailable; retry in a few seconds.")
    )


def _without_union_tags(errors: Any, body: Any) -> list[Any]:
    """Errors whose ``loc`` names body fields only.

    Pydantic puts the tag of a discriminated union in the path (``["body", "nausea",
    "severity"]`` for an observation of kind nausea); the client sent no field called that, so
    a segment after "body" that is not a key of the body but equals its ``kind`` is dropped. A
    missing or unknown tag is an error of the tag's field (``["body", "kind"]``).
    """
    tag = body.get("kind") if isinstance(body, dict) else None
    kept = []
    for error in errors:
        loc = tuple(error.get("loc", ()))
        if error.get("type") in ("union_tag_invalid", "union_tag_not_found"):
            field = str((error.get("ctx") or {}).get("discriminator", "")).strip("'\"")
            error = {**error, "loc": (*loc, field) if field else loc}
        elif isinstance(tag, str) and len(loc) > 2 and loc[:2] == ("body", tag) and tag not in body:
            error = {**error, "loc": (loc[0], *loc[2:])}
        kept.append(error)
    return kept


async def _request_validation(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = validation_errors(_without_union_tags(exc.errors(), exc.body))
    detail = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors[:5])
    return problem_response(request, 422, "validation", "Validation failed", detail, errors=errors)


def allowed_methods(request: Request) -> str:
    """Every method the request's path serves, for a 405's ``Allow`` (RFC 9110: the full list).

    The router raises 405 from the first route whose path matches and names that route's methods
    only, though the path's other methods (GET and POST of /v1/sessions) are other routes.
    """
    methods: set[str] = set()
    for route in request.app.router.routes:
        served = getattr(route, "methods", None)
        if served and route.matches(request.scope)[0] is not Match.NONE:
            methods |= served
    return ", ".join(sorted(methods))


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    slug, title = _HTTP_SLUGS.get(exc.status_code, ("http-error", "HTTP error"))
    detail = exc.detail if isinstance(exc.detail, str) else title
    response = problem_response(request, exc.status_code, slug, title, detail)
    if exc.headers:
        response.headers.update(exc.headers)
    if exc.status_code == 405 and (allow := allowed_methods(request)):
        response.headers["Allow"] = allow
    return response


async def _unexpected(request: Request, exc: Exception) -> Response:
    # The traceback goes to the server log (no request data in it); the client sees no internals.
    log.error(
        "unhandled error on %s %s",
        request.method,
        request.scope.get("route_path", "?"),
        exc_info=exc,
    )
    return problem_response(
        request, 500, "internal", "Internal server error", "An unexpected error occurred."
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(AppError, _app_error)
    for unavailable in (sqlalchemy.exc.OperationalError, sqlalchemy.exc.TimeoutError):
        app.add_exception_handler(unavailable, _database_unavailable)
    app.add_exception_handler(RequestValidationError, _request_validation)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)


def error_responses(*errors: type[AppError]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` entries for the problems a route may answer."""
    out: dict[int | str, dict[str, Any]] = {}
    for err in errors:
        entry = out.setdefault(err.status, {"model": Problem, "description": ""})
        entry["description"] = ", ".join(filter(None, [entry["description"], err.slug]))
    return out


def _problem_schema(response: dict[str, Any], problem_ref: dict[str, str]) -> dict[str, Any]:
    """A route's own Problem subclass (extension members documented), else the Problem."""
    for media in response["content"].values():
        ref = media.get("schema", {}).get("$ref", "")
        if ref and ref != problem_ref["$ref"] and not ref.endswith("/HTTPValidationError"):
            return dict(media["schema"])
    return problem_ref


def problem_openapi(schema: dict[str, Any]) -> dict[str, Any]:
    """Document every error response as application/problem+json with the Problem schema."""
    problem_ref = {"$ref": "#/components/schemas/Problem"}
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components.setdefault(
        "Problem", Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    )
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)
    outcome = {
        "type": "object",
        "required": ["resourceType", "issue"],
        "properties": {"resourceType": {"const": "OperationOutcome"}, "issue": {"type": "array"}},
    }
    retry_after = {"Retry-After": {"description": "Seconds to wait", "schema": {"type": "integer"}}}
    for path, path_item in schema.get("paths", {}).items():
        is_fhir = path.startswith("/fhir/")
        for operation in path_item.values():
            if "401" in operation.get("responses", {}):  # every route that takes a key
                for status, slug in (("429", "rate-limited"), ("503", "unavailable")):
                    operation["responses"].setdefault(
                        status, {"description": slug, "headers": retry_after, "content": {}}
                    )
            for status, response in operation.get("responses", {}).items():
                if status.isdigit() and int(status) >= 400 and "content" in response:
                    response["content"] = (
                        {FHIR_JSON: {"schema": outcome}}
                        if is_fhir
                        else {PROBLEM_JSON: {"schema": _problem_schema(response, problem_ref)}}
                    )
                    if status == "422" and response.get("description") == "Validation Error":
                        response["description"] = "validation"
    return schema
