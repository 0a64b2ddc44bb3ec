"""Who may read what over GraphQL, field by field: every root field by every kind of caller.

A bad or missing token fails the whole request at the HTTP edge (401 problem+json, as the REST
reads); a role that may not read a kind of thing gets null and FORBIDDEN; an object that is not
the caller's gets null and NOT_FOUND, exactly like an id that does not exist.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from api_gateway.graphql.schema import schema
from tests.api.support import API, OTHER_PHARMACY, Headers, Tokens, assert_problem
from tests.gateway.conftest import Gateway
from tests.gateway.test_authorization import BAD_TOKENS
from tests.gateway.test_graphql_mutations import MUTATIONS

pytestmark = pytest.mark.integration

MEMBER, OTHER_MEMBER = "member-a", "member-b"


@dataclass(frozen=True)
class Field:
    """A root field: its query, and the variables naming member-a's object (`own`) and
    member-b's (`other`); None for a field that takes no id (it reads the caller's own)."""

    query: str
    own: str | None = None
    other: str | None = None
    card_or_wallet: bool = True  # closed to pharmacies
    members: bool = True  # a member may read their own (False: FORBIDDEN to members)


FIELDS = {
    "me": Field("{ me { subject role } }", card_or_wallet=False),
    "myMedcards": Field("{ myMedcards { id userId } }"),
    "medcard": Field(
        "query($id: ID!) { medcard(id: $id) { id userId currentMonthSpent } }", "card", "card"
    ),
    "medcardByNumber": Field(
        "query($number: String!) { medcardByNumber(cardNumber: $number) { id userId } }",
        "card_number",
        "card_number",
    ),
    "claim": Field(
        "query($id: ID!) { claim(id: $id) { id pharmacyId coveredAmount } }",
        "claim",
        "claim",
        card_or_wallet=False,
    ),
    "wallet": Field("query($id: ID!) { wallet(id: $id) { id balance } }", "wallet", "wallet"),
    # staff name any pharmacy, a pharmacy only itself, members none (api_gateway/access.py)
    "pharmacyClaims": Field(
        "query($pharmacy: String!) { pharmacyClaims(pharmacyId: $pharmacy, first: 100) {"
        " edges { node { id pharmacyId prescriptionId } } } }",
        "pharmacy",
        "pharmacy",
        card_or_wallet=False,
        members=False,
    ),
}


def query_fields() -> set[str]:
    query = schema._schema.query_type
    return set(query.fields) if query else set()


async def _claim_id(gw: Gateway, tokens: Tokens, card: str, prescription_id: str) -> str:
    listed = await gw.client.get(f"{API}/medcards/{card}/claims", headers=tokens.admin())
    return str(
        next(c["claimId"] for c in listed.json()["items"] if c["prescriptionId"] == prescription_id)
    )


async def _variables(gw: Gateway, tokens: Tokens, kind: str | None, other: bool) -> dict[str, Any]:
    """member-a's object of that kind (rx-items: posted by pharmacy-1 on member-a's card), or
    member-b's (rx-c2: posted by pharmacy-1 on member-b's card)."""
    world = gw.world
    if kind == "card":
        return {"id": world.capped_card if other else world.family_card}
    if kind == "card_number":
        card = world.capped_card if other else world.family_card
        read = await gw.client.get(f"{API}/medcards/{card}", headers=tokens.admin())
        return {"number": read.json()["cardNumber"], "id": card}
    if kind == "wallet":
        return {"id": world.wallet_b if other else world.wallet_a}
    if kind == "pharmacy":
        return {"pharmacy": OTHER_PHARMACY if other else "pharmacy-1"}
    if kind == "claim":
        if other:
            return {"id": await _claim_id(gw, tokens, world.capped_card, "rx-c2")}
        return {"id": await _claim_id(gw, tokens, world.family_card, "rx-items")}
    return {}


async def _ask(
    gw: Gateway, headers: Headers, name: str, variables: dict[str, Any]
) -> tuple[Any, list[str]]:
    response = await gw.client.post(
        "/graphql", json={"query": FIELDS[name].query, "variables": variables}, headers=headers
    )
    assert response.status_code == 200, response.text
    body = response.json()
    codes = [e.get("extensions", {}).get("code", "") for e in body.get("errors", [])]
    return body["data"][name] if body.get("data") else None, codes


def test_every_root_field_is_in_a_matrix() -> None:
    # a new query field must say here who may read it; mutations: test_graphql_mutations.py
    assert query_fields() == set(FIELDS)
    mutation = schema._schema.mutation_type
    assert mutation is not None
    assert set(mutation.fields) == set(MUTATIONS)


@pytest.mark.parametrize("name", FIELDS)
@pytest.mark.parametrize("token", BAD_TOKENS)
async def test_no_or_a_bad_token_is_401_for_every_field(
    gateway: Gateway, tokens: Tokens, name: str, token: str
) -> None:
    variables = await _variables(gateway, tokens, FIELDS[name].own, other=False)
    response = await gateway.client.post(
        "/graphql",
        json={"query": FIELDS[name].query, "variables": variables},
        headers=BAD_TOKENS[token](tokens),
    )
    body = assert_problem(
        response, 401, "unauthorized" if token in ("none", "not_bearer") else "invalid_token"
    )
    assert "www-authenticate" in response.headers
    assert MEMBER not in str(body)
    assert "data" not in body


@pytest.mark.parametrize("name", FIELDS)
@pytest.mark.parametrize("role", ["admin", "ops"])
async def test_staff_read_everyones(gateway: Gateway, tokens: Tokens, name: str, role: str) -> None:
    for other in (False, True):
        variables = await _variables(gateway, tokens, FIELDS[name].own, other)
        data, codes = await _ask(gateway, tokens.for_role(role), name, variables)
        assert codes == [], (name, role, other, codes)
        assert data is not None


@pytest.mark.parametrize("name", [n for n, f in FIELDS.items() if f.members])
async def test_a_member_reads_their_own_and_never_anothers(
    gateway: Gateway, tokens: Tokens, name: str
) -> None:
    field = FIELDS[name]
    own = await _variables(gateway, tokens, field.own, other=False)
    data, codes = await _ask(gateway, tokens.member(MEMBER), name, own)
    assert codes == [], (name, codes)
    assert data
    if name == "me":
        assert data["subject"] == MEMBER
    elif name == "myMedcards":
        assert {c["userId"] for c in data} == {MEMBER}
        assert gateway.world.capped_card not in {c["id"] for c in data}
    else:
        assert data["id"] == own["id"]

    if field.other is not None:
        theirs = await _variables(gateway, tokens, field.other, other=True)
        data, codes = await _ask(gateway, tokens.member(MEMBER), name, theirs)
        assert (data, codes) == (None, ["NOT_FOUND"])
        # the same answer as an id that exists nowhere: existence cannot be probed
        absent = {"id": "00000000-0000-4000-8000-000000000000", "number": "6000000000000000"}
        assert await _ask(gateway, tokens.member(MEMBER), name, absent) == (None, ["NOT_FOUND"])


@pytest.mark.parametrize("name", [n for n, f in FIELDS.items() if f.card_or_wallet])
async def test_a_pharmacy_may_not_read_cards_or_wallets(
    gateway: Gateway, tokens: Tokens, name: str
) -> None:
    variables = await _variables(gateway, tokens, FIELDS[name].own, other=False)
    assert await _ask(gateway, tokens.pharmacy(), name, variables) == (None, ["FORBIDDEN"])


async def test_a_pharmacy_reads_only_the_claims_it_posted(gateway: Gateway, tokens: Tokens) -> None:
    world = gateway.world
    own = {"id": await _claim_id(gateway, tokens, world.family_card, "rx-items")}
    anothers = {"id": await _claim_id(gateway, tokens, world.family_card, "rx-child")}
    data, codes = await _ask(gateway, tokens.pharmacy(), "claim", own)
    assert codes == []
    assert data["pharmacyId"] == "pharmacy-1"
    assert await _ask(gateway, tokens.pharmacy(), "claim", anothers) == (None, ["NOT_FOUND"])
    data, codes = await _ask(gateway, tokens.pharmacy(OTHER_PHARMACY), "claim", anothers)
    assert codes == []
    assert data["pharmacyId"] == OTHER_PHARMACY


async def test_a_pharmacy_cannot_reach_a_card_through_its_claim(
    gateway: Gateway, tokens: Tokens
) -> None:
    own = await _claim_id(gateway, tokens, gateway.world.family_card, "rx-items")
    response = await gateway.client.post(
        "/graphql",
        json={
            "query": "query($id: ID!) { claim(id: $id) { id medcard { userId } } }",
            "variables": {"id": own},
        },
        headers=tokens.pharmacy(),
    )
    body = response.json()
    assert body["data"]["claim"] == {"id": own, "medcard": None}
    assert [e["extensions"]["code"] for e in body["errors"]] == ["FORBIDDEN"]
    assert MEMBER not in response.text


async def test_me_lists_only_the_callers_own_cards(gateway: Gateway, tokens: Tokens) -> None:
    response = await gateway.client.post(
        "/graphql",
        json={
            "query": "{ me { subject medcards { userId claims(first: 50) { edges { node {"
            " pharmacyId } } } } } }"
        },
        headers=tokens.member(OTHER_MEMBER),
    )
    body = response.json()
    assert "errors" not in body, body
    assert {c["userId"] for c in body["data"]["me"]["medcards"]} == {OTHER_MEMBER}


@pytest.mark.parametrize("name", [n for n, f in FIELDS.items() if not f.members])
async def test_a_member_may_not_read_pharmacy_statements(
    gateway: Gateway, tokens: Tokens, name: str
) -> None:
    for other in (False, True):
        variables = await _variables(gateway, tokens, FIELDS[name].own, other)
        assert await _ask(gateway, tokens.member(MEMBER), name, variables) == (None, ["FORBIDDEN"])


async def test_a_pharmacy_reads_only_its_own_statement(gateway: Gateway, tokens: Tokens) -> None:
    own = {"pharmacy": "pharmacy-1"}
    data, codes = await _ask(gateway, tokens.pharmacy(), "pharmacyClaims", own)
    assert codes == []
    listed = {e["node"]["prescriptionId"] for e in data["edges"]}
    assert "rx-items" in listed
    assert "rx-child" not in listed  # pharmacy-2's
    assert {e["node"]["pharmacyId"] for e in data["edges"]} == {"pharmacy-1"}
    for other in (OTHER_PHARMACY, "pharmacy-never"):
        asked = {"pharmacy": other}
        assert await _ask(gateway, tokens.pharmacy(), "pharmacyClaims", asked) == (
            None,
            ["FORBIDDEN"],
        )
    data, codes = await _ask(
        gateway, tokens.pharmacy(OTHER_PHARMACY), "pharmacyClaims", {"pharmacy": OTHER_PHARMACY}
    )
    assert codes == []
    assert {e["node"]["prescriptionId"] for e in data["edges"]} == {"rx-child"}


async def test_me_wallet_is_the_callers_own(gateway: Gateway, tokens: Tokens) -> None:
    query = "{ me { wallet { id ownerUserId } } }"
    for member, wallet in (
        (MEMBER, gateway.world.wallet_a),
        (OTHER_MEMBER, gateway.world.wallet_b),
    ):
        response = await gateway.client.post(
            "/graphql", json={"query": query}, headers=tokens.member(member)
        )
        body = response.json()
        assert "errors" not in body, body
        assert body["data"]["me"]["wallet"] == {"id": wallet, "ownerUserId": member}
