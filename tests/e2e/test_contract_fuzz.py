"""Contract fuzzing: schemathesis generates requests for every operation of each
service's /openapi.json (a bounded number of examples each). No 5xx, every status is
one its operation documents (the document has no catch-all ``default``), and every
response matches the schema documented for its status."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    response_schema_conformance,
    status_code_conformance,
)

from shared.config import Settings
from tests.conftest import API_KEYS

MAX_EXAMPLES = 15
CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance]
AUTH = {"Authorization": f"Bearer {API_KEYS['all']}"}


def operations(schema: Any) -> list[Any]:
    return [result.ok() for result in schema.get_all_operations()]


@pytest.mark.parametrize("service", ["identity", "crm", "routing"])
def test_no_operation_answers_5xx_or_off_schema(
    service: str, make_settings: Callable[..., Settings]
) -> None:
    module = __import__(f"services.{service}.app", fromlist=["create_app"])
    app = module.create_app(make_settings(service))
    schema = schemathesis.openapi.from_wsgi("/openapi.json", app)
    ops = operations(schema)
    assert {op.path for op in ops} >= {"/healthz", "/readyz", "/metrics"}
    for op in ops:

        @settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=op.as_strategy())
        def exercise(case: Any) -> None:
            case.call_and_validate(headers=AUTH, checks=CHECKS)

        exercise()
