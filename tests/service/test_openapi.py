"""The checked-in OpenAPI document must be the app's own."""

from pathlib import Path

from cli.serve import openapi_document

OPENAPI = Path(__file__).parents[2] / "openapi" / "openapi.json"


def test_checked_in_openapi_matches_the_app() -> None:
    assert OPENAPI.read_text(encoding="utf-8") == openapi_document(), (
        "openapi/openapi.json is stale: run `cci openapi`"
    )
