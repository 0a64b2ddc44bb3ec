"""The write operations the public OpenAPI document declares (schemas/api/openapi.py) are the
command service's routes, so the documentation cannot drift from the route table."""

from __future__ import annotations

from typing import Any

import pytest
from jsonschema import Draft202012Validator  # type: ignore[import-untyped]
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from command_service.routes import ROUTES
from schemas.api.openapi import WRITES, build_openapi
from tests.api.endpoints import BY_NAME, ENDPOINTS

DOCUMENT = build_openapi(WRITES, title="writes", version="test")
_URI = "urn:healthpay:openapi"
_REGISTRY: Registry[Any] = Registry().with_resource(
    _URI, Resource.from_contents(DOCUMENT, default_specification=DRAFT202012)
)


def _validator(schema: dict[str, Any]) -> Draft202012Validator:
    """`schema` (e.g. {"$ref": "#/components/schemas/X"}) resolved against DOCUMENT."""
    ref = schema["$ref"]
    return Draft202012Validator({"$ref": _URI + ref}, registry=_REGISTRY)


def test_declared_writes_are_exactly_the_command_routes() -> None:
    routes = {
        (method, route.path, route.name) for route in ROUTES for method in route.methods or ()
    }
    declared = {(op.method, op.path, op.operation_id) for op in WRITES}
    assert routes == declared
    assert len(WRITES) == len(declared)  # no operation declared twice


def test_declared_writes_are_the_ones_the_api_tests_exercise() -> None:
    assert {op.operation_id for op in WRITES} == {e.name for e in ENDPOINTS}
    for op in WRITES:
        endpoint = BY_NAME[op.operation_id]
        assert (op.method, op.path) == (endpoint.method, endpoint.route)
        assert (op.body is None) == (endpoint.body is None), op.operation_id
        if op.body is not None:
            assert op.body_required == (not endpoint.body_optional), op.operation_id


@pytest.mark.parametrize(
    "endpoint", [e for e in ENDPOINTS if e.body is not None], ids=lambda e: e.name
)
def test_a_valid_body_is_valid_by_the_document(endpoint: Any) -> None:
    operation = DOCUMENT["paths"][endpoint.route][endpoint.method.lower()]
    schema = operation["requestBody"]["content"]["application/json"]["schema"]
    _validator(schema).validate(endpoint.body)


@pytest.mark.parametrize("endpoint", [e for e in ENDPOINTS if e.required], ids=lambda e: e.name)
def test_a_body_without_a_required_field_is_invalid_by_the_document(endpoint: Any) -> None:
    operation = DOCUMENT["paths"][endpoint.route][endpoint.method.lower()]
    schema = operation["requestBody"]["content"]["application/json"]["schema"]
    top_level = [name for name in endpoint.required if "." not in name]
    assert top_level, f"{endpoint.name}: no top-level required field to leave out"
    for name in top_level:
        body = {k: v for k, v in endpoint.body.items() if k != name}
        assert not _validator(schema).is_valid(body), (endpoint.name, name)
