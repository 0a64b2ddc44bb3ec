"""OpenAPI for the write routes, which are plain Starlette routes FastAPI cannot see: the
document is built from the declared write operations (schemas/api/openapi.py), which
tests/api/test_openapi_contract.py holds equal to command_service/routes.py."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from schemas.api.openapi import WRITES, build_openapi

DESCRIPTION = (
    "The write API of HealthPay Ledger. The public URL documents reads and writes together"
    " at /docs."
)


def describe(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if not app.openapi_schema:
            app.openapi_schema = build_openapi(
                WRITES, title=app.title, version=app.version, description=DESCRIPTION
            )
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
