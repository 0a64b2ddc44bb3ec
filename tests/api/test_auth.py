"""Authentication and authorisation on every write endpoint; refusals store nothing.

A bearer token on every endpoint but the payment gateways' callbacks, whose authentication
is the gateway's signature (tests/api/test_payment_callbacks.py for the genuine ones)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest

from command_service.routes import ROUTES
from tests.api.conftest import World
from tests.api.endpoints import BEARER, BY_NAME, ENDPOINTS, SIGNED, Endpoint
from tests.api.support import Api, Headers, Tokens, assert_problem, refused

BAD_TOKENS: dict[str, Callable[[Tokens], Headers]] = {
    "expired": Tokens.expired,
    "wrong_secret": Tokens.wrong_secret,
    "alg_none": Tokens.alg_none,
    "wrong_audience": Tokens.wrong_audience,
    "wrong_issuer": Tokens.wrong_issuer,
    "unknown_role": Tokens.unknown_role,
    "unknown_key_id": Tokens.unknown_key_id,
    "without_key_id": Tokens.without_key_id,
    "old_default_secret": Tokens.old_default_secret,
    "pharmacy_without_pharmacy_id": Tokens.pharmacy_without_id,
    "garbage": lambda _: {"Authorization": "Bearer not.a.jwt"},
}


def _send(api: Api, endpoint: Endpoint, world: World, headers: Headers) -> Any:
    return api.client.request(
        endpoint.method, endpoint.url(world.ids()), json=endpoint.body, headers=headers
    )


def _params(*names: str) -> list[Any]:
    return [pytest.param(name, id=name) for name in names]


ENDPOINT_PARAMS = [pytest.param(e, id=e.name) for e in BEARER]


@pytest.mark.parametrize("endpoint", ENDPOINT_PARAMS)
@pytest.mark.parametrize(
    "authorization",
    [
        pytest.param(None, id="absent"),
        pytest.param("", id="empty"),
        pytest.param("Bearer", id="bearer_without_token"),
        pytest.param("Basic YWRtaW46YWRtaW4=", id="basic"),
        pytest.param("Token abc", id="other_scheme"),
    ],
)
async def test_missing_token_is_401_with_challenge(
    module_api: Api, world: World, endpoint: Endpoint, authorization: str | None
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    before = await module_api.events()
    response = await _send(module_api, endpoint, world, headers)
    assert_problem(response, 401, "unauthorized")
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert await module_api.events() == before


@pytest.mark.parametrize("endpoint", ENDPOINT_PARAMS)
@pytest.mark.parametrize("bad", _params(*BAD_TOKENS))
async def test_bad_token_is_401_invalid_token(
    module_api: Api, world: World, tokens: Tokens, endpoint: Endpoint, bad: str
) -> None:
    headers = BAD_TOKENS[bad](tokens)
    before = await module_api.events()
    response = await _send(module_api, endpoint, world, headers)
    problem = assert_problem(response, 401, "invalid_token")
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert "error=" in response.headers["www-authenticate"]
    assert "Traceback" not in problem["detail"]
    assert await module_api.events() == before


def _role_cases() -> list[Any]:
    return [
        pytest.param(e, role, id=f"{e.name}-{role}") for e in BEARER for role in e.forbidden_roles
    ]


@pytest.mark.parametrize(("endpoint", "role"), _role_cases())
async def test_wrong_role_is_403(
    module_api: Api, world: World, tokens: Tokens, endpoint: Endpoint, role: str
) -> None:
    # A member acts on their own card and wallet here: the role alone is what is refused.
    await refused(
        module_api,
        _send(module_api, endpoint, world, tokens.for_role(role, member="member-a")),
        403,
        "forbidden",
    )


def _foreign_cases() -> list[Any]:
    return [pytest.param(e, id=e.name) for e in BEARER if e.ids_in_path()]


@pytest.mark.parametrize("endpoint", _foreign_cases())
async def test_member_on_another_members_object_learns_nothing(
    module_api: Api, world: World, tokens: Tokens, endpoint: Endpoint
) -> None:
    """member-b gets the same answer for member-a's card/wallet as for one that does not
    exist, and 404 wherever a member may act at all."""
    intruder = tokens.member("member-b")
    foreign = world.ids()
    missing = {**foreign, "card": str(uuid.uuid4()), "wallet": str(uuid.uuid4())}
    before = await module_api.events()
    on_foreign = await module_api.client.request(
        endpoint.method, endpoint.url(foreign), json=endpoint.body, headers=intruder
    )
    on_missing = await module_api.client.request(
        endpoint.method, endpoint.url(missing), json=endpoint.body, headers=intruder
    )
    assert await module_api.events() == before
    assert on_foreign.status_code == on_missing.status_code, (on_foreign.text, on_missing.text)
    assert on_foreign.json()["code"] == on_missing.json()["code"]
    if endpoint.member_allowed:
        code = "wallet_not_found" if "{wallet}" in endpoint.path else "card_not_found"
        assert_problem(on_foreign, 404, code)
    else:
        assert_problem(on_foreign, 403, "forbidden")


def _signed_cases() -> list[Any]:
    headers: dict[str, Callable[[Tokens], Headers]] = {
        "no_token": lambda _: {},
        "garbage_token": lambda _: {"Authorization": "Bearer not.a.jwt"},
        "admin_token": Tokens.admin,
        "ops_token": Tokens.ops,
    }
    return [
        pytest.param(e, make, id=f"{e.name}-{name}")
        for e in SIGNED
        for name, make in headers.items()
    ]


@pytest.mark.parametrize(("endpoint", "headers"), _signed_cases())
async def test_a_callback_without_the_gateways_signature_is_401_whatever_the_token(
    module_api: Api,
    world: World,
    tokens: Tokens,
    endpoint: Endpoint,
    headers: Callable[[Tokens], Headers],
) -> None:
    """No token is asked for, and none, not even staff's, stands in for the signature."""
    await refused(
        module_api, _send(module_api, endpoint, world, headers(tokens)), 401, "invalid_signature"
    )


