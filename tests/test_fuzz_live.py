"""Schemathesis over HTTP against a running ``vigil serve``, with keys: no 500, no answer outside
the schema the server itself publishes at /openapi.json."""

from __future__ import annotations

import os
from typing import Any

from hypothesis import HealthCheck, given, settings
from schemathesis import Case
from schemathesis.openapi import from_url
from schemathesis.specs.openapi.checks import positive_data_acceptance

from tests.factories import World
from tests.live import live_server, live_world  # noqa: F401
from tests.test_fuzz import ADMIN_PREFIXES

EXAMPLES_PER_OPERATION = 8


def _fuzz(operation: Any, base_url: str, key: str) -> None:
    @given(case=operation.as_strategy())
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        database=None,
        derandomize=os.environ.get("CI") == "true",  # a CI run must not turn red by chance
        suppress_health_check=list(HealthCheck),
    )
    def check(case: Case) -> None:
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {key}"}
        # Rules across fields are beyond JSON Schema: schema-valid data may rightly get a 422.
        case.call_and_validate(base_url=base_url, excluded_checks=[positive_data_acceptance])

    check()


def test_the_running_server_never_answers_500_or_outside_its_schema(
    live_server: str,  # noqa: F811
    live_world: World,  # noqa: F811
) -> None:
    checked = 0
    for result in from_url(f"{live_server}/openapi.json").get_all_operations():
        operation = result.ok()
        if operation.path in ("/metrics", "/v1/alerts/stream"):
            continue  # plain text with no schema; a stream that never ends by itself
        admin = operation.path.startswith(ADMIN_PREFIXES)
        caller = live_world.global_admin if admin else live_world.clinician
        _fuzz(operation, live_server, caller.key)
        checked += 1
    assert checked >= 40  # every operation of the API, not a handful
