"""Plain ASGI middleware (cheaper than BaseHTTPMiddleware on the hot path)."""

from __future__ import annotations

import logging
import re
import time
import uuid

import anyio
import orjson
from prometheus_client import Counter, Histogram
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.context import request_id_var
from app.logs import log_request

log = logging.getLogger("vigil.errors")
# Any printable ASCII a tracing system might use (Root=1-…/…, a.b~c), bounded; else our own.
_REQUEST_ID_OK = re.compile(r"^[\x20-\x7e]{1,128}$")  # the audit column holds 128

REQUESTS = Counter("vigil_http_requests_total", "HTTP requests", ["method", "route", "status"])
LATENCY = Histogram(
    "vigil_http_request_duration_seconds",
    "HTTP request latency",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)


def _hung_up(exc: BaseException) -> bool:
    """Whether ``exc`` only says the response's reader went away (anyio's closed streams, as
    FastAPI's event streams raise them when a client leaves in the middle of sending)."""
    if isinstance(exc, BaseExceptionGroup):
        return all(_hung_up(inner) for inner in exc.exceptions)
    return isinstance(exc, anyio.BrokenResourceError | anyio.ClosedResourceError)


class RequestContextMiddleware:
    """``X-Request-ID`` on every response, body size limit, and per-route metrics."""

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = _header(scope, b"x-request-id")
        request_id = incoming if incoming and _REQUEST_ID_OK.match(incoming) else uuid.uuid4().hex
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status, started_response = 500, False
        encoded_id = request_id.encode()

        async def send_with_id(message: Message) -> None:
            nonlocal status, started_response
            if message["type"] == "http.response.start":
                status, started_response = message["status"], True
                message["headers"] = [*message.get("headers", []), (b"x-request-id", encoded_id)]
            await send(message)

        declared = _header(scope, b"content-length")
        limit = self.max_body_bytes
        if declared is not None and declared.isdigit() and int(declared) > limit:
            receive = _refuse_body(limit)
        else:
            receive = _counting(receive, limit)
        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:
            if started_response and _hung_up(exc):
                return  # the client closed a stream it was reading (a dashboard reconnecting)
            # Starlette renders unhandled errors outside this middleware, without the request
            # id; answer here instead (a problem without internals), unless a response began.
            log.exception(
                "unhandled error on %s %s",
                scope["method"],
                getattr(scope.get("route"), "path", "?"),
            )
            if status != 500 or started_response:
                raise
            body = orjson.dumps(
                {"type": "/problems/internal", "title": "Internal server error", "status": 500,
                 "detail": "An unexpected error occurred.", "instance": scope.get("path", "")}
            )  # fmt: skip
            await send_with_id(
                {"type": "http.response.start", "status": 500,
                 "headers": [(b"content-type", b"application/problem+json"),
                             (b"content-length", str(len(body)).encode())]}
            )  # fmt: skip
            await send({"type": "http.response.body", "body": body})
        finally:
            route = scope.get("route")
            path = getattr(route, "path", "unmatched")
            elapsed = time.perf_counter() - started
            LATENCY.labels(scope["method"], path).observe(elapsed)
            REQUESTS.labels(scope["method"], path, str(status)).inc()
            log_request(scope["method"], path, status, elapsed)
            request_id_var.reset(token)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


def _too_large(limit: int) -> HTTPException:
    # An HTTPException is what FastAPI lets through from body reading (anything else is a 400).
    return HTTPException(413, f"request bodies are limited to {limit} bytes")


def _refuse_body(limit: int) -> Receive:
    async def receive() -> Message:
        raise _too_large(limit)

    return receive


def _counting(receive: Receive, limit: int) -> Receive:
    seen = 0

    async def counted() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise _too_large(limit)
        return message

    return counted
