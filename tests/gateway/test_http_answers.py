"""What every HTTP answer of the public services carries, whatever route made it: the security
headers, no-store, problem+json for refusals (405 with Allow), and the Ingress's own errors
rendered as the local edge renders them."""

from __future__ import annotations

import httpx
import pytest

from infrastructure.http.edge_problems import EDGE_PROBLEMS
from infrastructure.http.headers import NO_STORE, SECURITY_HEADERS
from tests.api.support import API, Tokens, assert_problem, issue_card
from tests.gateway.conftest import Gateway

pytestmark = pytest.mark.integration


def _has_the_headers(response: httpx.Response) -> None:
    for name, value in (*SECURITY_HEADERS, NO_STORE):
        assert response.headers.get_list(name) == [value], (name, response.headers)
    assert "strict-transport-security" not in response.headers  # where TLS ends: the Ingress


async def test_every_kind_of_answer_carries_the_security_headers(
    gateway: Gateway, tokens: Tokens
) -> None:
    world, client, admin = gateway.world, gateway.client, tokens.admin()
    answers = [
        await client.get(f"{API}/medcards/{world.family_card}", headers=admin),
        await client.get(f"{API}/wallets/{world.wallet_a}/transactions", headers=admin),
        await client.get(f"{API}/claims/{world.last_claim}", headers=admin),
        await client.post("/graphql", json={"query": "{ me { subject } }"}, headers=admin),
        await client.get(f"{API}/medcards/{world.family_card}"),  # 401
        await client.get(f"{API}/nothing-here", headers=admin),  # 404 of the fast routes
        await client.get("/nothing-here"),  # 404 of FastAPI's
        await client.get("/openapi.json"),
        await client.get("/metrics"),
    ]
    for response in answers:
        _has_the_headers(response)
    # the command service, through the same shared middleware: a write is money too
    card = await gateway.api.client.post(
        f"{API}/medcards",
        json={"userId": "hdr-user", "cardType": "gold", "monthlyLimit": 5000},
        headers=admin,
    )
    assert card.status_code == 201, card.text
    _has_the_headers(card)


async def test_undeclared_methods_are_405_problems_with_allow(
    gateway: Gateway, tokens: Tokens
) -> None:
    world, admin = gateway.world, tokens.admin()
    card = await issue_card(gateway.api, admin, "allow-user")
    cases = [
        (gateway.client, "PUT", f"{API}/claims/{world.last_claim}", {"GET", "HEAD"}),
        (gateway.client, "DELETE", f"{API}/medcards/{world.family_card}", {"GET", "HEAD"}),
        (gateway.client, "POST", "/health", {"GET", "HEAD"}),  # a FastAPI route
        # two routes on one path: the read and the forwarded write
        (
            gateway.client,
            "PUT",
            f"{API}/medcards/{card['id']}/beneficiaries",
            {"GET", "HEAD", "POST"},
        ),
        (gateway.api.client, "PUT", f"{API}/medcards/{card['id']}/claims/prescriptions", {"POST"}),
        (gateway.api.client, "PATCH", f"{API}/medcards/{card['id']}/activate", {"POST"}),
    ]
    for client, method, path, allowed in cases:
        response = await client.request(method, path, headers=admin, json={})
        assert_problem(response, 405, "method_not_allowed")
        assert set(response.headers["allow"].replace(" ", "").split(",")) == allowed, path


@pytest.mark.parametrize(
    "path",
    [
        "/medcards/%00",
        "/medcards/%01%02/claims",
        "/wallets/a%00b/transactions",
        "/claims/%1b%5b2J",
    ],
)
async def test_control_characters_in_path_ids_are_404s(
    gateway: Gateway, tokens: Tokens, path: str
) -> None:
    response = await gateway.client.get(API + path, headers=tokens.admin())
    assert response.status_code == 404, response.text
    assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("limit=%00", "invalid_limit"),
        ("cursor=%00", "invalid_cursor"),
        ("cursor=AA%00", "invalid_cursor"),
        ("minPosition=1%00", "invalid_min_position"),
    ],
)
async def test_control_characters_in_query_arguments_are_400s(
    gateway: Gateway, tokens: Tokens, query: str, code: str
) -> None:
    response = await gateway.client.get(
        f"{API}/medcards/{gateway.world.family_card}/claims?{query}", headers=tokens.admin()
    )
    assert_problem(response, 400, code)


@pytest.mark.parametrize("status", [413, 429])
async def test_the_ingress_own_errors_are_rendered_as_problems(
    gateway: Gateway, status: int
) -> None:
    """ingress-nginx's custom-http-errors: the failed request comes on to `/` with X-Code."""
    response = await gateway.client.post(
        "/",
        content=b"x" * 10,
        headers={"X-Code": str(status), "X-Original-URI": "/api/v1/medcards/x/claims"},
    )
    body = assert_problem(response, status, EDGE_PROBLEMS[status][0])
    assert body["detail"] == EDGE_PROBLEMS[status][1]
    assert body["instance"] == "/api/v1/medcards/x/claims"
    assert response.headers.get("retry-after") == ("1" if status == 429 else None)
    _has_the_headers(response)


async def test_the_root_without_a_known_code_is_an_ordinary_404(gateway: Gateway) -> None:
    for headers in ({}, {"X-Code": "200"}, {"X-Code": "abc"}, {"X-Code": "4290"}):
        assert_problem(await gateway.client.get("/", headers=headers), 404, "not_found")


async def test_a_command_the_ingress_could_not_place_is_its_503_not_the_gateways_405(
    gateway: Gateway, tokens: Tokens
) -> None:
    """With no ready command-service pod, the Ingress sends a command on to its default
    backend, the gateway, as it came but with X-Code: 503; the gateway, which has no such
    route for that method, answers the Ingress's problem rather than its own refusal."""
    card = gateway.world.family_card
    for method, path in (
        ("POST", f"{API}/medcards/{card}/claims/prescriptions"),
        ("POST", f"{API}/medcards/{card}/suspend"),
        ("PUT", f"{API}/medcards/{card}"),
    ):
        response = await gateway.client.request(
            method, path, headers=tokens.admin() | {"X-Code": "503"}, json={}
        )
        assert_problem(response, 503, "unavailable")
        assert response.headers["retry-after"] == "1"
    # the reads themselves are unaffected by the header
    read = await gateway.client.get(
        f"{API}/medcards/{card}", headers=tokens.admin() | {"X-Code": "503"}
    )
    assert read.status_code == 200
