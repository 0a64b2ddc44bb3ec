"""OpenAPI for the write routes, which are plain Starlette routes FastAPI cannot see."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel

from schemas.api.commands import (
    AddBeneficiaryBody,
    ClaimBody,
    DebitBody,
    IssueCardBody,
    OpenWalletBody,
    ReversalBody,
    StatusChangeBody,
    TopUpBody,
)

_BODIES: dict[str, type[BaseModel]] = {
    "issue_card": IssueCardBody,
    "add_beneficiary": AddBeneficiaryBody,
    "claim_prescription": ClaimBody,
    "reverse_claim": ReversalBody,
    "open_wallet": OpenWalletBody,
    "top_up": TopUpBody,
    "debit": DebitBody,
}
_PROBLEM = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
_PROBLEM_SCHEMA = {
    "type": "object",
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "code": {"type": "string"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "errors": {"type": "array", "items": {"type": "object"}},
    },
    "required": ["type", "title", "status", "code", "detail"],
}


def describe(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        spec = get_openapi(title=app.title, version=app.version, routes=[])
        schemas: dict[str, Any] = {"Problem": _PROBLEM_SCHEMA}
        paths: dict[str, Any] = {}
        for route in app.router.routes:
            name = getattr(route, "name", "")
            methods = getattr(route, "methods", None) or set()
            path = getattr(route, "path", "")
            if not path.startswith("/api/v1/"):
                continue
            body = _BODIES.get(name, StatusChangeBody if name.endswith("_card") else None)
            operation: dict[str, Any] = {
                "operationId": name,
                "summary": name.replace("_", " "),
                "security": [{"bearer": []}],
                "parameters": [
                    {"name": "Idempotency-Key", "in": "header", "schema": {"type": "string"}}
                ],
                "responses": {
                    "200": {"description": "an identical earlier request's answer, replayed"},
                    "201": {"description": "done; the body carries the event position"},
                    "4XX": {"description": "refused", "content": _PROBLEM},
                },
            }
            if body is not None:
                schema = body.model_json_schema(
                    by_alias=True, ref_template="#/components/schemas/{model}"
                )
                schemas.update(schema.pop("$defs", {}))
                schemas[body.__name__] = schema
                operation["requestBody"] = {
                    "required": (name not in {"reverse_claim"} and not name.endswith("_card"))
                    or name == "issue_card",
                    "content": {
                        "application/json": {
                            "schema": {"$ref": f"#/components/schemas/{body.__name__}"}
                        }
                    },
                }
            for method in methods:
                paths.setdefault(path, {})[method.lower()] = operation
        spec["paths"] = paths
        spec["components"] = {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            },
        }
        app.openapi_schema = spec
        return spec

    app.openapi = openapi  # type: ignore[method-assign]
