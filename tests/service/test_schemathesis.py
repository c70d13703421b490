"""Property-based API tests from the checked-in OpenAPI document: no 5xx, and every response
matches the document (status codes, content types, schemas)."""

from __future__ import annotations

from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.service.conftest import LiveService

SCHEMA = schemathesis.openapi.from_path(Path(__file__).parents[2] / "openapi" / "openapi.json")
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


# Starting linkage runs at random would only make the test slow; its route has its own tests.
@SCHEMA.exclude(path="/v1/admin/runs", method="POST").parametrize()
@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_api_conforms_to_its_document(case: schemathesis.Case, live_sqlite: LiveService) -> None:
    case.call_and_validate(
        base_url=live_sqlite.url,
        headers={"Authorization": f"Bearer {live_sqlite.keys['everything']}"},
        checks=CHECKS,
    )
