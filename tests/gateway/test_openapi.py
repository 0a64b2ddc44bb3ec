"""The gateway's /openapi.json is the whole public API, and the REST reads answer what it
says: real answers, over read models projected from real writes, validated against the
document's own response schemas."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx
import pytest
from jsonschema import (  # type: ignore[import-untyped]
    Draft202012Validator,
    FormatChecker,
)
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from api_gateway.app import create_app
from api_gateway.openapi import TITLE, describe
from api_gateway.rest import ROUTES as READ_ROUTES
from command_service.routes import ROUTES as WRITE_ROUTES
from tests.api.support import API, Tokens, api_settings
from tests.gateway.conftest import Gateway

pytestmark = pytest.mark.integration

_URI = "urn:healthpay:public-openapi"
_FORMATS = FormatChecker()


# jsonschema checks "date-time" only with an extra package; this is the RFC 3339 subset the
# gateway writes (Python's isoformat of an aware timestamp).
def _date_time(value: object) -> bool:
    return not isinstance(value, str) or datetime.fromisoformat(value).tzinfo is not None


_FORMATS.checks("date-time", raises=ValueError)(_date_time)


def _methods(route: Any) -> set[str]:
    return set(route.methods or ()) - {"HEAD"}


@pytest.fixture(scope="module")
async def document(gateway: Gateway) -> dict[str, Any]:
    """The gateway's /openapi.json. Until api_gateway/app.py calls describe(app) itself this
    describes the module's app here (test_create_app_serves_the_public_document tells)."""
    spec: dict[str, Any] = (await gateway.client.get("/openapi.json")).json()
    if spec["info"]["title"] != TITLE:
        gateway.app.openapi_schema = None
        describe(gateway.app)
        spec = (await gateway.client.get("/openapi.json")).json()
    return spec


def _operation(document: dict[str, Any], method: str, route: str) -> dict[str, Any]:
    path = document["paths"].get(route)
    assert path is not None, route
    operation: dict[str, Any] | None = path.get(method.lower())
    assert operation is not None, (method, route)
    return operation


def _validator(document: dict[str, Any], schema: dict[str, Any]) -> Draft202012Validator:
    registry: Registry[Any] = Registry().with_resource(
        _URI, Resource.from_contents(document, default_specification=DRAFT202012)
    )
    return Draft202012Validator(
        {"$ref": _URI + schema["$ref"]}, registry=registry, format_checker=_FORMATS
    )


def _conforms(document: dict[str, Any], route: str, response: httpx.Response) -> Any:
    """The body, after checking it against the document's 200 answer for GET `route`."""
    assert response.status_code == 200, (response.status_code, response.text)
    answer = _operation(document, "GET", route)["responses"]["200"]
    if "headers" in answer:
        assert set(answer["headers"]) == {"X-Projection-Position"}
        assert int(response.headers["x-projection-position"]) > 0
    else:  # a statement: many streams, no one position
        assert "x-projection-position" not in response.headers
    schema = answer["content"][response.headers["content-type"]]["schema"]
    body = response.json()
    errors = sorted(_validator(document, schema).iter_errors(body), key=str)
    assert not errors, [f"{list(e.absolute_path)}: {e.message}" for e in errors]
    return body


def _problem_conforms(
    document: dict[str, Any], route: str, response: httpx.Response
) -> dict[str, Any]:
    status = str(response.status_code)
    answer = _operation(document, "GET", route)["responses"][status]
    schema = answer["content"][response.headers["content-type"]]["schema"]
    body: dict[str, Any] = response.json()
    _validator(document, schema).validate(body)
    return body


# ------------------------------------------------------------------------------ coverage


async def test_create_app_serves_the_public_document(gateway: Gateway) -> None:
    """Fails until api_gateway/app.py calls api_gateway.openapi.describe(app)."""
    app = create_app(api_settings(gateway.api.postgres_url))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gw.test") as client:
        spec = (await client.get("/openapi.json")).json()
        docs = await client.get("/docs")
    assert spec["info"]["title"] == TITLE
    assert spec["openapi"].startswith("3.1")
    assert "/graphql" in spec["info"]["description"]
    assert docs.status_code == 200
    assert "swagger-ui" in docs.text
    assert "/openapi.json" in docs.text


async def test_every_read_route_is_documented(document: dict[str, Any]) -> None:
    documented = {
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method in item
        if method == "get"
    }
    routes = {(m, r.path) for r in READ_ROUTES for m in _methods(r)}
    assert routes == documented


async def test_every_write_route_is_documented(document: dict[str, Any]) -> None:
    for route in WRITE_ROUTES:
        for method in _methods(route):
            assert _operation(document, method, route.path)["operationId"] == route.name
    documented = sum(
        1
        for item in document["paths"].values()
        for method in item
        if method in {"post", "put", "delete"}
    )
    assert documented == len(WRITE_ROUTES)


async def test_every_operation_names_its_path_parameters(document: dict[str, Any]) -> None:
    for path, item in document["paths"].items():
        wanted = {part[1:-1] for part in path.split("/") if part.startswith("{")}
        for operation in item.values():
            named = {p["name"] for p in operation["parameters"] if p["in"] == "path"}
            assert named == wanted, (path, operation["operationId"])


# ------------------------------------------------------------------------------ contract


async def test_card_answers_conform(
    gateway: Gateway, tokens: Tokens, document: dict[str, Any]
) -> None:
    route = f"{API}/medcards/{{card_id}}"
    world = gateway.world
    # with a holder and beneficiaries; without holder details; cancelled after a renewal
    for card_id in (world.family_card, world.capped_card, world.lifecycle_card):
        url = route.replace("{card_id}", card_id)
        card = _conforms(document, route, await gateway.client.get(url, headers=tokens.admin()))
        assert card["id"] == card_id
    assert card["status"] == "CANCELLED"


