"""Who may read what, on every route: 401 for no or bad tokens, 403 for a role that may not
read a kind of thing, 404 for an object that is not the caller's (ids cannot be probed)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.api.support import API, OTHER_PHARMACY, Headers, Tokens, assert_problem
from tests.gateway.conftest import Gateway

pytestmark = pytest.mark.integration

# route template -> which world id it takes; member-a owns family_card and wallet_a
ROUTES = {
    "card": "/medcards/{card}",
    "card_claims": "/medcards/{card}/claims",
    "beneficiaries": "/medcards/{card}/beneficiaries",
    "claim": "/claims/{claim}",
    "wallet": "/wallets/{wallet}",
    "transactions": "/wallets/{wallet}/transactions",
}
NOT_FOUND = {
    "card": "card_not_found",
    "card_claims": "card_not_found",
    "beneficiaries": "card_not_found",
    "claim": "claim_not_found",
    "wallet": "wallet_not_found",
    "transactions": "wallet_not_found",
}
BAD_TOKENS: dict[str, Callable[[Tokens], Headers]] = {
    "none": lambda t: {},
    "not_bearer": lambda t: {"Authorization": "Basic YWRtaW46YWRtaW4="},
    "expired": lambda t: t.expired(),
    "wrong_signature": lambda t: t.wrong_secret(),
    "wrong_audience": lambda t: t.wrong_audience(),
    "wrong_issuer": lambda t: t.wrong_issuer(),
    "alg_none": lambda t: t.alg_none(),
    "unknown_role": lambda t: t.unknown_role(),
    "unknown_key_id": lambda t: t.unknown_key_id(),
    "without_key_id": lambda t: t.without_key_id(),
    "old_default_secret": lambda t: t.old_default_secret(),
}


async def _claim_of(gw: Gateway, tokens: Tokens, prescription_id: str) -> str:
    listed = await gw.client.get(
        f"{API}/medcards/{gw.world.family_card}/claims", headers=tokens.admin()
    )
    [found] = [c for c in listed.json()["items"] if c["prescriptionId"] == prescription_id]
    return str(found["claimId"])


async def _url(gw: Gateway, tokens: Tokens, route: str, *, other: bool = False) -> str:
    """The route for member-a's objects (or member-b's, with `other`); the claim is rx-items,
    posted by pharmacy-1 on member-a's card (other: rx-c2 on member-b's)."""
    world = gw.world
    if route in ("claim",):
        if other:
            listed = await gw.client.get(
                f"{API}/medcards/{world.capped_card}/claims", headers=tokens.admin()
            )
            claim_id = next(
                c["claimId"] for c in listed.json()["items"] if c["prescriptionId"] == "rx-c2"
            )
        else:
            claim_id = await _claim_of(gw, tokens, "rx-items")
        return API + ROUTES[route].format(claim=claim_id)
    card = world.capped_card if other else world.family_card
    wallet = world.wallet_b if other else world.wallet_a
    return API + ROUTES[route].format(card=card, wallet=wallet)


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("token", BAD_TOKENS)
async def test_no_or_a_bad_token_is_401(
    gateway: Gateway, tokens: Tokens, route: str, token: str
) -> None:
    url = await _url(gateway, tokens, route)
    response = await gateway.client.get(url, headers=BAD_TOKENS[token](tokens))
    body = assert_problem(
        response, 401, "unauthorized" if token in ("none", "not_bearer") else "invalid_token"
    )
    assert "www-authenticate" in response.headers
    assert "member-a" not in str(body)


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("role", ["admin", "ops"])
async def test_staff_read_everything(
    gateway: Gateway, tokens: Tokens, route: str, role: str
) -> None:
    for other in (False, True):
        url = await _url(gateway, tokens, route, other=other)
        response = await gateway.client.get(url, headers=tokens.for_role(role))
        assert response.status_code == 200, response.text


@pytest.mark.parametrize("route", ROUTES)
async def test_a_member_reads_their_own_and_not_anothers(
    gateway: Gateway, tokens: Tokens, route: str
) -> None:
    mine = await gateway.client.get(
        await _url(gateway, tokens, route), headers=tokens.member("member-a")
    )
    assert mine.status_code == 200, mine.text
    theirs = await gateway.client.get(
        await _url(gateway, tokens, route, other=True), headers=tokens.member("member-a")
    )
    assert_problem(theirs, 404, NOT_FOUND[route])


@pytest.mark.parametrize("route", [r for r in ROUTES if r != "claim"])
async def test_a_pharmacy_may_not_read_cards_or_wallets(
    gateway: Gateway, tokens: Tokens, route: str
) -> None:
    response = await gateway.client.get(
        await _url(gateway, tokens, route), headers=tokens.pharmacy()
    )
    assert_problem(response, 403, "forbidden")


async def test_a_pharmacy_reads_only_the_claims_it_posted(gateway: Gateway, tokens: Tokens) -> None:
    own = await _claim_of(gateway, tokens, "rx-items")  # posted by pharmacy-1
    anothers = await _claim_of(gateway, tokens, "rx-child")  # posted by pharmacy-2
    assert (await gateway.client.get(f"{API}/claims/{own}", headers=tokens.pharmacy())).is_success
    refused = await gateway.client.get(f"{API}/claims/{anothers}", headers=tokens.pharmacy())
    assert_problem(refused, 404, "claim_not_found")
    theirs = await gateway.client.get(
        f"{API}/claims/{anothers}", headers=tokens.pharmacy(OTHER_PHARMACY)
    )
    assert theirs.status_code == 200


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("raw_id", ["00000000-0000-4000-8000-000000000000", "not-a-uuid"])
async def test_unknown_ids_are_404(
    gateway: Gateway, tokens: Tokens, route: str, raw_id: str
) -> None:
    url = API + ROUTES[route].format(card=raw_id, wallet=raw_id, claim=raw_id)
    assert_problem(await gateway.client.get(url, headers=tokens.admin()), 404, NOT_FOUND[route])


# ------------------------------------------------------------------ pharmacy statements
# Who may read whose statement is api_gateway/access.py's statement_pharmacy: a pharmacy its
# own (the id its token carries), staff any pharmacy's by id, members none.
MY_STATEMENT = f"{API}/pharmacies/me/claims"


def _statement(pharmacy: str) -> str:
    return f"{API}/pharmacies/{pharmacy}/claims"


async def _prescriptions(gw: Gateway, url: str, headers: Headers) -> set[str]:
    response = await gw.client.get(f"{url}?limit=100", headers=headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["nextCursor"] is None
    return {c["prescriptionId"] for c in body["items"]}


@pytest.mark.parametrize("url", [MY_STATEMENT, _statement("pharmacy-1")])
@pytest.mark.parametrize("token", BAD_TOKENS)
async def test_a_statement_without_a_good_token_is_401(
    gateway: Gateway, tokens: Tokens, url: str, token: str
) -> None:
    response = await gateway.client.get(url, headers=BAD_TOKENS[token](tokens))
    assert_problem(
        response, 401, "unauthorized" if token in ("none", "not_bearer") else "invalid_token"
    )


async def test_a_pharmacy_reads_its_own_statement_and_never_anothers(
    gateway: Gateway, tokens: Tokens
) -> None:
    own = await _prescriptions(gateway, MY_STATEMENT, tokens.pharmacy())
    assert "rx-items" in own
    assert "rx-child" not in own  # posted by pharmacy-2
    assert await _prescriptions(gateway, _statement("pharmacy-1"), tokens.pharmacy()) == own
    theirs = await _prescriptions(gateway, MY_STATEMENT, tokens.pharmacy(OTHER_PHARMACY))
    assert theirs == {"rx-child"}
    # naming another pharmacy is refused whether or not it posted anything; a query
    # parameter does not choose the pharmacy either
    for other in (OTHER_PHARMACY, "pharmacy-never"):
        refused = await gateway.client.get(_statement(other), headers=tokens.pharmacy())
        assert_problem(refused, 403, "forbidden")
    asked = f"{MY_STATEMENT}?pharmacy_id={OTHER_PHARMACY}&pharmacyId={OTHER_PHARMACY}"
    assert await _prescriptions(gateway, asked, tokens.pharmacy()) == own


@pytest.mark.parametrize("role", ["admin", "ops"])
async def test_staff_read_any_pharmacys_statement_by_its_id(
    gateway: Gateway, tokens: Tokens, role: str
) -> None:
    headers = tokens.for_role(role)
    assert await _prescriptions(gateway, _statement(OTHER_PHARMACY), headers) == {"rx-child"}
    assert "rx-items" in await _prescriptions(gateway, _statement("pharmacy-1"), headers)
    # staff have no statement of their own (an admin token may carry a pharmacy_id)
    for staff in (headers, tokens.admin(pharmacy_id="pharmacy-1")):
        assert_problem(await gateway.client.get(MY_STATEMENT, headers=staff), 403, "forbidden")


@pytest.mark.parametrize("url", [MY_STATEMENT, _statement("pharmacy-1")])
async def test_a_member_reads_no_statement(gateway: Gateway, tokens: Tokens, url: str) -> None:
    response = await gateway.client.get(url, headers=tokens.member("member-a"))
    body = assert_problem(response, 403, "forbidden")
    assert "rx-" not in str(body)
