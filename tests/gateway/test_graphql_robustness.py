"""GraphQL requests that are not ordinary queries: each is refused with a GraphQL error in a
JSON body and a 4xx status, never a 500, plain text or "Unexpected error."."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from api_gateway.app import create_app
from tests.api.support import Headers, Tokens, api_settings
from tests.gateway.conftest import Gateway

pytestmark = pytest.mark.integration

TOO_BIG = 2**63  # one past the largest Long; far past GraphQL's 32-bit Int


async def _post(gw: Gateway, headers: Headers, **request: Any) -> httpx.Response:
    return await gw.client.post("/graphql", headers=headers, **request)


def _refused(response: httpx.Response, status: int = 400) -> list[dict[str, Any]]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json"), response.headers
    body = response.json()
    assert body.get("data") is None
    errors: list[dict[str, Any]] = body["errors"]
    assert errors, body
    assert all(e["message"] != "Unexpected error." for e in errors), body
    return errors


async def test_an_int_past_64_bits_is_a_400_graphql_error(gateway: Gateway, tokens: Tokens) -> None:
    card = gateway.world.family_card
    literal = f'{{ medcard(id: "{card}") {{ claims(first: {TOO_BIG}) {{ edges {{ cursor }} }} }} }}'
    errors = _refused(await _post(gateway, tokens.admin(), json={"query": literal}))
    assert any("Int cannot represent" in e["message"] for e in errors), errors

    variable = (
        "query($n: Int!, $c: ID!) { medcard(id: $c) { claims(first: $n) { edges { cursor } } } }"
    )
    request = {"query": variable, "variables": {"n": TOO_BIG, "c": card}}
    errors = _refused(await _post(gateway, tokens.admin(), json=request))
    assert any("Int cannot represent" in e["message"] for e in errors), errors


@pytest.mark.parametrize("depth", [1_000, 3_000])
async def test_deeply_nested_variables_or_bodies_are_a_400_graphql_error(
    gateway: Gateway, tokens: Tokens, depth: int
) -> None:
    headers = tokens.admin() | {"Content-Type": "application/json"}
    query = '"query($v: String) { me { subject } }"'
    bodies = [
        '{"query": ' + query + ', "variables": {"v": ' + "[" * depth + "]" * depth + "}}",
        '{"query": ' + query + ', "variables": ' + '{"a":' * depth + "1" + "}" * depth + "}",
        '{"query": ' + query + ', "extensions": ' + '{"a":' * depth + "1" + "}" * depth + "}",
    ]
    for body in bodies:
        [error] = _refused(await _post(gateway, headers, content=body))
        assert error["extensions"]["code"] == "BAD_REQUEST"


async def test_a_batch_is_refused_with_a_clear_error(gateway: Gateway, tokens: Tokens) -> None:
    batch = [{"query": "{ me { subject } }"}, {"query": "{ me { role } }"}]
    [error] = _refused(await _post(gateway, tokens.admin(), json=batch))
    assert "batch" in error["message"]


@pytest.mark.parametrize("bad", ["\u0000", "12\u0000", "\u0001", "\u001b[2J", "\u007f", "\u0085"])
async def test_control_characters_in_arguments_are_bad_user_input(
    gateway: Gateway, tokens: Tokens, bad: str
) -> None:
    by_variable = "query($n: String!) { medcardByNumber(cardNumber: $n) { id } }"
    request = {"query": by_variable, "variables": {"n": bad}}
    [error] = _refused(await _post(gateway, tokens.admin(), json=request))
    assert error["extensions"]["code"] == "BAD_USER_INPUT"

    escaped = bad.encode("unicode_escape").decode().replace("\\x", "\\u00")
    by_literal = f'{{ medcardByNumber(cardNumber: "{escaped}") {{ id }} }}'
    [error] = _refused(await _post(gateway, tokens.admin(), json={"query": by_literal}))
    assert error["extensions"]["code"] == "BAD_USER_INPUT"


async def test_tabs_and_newlines_are_ordinary_text(gateway: Gateway, tokens: Tokens) -> None:
    query = "query($n: String!) {\n\tmedcardByNumber(cardNumber: $n) { id }\n}"
    request = {"query": query, "variables": {"n": "1234\n\t"}}
    response = await _post(gateway, tokens.admin(), json=request)
    assert response.status_code == 200, response.text
    assert response.json()["errors"][0]["extensions"]["code"] == "NOT_FOUND"


async def test_introspection_only_in_development(gateway: Gateway, tokens: Tokens) -> None:
    query = {"query": "{ __schema { queryType { name } } }"}
    errors = _refused(await _post(gateway, tokens.admin(), json=query))
    assert any("introspection" in e["message"].lower() for e in errors), errors
    typename = await _post(gateway, tokens.admin(), json={"query": "{ __typename }"})
    assert typename.json() == {"data": {"__typename": "Query"}}

    dev = create_app(api_settings(environment="development"))
    dev.state.read_side = gateway.app.state.read_side  # no lifespan: introspection reads nothing
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=dev), base_url="http://gw.test"
    ) as client:
        answered = await client.post("/graphql", json=query, headers=tokens.admin())
    assert answered.status_code == 200, answered.text
    assert answered.json()["data"]["__schema"]["queryType"]["name"] == "Query"


async def test_strawberrys_own_refusals_are_json_too(gateway: Gateway, tokens: Tokens) -> None:
    admin = tokens.admin()
    cases: list[dict[str, Any]] = [
        {"json": {}},  # no query
        {"content": b"{not json", "headers": admin | {"Content-Type": "application/json"}},
        {"content": b"query=1", "headers": admin | {"Content-Type": "text/plain"}},
        {"json": {"query": "{ me { subject } }", "variables": [1]}},
    ]
    for case in cases:
        _refused(await _post(gateway, case.pop("headers", admin), **case))
    # a mutation over GET: refused, so a link cannot write
    mutation = (
        f'mutation {{ suspendMedcard(medcardId: "{gateway.world.family_card}") {{ status }} }}'
    )
    [error] = _refused(
        await gateway.client.get("/graphql", params={"query": mutation}, headers=admin)
    )
    assert "GET" in error["message"], error


async def test_an_undeclared_method_is_a_405_problem_with_allow(
    gateway: Gateway, tokens: Tokens
) -> None:
    response = await gateway.client.put("/graphql", json={}, headers=tokens.admin())
    assert response.status_code == 405
    assert response.headers["content-type"] == "application/problem+json"
    assert set(response.headers["allow"].replace(" ", "").split(",")) >= {"GET", "POST"}


async def test_control_characters_in_get_variables_are_refused_too(
    gateway: Gateway, tokens: Tokens
) -> None:
    query = "query($query: String!) { medcardByNumber(cardNumber: $query) { id } }"
    params = {"query": query, "variables": '{"query": "12\\u0000"}'}
    [error] = _refused(await gateway.client.get("/graphql", params=params, headers=tokens.admin()))
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