async def test_beneficiary_list_conforms(
    gateway: Gateway, tokens: Tokens, document: dict[str, Any]
) -> None:
    route = f"{API}/medcards/{{card_id}}/beneficiaries"
    url = route.replace("{card_id}", gateway.world.family_card)
    body = _conforms(document, route, await gateway.client.get(url, headers=tokens.admin()))
    assert len(body["items"]) == 2


async def test_claim_pages_and_claim_details_conform(
    gateway: Gateway, tokens: Tokens, document: dict[str, Any]
) -> None:
    page_route = f"{API}/medcards/{{card_id}}/claims"
    claim_route = f"{API}/claims/{{claim_id}}"
    seen: list[dict[str, Any]] = []
    for card_id in (gateway.world.family_card, gateway.world.capped_card):
        url = page_route.replace("{card_id}", card_id)
        first = _conforms(
            document, page_route, await gateway.client.get(f"{url}?limit=2", headers=tokens.ops())
        )
        assert first["nextCursor"] is not None
        rest = _conforms(
            document,
            page_route,
            await gateway.client.get(
                f"{url}?limit=100&cursor={first['nextCursor']}", headers=tokens.ops()
            ),
        )
        assert rest["nextCursor"] is None
        seen += first["items"] + rest["items"]
    statuses = {c["status"] for c in seen}
    assert statuses >= {"approved", "partially_approved", "rejected", "reversed"}
    assert any(c["walletId"] for c in seen)  # a copayment paid from a wallet
    for listed in seen:
        url = claim_route.replace("{claim_id}", listed["claimId"])
        details = _conforms(
            document, claim_route, await gateway.client.get(url, headers=tokens.admin())
        )
        assert {k: v for k, v in details.items() if k != "items"} == listed
    with_items = [c for c in seen if c["prescriptionId"] == "rx-items"]
    assert with_items


async def test_wallet_and_transaction_pages_conform(
    gateway: Gateway, tokens: Tokens, document: dict[str, Any]
) -> None:
    wallet_route = f"{API}/wallets/{{wallet_id}}"
    page_route = f"{API}/wallets/{{wallet_id}}/transactions"
    types: set[str] = set()
    for wallet_id in (gateway.world.wallet_a, gateway.world.wallet_b):
        url = wallet_route.replace("{wallet_id}", wallet_id)
        _conforms(document, wallet_route, await gateway.client.get(url, headers=tokens.admin()))
        url = page_route.replace("{wallet_id}", wallet_id)
        cursor: str | None = None
        while True:
            query = f"?limit=2&cursor={cursor}" if cursor else "?limit=2"
            page = _conforms(
                document, page_route, await gateway.client.get(url + query, headers=tokens.ops())
            )
            types |= {t["type"] for t in page["items"]}
            cursor = page["nextCursor"]
            if cursor is None:
                break
    assert types == {"topup", "debit", "refund"}


async def test_statements_conform(
    gateway: Gateway, tokens: Tokens, document: dict[str, Any]
) -> None:
    mine, by_id = f"{API}/pharmacies/me/claims", f"{API}/pharmacies/{{pharmacy_id}}/claims"
    parameters = {p["name"] for p in _operation(document, "GET", mine)["parameters"]}
    assert parameters == {"from", "to", "status", "limit", "cursor"}
    statuses: set[str] = set()
    for route, url, headers in (
        (mine, mine, tokens.pharmacy()),
        (by_id, by_id.replace("{pharmacy_id}", "pharmacy-1"), tokens.ops()),
    ):
        cursor: str | None = None
        while True:
            query = f"?limit=3&cursor={cursor}" if cursor else "?limit=3"
            page = _conforms(
                document, route, await gateway.client.get(url + query, headers=headers)
            )
            statuses |= {c["status"] for c in page["items"]}
            cursor = page["nextCursor"]
            if cursor is None:
                break
    assert statuses == {"approved", "partially_approved", "rejected", "reversed"}
    refused = {
        400: await gateway.client.get(f"{mine}?from=2026-02-30", headers=tokens.pharmacy()),
        401: await gateway.client.get(mine),
        403: await gateway.client.get(mine, headers=tokens.member("member-a")),
    }
    for status, response in refused.items():
        assert response.status_code == status, (status, response.text)
        assert _problem_conforms(document, mine, response)["status"] == status


async def test_refusals_conform_to_the_problem_schema(
    gateway: Gateway, tokens: Tokens, document: dict[str, Any]
) -> None:
    claims = f"{API}/medcards/{{card_id}}/claims"
    card = f"{API}/medcards/{{card_id}}"
    family = card.replace("{card_id}", gateway.world.family_card)
    answers = {
        400: (claims, await gateway.client.get(f"{family}/claims?limit=0", headers=tokens.ops())),
        401: (card, await gateway.client.get(family)),
        403: (card, await gateway.client.get(family, headers=tokens.pharmacy())),
        404: (card, await gateway.client.get(family, headers=tokens.member("someone-else"))),
        504: (
            card,
            await gateway.client.get(
                f"{family}?minPosition={gateway.projected + 10_000}", headers=tokens.ops()
            ),
        ),
    }
    for status, (route, response) in answers.items():
        assert response.status_code == status, (status, response.text)
        assert _problem_conforms(document, route, response)["status"] == status
