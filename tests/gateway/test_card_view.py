"""A card read in one statement (read_models.card_view): REST GET /medcards/{id} and the
GraphQL card queries answer what the per-kind reads answer, in the write API's text forms."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg
import pytest

from api_gateway import read_models
from tests.api.support import API, Tokens, claim, created, issue_card
from tests.gateway.conftest import Gateway
from tests.gateway.test_graphql import codes, gql, statements

pytestmark = pytest.mark.integration
__all__ = ["statements"]  # the fixture, counting the SQL statements sent

WHOLE = """query($id: ID!, $month: String!) {
  medcard(id: $id) {
    id cardNumber userId issuedAt updatedAt expiryDate currentMonth currentMonthSpent
    remainingThisMonth primaryHolder { name dateOfBirth }
    beneficiaries { id name dateOfBirth isPrimary addedAt }
    monthlySpend(month: $month) { month spent limit remaining }
    claims(first: 2) {
      edges { cursor node { id claimedAt reversedAt coveredAmount items { drugName unitPrice } } }
      pageInfo { hasNextPage endCursor }
    }
  }
}"""


def _python_iso(text: str | None) -> bool:
    """Written exactly as Python's isoformat() writes the instant it names."""
    return text is None or datetime.fromisoformat(text).isoformat() == text


async def test_the_rest_card_read_is_one_statement_with_the_card_and_its_beneficiaries(
    gateway: Gateway, tokens: Tokens, statements: list[str]
) -> None:
    card_id = gateway.world.family_card
    member = tokens.member("member-a")
    statements.clear()
    card = (await gateway.client.get(f"{API}/medcards/{card_id}", headers=member)).json()
    assert len(statements) == 1, statements
    listed = await gateway.client.get(f"{API}/medcards/{card_id}/beneficiaries", headers=member)
    assert card["beneficiaries"] == listed.json()["items"]
    assert next(b["relationship"] for b in card["beneficiaries"]) == "self"
    assert all(_python_iso(card[k]) for k in ("issuedAt", "updatedAt"))
    assert all(_python_iso(b["addedAt"]) for b in card["beneficiaries"])
    # what the write that issued the card answered, field by field where nothing changed it
    assert card["primaryHolder"]["name"] == "Ahmed Ali"
    assert card["primaryHolder"]["dateOfBirth"] == "1980-05-17"


async def test_the_graphql_card_query_is_one_statement_and_answers_the_per_kind_reads(
    gateway: Gateway, tokens: Tokens, statements: list[str]
) -> None:
    card = await issue_card(gateway.api, tokens.admin(), "gql-view", monthlyLimit="1000.00")
    items = [{"drugCode": "D-9", "drugName": "Brufen", "quantity": 2, "unitPrice": "7.50"}]
    answers = [
        created(
            await claim(gateway.api, tokens.pharmacy(), card["id"], f"v-{n}", "15.00", items=items)
        )
        for n in range(3)
    ]
    await gateway.project_new()
    member = tokens.member("gql-view")
    month = answers[0]["month"]

    statements.clear()
    body = await gql(gateway, member, WHOLE, id=card["id"], month=month)
    assert "errors" not in body, body
    assert len(statements) == 1, statements
    got = body["data"]["medcard"]

    rest = (await gateway.client.get(f"{API}/medcards/{card['id']}", headers=member)).json()
    for field in ("id", "cardNumber", "issuedAt", "updatedAt", "expiryDate", "currentMonth"):
        assert got[field] == rest[field], field
    assert got["beneficiaries"] == [
        {k: b[k] for k in ("id", "name", "dateOfBirth", "isPrimary", "addedAt")}
        for b in rest["beneficiaries"]
    ]
    assert got["monthlySpend"] == {
        "month": month,
        "spent": rest["currentMonthSpent"],
        "limit": "1000.00",
        "remaining": rest["remainingThisMonth"],
    }
    page = await gateway.client.get(f"{API}/medcards/{card['id']}/claims?limit=2", headers=member)
    listed = page.json()
    nodes = [e["node"] for e in got["claims"]["edges"]]
    assert [n["id"] for n in nodes] == [c["claimId"] for c in listed["items"]]
    assert [n["claimedAt"] for n in nodes] == [c["claimedAt"] for c in listed["items"]]
    assert got["claims"]["pageInfo"]["hasNextPage"] is (listed["nextCursor"] is not None)
    assert got["claims"]["pageInfo"]["endCursor"] == listed["nextCursor"]
    # newest first, and each claim's time as the write answered it
    written = {a["claimId"]: a["claimedAt"] for a in answers}
    assert [n["claimedAt"] for n in nodes] == [written[n["id"]] for n in nodes]
    assert all(_python_iso(n["claimedAt"]) for n in nodes)
    assert [n["items"] for n in nodes] == [[{"drugName": "Brufen", "unitPrice": "7.50"}]] * 2


