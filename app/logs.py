"""Structured JSON logs: one object a line, with the request id, and never patient data.

A request's line carries its method, its route as declared (``/v1/sessions/{session_id}``,
never the ids in the actual path), its status and its latency: no names, MRNs, ids or vital
values. Errors name their kind; the engines hide statement parameters (``db.py``).
"""

from __future__ import annotations

import logging
from typing import Any

from app.context import request_id_var

ACCESS = logging.getLogger("vigil.access")


class RequestIdFilter(logging.Filter):
    """Stamps each record with the id of the request being served, if any."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        record.__dict__.pop("color_message", None)  # uvicorn's terminal colours
        return True


def logging_config(level: str) -> dict[str, Any]:
    """A ``logging.config.dictConfig`` for the server and uvicorn alike (its ``log_config``)."""
    handler = {
        "class": "logging.StreamHandler",
        "formatter": "json",
        "filters": ["request_id"],
        "stream": "ext://sys.stderr",
    }
    loggers = ("vigil", "uvicorn", "uvicorn.error")
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": RequestIdFilter}},
        "formatters": {
            "json": {
                "()": "pythonjsonlogger.json.JsonFormatter",
                "fmt": "%(levelname)s %(name)s %(message)s %(request_id)s",
                "rename_fields": {"levelname": "level", "name": "logger"},
                "timestamp": "time",
            }
        },
        "handlers": {"json": handler},
        "loggers": {
            name: {"handlers": ["json"], "level": level.upper(), "propagate": False}
            for name in loggers
        },
        "root": {"handlers": ["json"], "level": "WARNING"},
    }


def log_request(method: str, route: str, status: int, seconds: float) -> None:
    if ACCESS.isEnabledFor(logging.INFO):
        ACCESS.info(
            "request",
            extra={
                "method": method,
                "route": route,
                "status": status,
                "duration_ms": round(seconds * 1000, 2),
            },
        )