@pytest.mark.parametrize("endpoint", [pytest.param(e, id=e.name) for e in SIGNED])
async def test_a_callback_401_challenges_no_bearer_token(
    module_api: Api, world: World, endpoint: Endpoint
) -> None:
    response = await _send(module_api, endpoint, world, {})
    assert_problem(response, 401, "invalid_signature")
    assert "www-authenticate" not in response.headers


async def test_member_cannot_open_a_wallet_for_someone_else(
    module_api: Api, tokens: Tokens
) -> None:
    await refused(
        module_api,
        module_api.client.post(
            "/api/v1/wallets", json={"userId": "member-c"}, headers=tokens.member("member-d")
        ),
        403,
        "forbidden",
    )


async def test_member_may_suspend_own_card_and_debit_own_wallet(api: Api, tokens: Tokens) -> None:
    """The positive side of the object-level checks (fresh app: it changes state)."""
    admin = tokens.admin()
    card = (
        await api.client.post(
            "/api/v1/medcards", json={"userId": "member-x", "cardType": "silver"}, headers=admin
        )
    ).json()
    wallet = (
        await api.client.post(
            "/api/v1/wallets", json={"userId": "member-x"}, headers=tokens.member("member-x")
        )
    ).json()
    topped = await api.client.post(
        f"/api/v1/wallets/{wallet['id']}/topups",
        json={"gateway": "paymob", "gatewayReference": "pm-x", "amount": "50.00"},
        headers=tokens.ops(),
    )
    assert topped.status_code == 201, topped.text
    member = tokens.member("member-x")
    suspended = await api.client.post(f"/api/v1/medcards/{card['id']}/suspend", headers=member)
    assert suspended.status_code == 200, suspended.text
    assert suspended.json()["status"] == "SUSPENDED"
    debited = await api.client.post(
        f"/api/v1/wallets/{wallet['id']}/debits",
        json={"amount": "20.00", "reference": "order-x"},
        headers=member,
    )
    assert debited.status_code == 201, debited.text
    assert debited.json()["balance"] == "30.00"
    # ... but not reactivate it: that is staff work.
    await refused(
        api,
        api.client.post(f"/api/v1/medcards/{card['id']}/reactivate", headers=member),
        403,
        "forbidden",
    )


def test_endpoint_table_covers_every_write_route() -> None:
    """The tables these tests iterate over are the app's whole write API."""
    declared = {(route.path, method) for route in ROUTES for method in route.methods or ()}
    assert {(e.route, e.method) for e in ENDPOINTS} == declared
    assert set(BY_NAME) == {route.name for route in ROUTES}