async def test_what_the_plan_cannot_use_is_read_and_refused_by_its_own_field(
    gateway: Gateway, tokens: Tokens
) -> None:
    card_id = gateway.world.family_card
    member = tokens.member("member-a")
    pages = """query($id: ID!) { medcard(id: $id) { id
      one: claims(first: 1) { edges { node { id } } pageInfo { hasNextPage } }
      two: claims(first: 2) { edges { node { id items { drugName } } } }
    } }"""
    body: dict[str, Any] = await gql(gateway, member, pages, id=card_id)
    assert "errors" not in body, body
    got = body["data"]["medcard"]
    assert len(got["one"]["edges"]) == 1
    assert got["one"]["pageInfo"]["hasNextPage"]
    assert len(got["two"]["edges"]) == 2
    assert got["two"]["edges"][0]["node"]["id"] == got["one"]["edges"][0]["node"]["id"]
    for edge in got["two"]["edges"]:  # each claim's items, as its own read has them
        node = edge["node"]
        details = await gateway.client.get(f"{API}/claims/{node['id']}", headers=member)
        assert node["items"] == [{"drugName": i["drugName"]} for i in details.json()["items"]]

    for field, path in (
        ("bad: claims(first: 0) { edges { node { id } } }", ["medcard", "bad"]),
        ('monthlySpend(month: "2024-13") { spent }', ["medcard", "monthlySpend"]),
        ('claims(after: "not-a-cursor") { edges { node { id } } }', ["medcard", "claims"]),
    ):
        query = f"query($id: ID!) {{ medcard(id: $id) {{ id {field} }} }}"
        refused = await gql(gateway, member, query, id=card_id)
        assert codes(refused) == ["BAD_USER_INPUT"], refused
        assert refused["errors"][0]["path"] == path


async def test_a_one_statement_read_opens_no_transaction_and_a_longer_one_does(
    gateway: Gateway, tokens: Tokens, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[str, object]] = []
    original_execute = psycopg.AsyncCursor.execute
    original_transaction = psycopg.AsyncConnection.transaction

    async def execute(self: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append(("statement", self.connection.info.transaction_status))
        return await original_execute(self, query, *args, **kwargs)

    def transaction(self: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append(("transaction", None))
        return original_transaction(self, *args, **kwargs)

    monkeypatch.setattr(psycopg.AsyncCursor, "execute", execute)
    monkeypatch.setattr(psycopg.AsyncConnection, "transaction", transaction)
    world, member = gateway.world, tokens.member("member-a")
    idle = psycopg.pq.TransactionStatus.IDLE
    for path in (f"/medcards/{world.family_card}", f"/wallets/{world.wallet_a}"):
        seen.clear()
        assert (await gateway.client.get(f"{API}{path}", headers=member)).status_code == 200
        assert seen == [("statement", idle)], path

    seen.clear()
    path = f"{API}/medcards/{world.family_card}/beneficiaries"
    assert (await gateway.client.get(path, headers=member)).status_code == 200
    # the card, then its beneficiaries: both in one snapshot
    assert seen[0] == ("transaction", None)
    assert [s for s, _ in seen[1:]] == ["statement", "statement"]
    assert idle not in {status for _, status in seen[1:]}

    # GraphQL: the card query whose plan covers it all is one statement, outside a transaction
    month = "2024-01"
    seen.clear()
    body = await gql(gateway, member, WHOLE, id=world.family_card, month=month)
    assert "errors" not in body, body
    assert seen == [("statement", idle)]
    # a claim's medcard is another read, a second root field too: both in one snapshot
    nested = WHOLE.replace("coveredAmount items", "coveredAmount medcard { userId } items")
    for query in (nested, WHOLE.replace("medcard(id: $id) {", "me { subject } medcard(id: $id) {")):
        seen.clear()
        body = await gql(gateway, member, query, id=world.family_card, month=month)
        assert "errors" not in body, body
        assert seen[0] == ("transaction", None), query
        assert idle not in {status for _, status in seen[1:]}


async def test_paging_and_months_add_no_statement_texts(gateway: Gateway, tokens: Tokens) -> None:
    """The statement's text is per shape of plan, the page and months are parameters: a
    process paging through cards keeps a few texts, not one per cursor."""
    query = """query($id: ID!, $after: String, $month: String!) { medcard(id: $id) {
      monthlySpend(month: $month) { spent }
      claims(first: 1, after: $after) { edges { cursor node { id } } } } }"""
    member, card_id = tokens.member("member-a"), gateway.world.family_card
    after: str | None = None
    texts: list[int] = []
    for month in ("2024-01", "2024-02", "2024-03"):
        body = await gql(gateway, member, query, id=card_id, after=after, month=month)
        assert "errors" not in body, body
        after = body["data"]["medcard"]["claims"]["edges"][0]["cursor"]
        texts.append(read_models._card_view_sql.cache_info().currsize)
    assert texts[1:] == [texts[0]] * 2
