"""GraphQL at /graphql over the same read models as the REST reads (real PostgreSQL)."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import httpx
import psycopg
import pytest

from api_gateway import read_models
from api_gateway.app import create_app
from api_gateway.graphql.cost import MAX_COST
from api_gateway.graphql.schema import MAX_ALIASES, MAX_DEPTH, MAX_TOKENS
from tests.api.support import (
    API,
    Headers,
    Tokens,
    api_settings,
    assert_problem,
    claim,
    created,
    issue_card,
)
from tests.gateway.conftest import Gateway

pytestmark = pytest.mark.integration

CARD = """
query($id: ID!, $first: Int!, $after: String) {
  medcard(id: $id) {
    id userId cardType monthlyLimit currentMonthSpent remainingThisMonth
    beneficiaries { relationship isPrimary }
    claims(first: $first, after: $after) {
      edges { cursor node { id prescriptionId decision reasons totalAmount coveredAmount
                            items { drugName } } }
      pageInfo { hasNextPage endCursor }
    }
  }
}"""


async def gql(gw: Gateway, headers: Headers, query: str, **variables: Any) -> dict[str, Any]:
    response = await gw.client.post(
        "/graphql", json={"query": query, "variables": variables}, headers=headers
    )
    return graphql_body(response)


def graphql_body(response: httpx.Response) -> dict[str, Any]:
    """The answer's body: HTTP 200 when fields ran, 400 when the request was refused before
    any did (then it has no data and none of its errors has a path)."""
    body: dict[str, Any] = response.json()
    errors: list[dict[str, Any]] = body.get("errors") or []
    refused = body.get("data") is None and bool(errors) and all("path" not in e for e in errors)
    assert response.status_code == (400 if refused else 200), response.text
    return body


def codes(body: dict[str, Any]) -> list[str]:
    return [e.get("extensions", {}).get("code", "") for e in body.get("errors", [])]


@pytest.fixture
def statements(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every SQL statement the gateway sends, counted at psycopg's cursor."""
    seen: list[str] = []
    original = psycopg.AsyncCursor.execute

    async def counting(self: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append(str(query))
        return await original(self, query, *args, **kwargs)

    monkeypatch.setattr(psycopg.AsyncCursor, "execute", counting)
    return seen


async def test_the_seed_flow_card_with_its_claim_spent_and_remaining(
    gateway: Gateway, tokens: Tokens
) -> None:
    card = await issue_card(gateway.api, tokens.admin(), "gql-seed-user", monthlyLimit=5000)
    created(await claim(gateway.api, tokens.pharmacy(), card["id"], "rx-test-1", "350.00"))
    await gateway.project_new()

    body = await gql(gateway, tokens.member("gql-seed-user"), CARD, id=card["id"], first=10)
    assert "errors" not in body, body
    got = body["data"]["medcard"]
    assert (got["id"], got["cardType"], got["monthlyLimit"]) == (card["id"], "gold", "5000.00")
    assert (got["currentMonthSpent"], got["remainingThisMonth"]) == ("315.00", "4685.00")
    assert [b["relationship"] for b in got["beneficiaries"]] == ["self"]
    [edge] = got["claims"]["edges"]
    assert edge["node"]["prescriptionId"] == "rx-test-1"
    assert (edge["node"]["totalAmount"], edge["node"]["coveredAmount"]) == ("350.00", "315.00")
    assert edge["node"]["reasons"] == ["covered_within_monthly_limit"]
    assert got["claims"]["pageInfo"] == {"hasNextPage": False, "endCursor": edge["cursor"]}

    # the same body as the REST read of that claim
    rest = await gateway.client.get(
        f"{API}/claims/{edge['node']['id']}", headers=tokens.member("gql-seed-user")
    )
    assert rest.json()["coveredAmount"] == edge["node"]["coveredAmount"]


async def test_claim_details_with_items_and_a_wallet_with_transactions(
    gateway: Gateway, tokens: Tokens, statements: list[str]
) -> None:
    listed = await gateway.client.get(
        f"{API}/medcards/{gateway.world.family_card}/claims", headers=tokens.admin()
    )
    [rx] = [c for c in listed.json()["items"] if c["prescriptionId"] == "rx-items"]
    query = """query($c: ID!, $w: ID!) {
      claim(id: $c) { prescriptionId reasons items { drugName quantity unitPrice } }
      wallet(id: $w) { ownerUserId balance
        transactions(first: 2) { edges { node { type amount position } }
                                 pageInfo { hasNextPage endCursor } } }
    }"""
    statements.clear()
    body = await gql(
        gateway, tokens.member("member-a"), query, c=rx["claimId"], w=gateway.world.wallet_a
    )
    assert "errors" not in body, body
    # the claim with its items (one statement: items asks again for nothing), the wallet,
    # its transactions page
    assert len(statements) == 3, statements
    items = body["data"]["claim"]["items"]
    assert [i["drugName"] for i in items] == ["Augmentin", "Panadol"]
    assert items[0]["unitPrice"] == "11.11"
    wallet = body["data"]["wallet"]
    assert wallet["ownerUserId"] == "member-a"
    assert [e["node"]["type"] for e in wallet["transactions"]["edges"]] == ["refund", "debit"]
    assert wallet["transactions"]["pageInfo"]["hasNextPage"] is True

    more = """query($w: ID!, $after: String) {
      wallet(id: $w) { transactions(first: 10, after: $after) {
        edges { node { type transactionId amount debitId reason } } } } }"""
    rest = await gql(
        gateway,
        tokens.member("member-a"),
        more,
        w=gateway.world.wallet_a,
        after=wallet["transactions"]["pageInfo"]["endCursor"],
    )
    nodes = [e["node"] for e in rest["data"]["wallet"]["transactions"]["edges"]]
    assert [n["type"] for n in nodes] == ["refund", "debit", "topup", "topup"]
    # the direct debit refunded in part, naming it
    assert (nodes[0]["amount"], nodes[0]["debitId"], nodes[0]["reason"]) == (
        "15.00",
        nodes[1]["transactionId"],
        "one item returned",
    )


async def test_relay_pagination_over_35_claims(gateway: Gateway, tokens: Tokens) -> None:
    card = await issue_card(gateway.api, tokens.admin(), "gql-many", monthlyLimit="99999.00")
    posted = set()
    for n in range(35):
        answer = created(await claim(gateway.api, tokens.pharmacy(), card["id"], f"gq-{n}", "1.00"))
        posted.add(answer["claimId"])
    await gateway.project_new()

    seen: list[str] = []
    after: str | None = None
    pages = 0
    while True:
        body = await gql(
            gateway, tokens.member("gql-many"), CARD, id=card["id"], first=10, after=after
        )
        assert "errors" not in body, body
        connection = body["data"]["medcard"]["claims"]
        pages += 1
        seen.extend(e["node"]["id"] for e in connection["edges"])
        if not connection["pageInfo"]["hasNextPage"]:
            break
        after = connection["pageInfo"]["endCursor"]
        assert after == connection["edges"][-1]["cursor"]
    assert pages == 4
    assert len(seen) == len(set(seen)) == 35
    assert set(seen) == posted

    bad = await gql(gateway, tokens.admin(), CARD, id=card["id"], first=10, after="nope")
    assert codes(bad) == ["BAD_USER_INPUT"]
    too_many = await gql(gateway, tokens.admin(), CARD, id=card["id"], first=101)
    assert codes(too_many) == ["BAD_USER_INPUT"]


async def test_members_see_only_their_own_and_pharmacies_no_cards(
    gateway: Gateway, tokens: Tokens
) -> None:
    world = gateway.world
    mine = await gql(gateway, tokens.member("member-a"), CARD, id=world.family_card, first=5)
    assert mine["data"]["medcard"]["userId"] == "member-a"

    other = await gql(gateway, tokens.member("member-a"), CARD, id=world.capped_card, first=5)
    assert other["data"] == {"medcard": None}
    assert codes(other) == ["NOT_FOUND"]
    absent = await gql(gateway, tokens.member("member-a"), CARD, id="not-a-uuid", first=5)
    assert codes(absent) == ["NOT_FOUND"]
    wallet = await gql(
        gateway,
        tokens.member("member-b"),
        "query($w: ID!) { wallet(id: $w) { id } }",
        w=world.wallet_a,
    )
    assert (wallet["data"], codes(wallet)) == ({"wallet": None}, ["NOT_FOUND"])

    listed = await gql(
        gateway,
        tokens.member("member-a"),
        "{ me { subject medcards { userId } } myMedcards { id } }",
    )
    assert listed["data"]["me"]["subject"] == "member-a"
    assert {c["userId"] for c in listed["data"]["me"]["medcards"]} == {"member-a"}
    assert world.family_card in {c["id"] for c in listed["data"]["myMedcards"]}
    assert world.capped_card not in {c["id"] for c in listed["data"]["myMedcards"]}

    pharmacy = await gql(gateway, tokens.pharmacy(), CARD, id=world.family_card, first=5)
    assert (pharmacy["data"], codes(pharmacy)) == ({"medcard": None}, ["FORBIDDEN"])


async def test_no_or_bad_token_is_a_401_problem(gateway: Gateway, tokens: Tokens) -> None:
    for headers in ({}, tokens.expired(), tokens.wrong_secret()):
        response = await gateway.client.post(
            "/graphql", json={"query": "{ me { subject } }"}, headers=headers
        )
        assert_problem(response, 401, "unauthorized" if not headers else "invalid_token")


async def test_graphiql_only_in_development(gateway: Gateway) -> None:
    html = {"Accept": "text/html"}
    # these tests run with environment="test": no IDE, so the page is an unauthenticated GET
    assert_problem(await gateway.client.get("/graphql", headers=html), 401, "unauthorized")
    dev = create_app(api_settings(environment="development"))
    dev.state.read_side = gateway.app.state.read_side  # no lifespan: the page runs no query
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=dev), base_url="http://gw.test"
    ) as client:
        page = await client.get("/graphql", headers=html)
    assert page.status_code == 200
    assert "graphiql" in page.text.lower()


async def test_dataloaders_read_each_card_once_however_often_it_is_named(
    gateway: Gateway, tokens: Tokens, statements: list[str]
) -> None:
    for user, count in (("gql-loader-3", 3), ("gql-loader-6", 6)):
        for n in range(count):
            card = await issue_card(gateway.api, tokens.admin(), user, "silver" if n else "gold")
            created(await claim(gateway.api, tokens.pharmacy(), card["id"], f"{user}-{n}", "9.00"))
    await gateway.project_new()
    fields = (
        'id beneficiaries { name } monthlySpend(month: "2024-01") { spent }'
        ' now: monthlySpend(month: "2024-02") { spent }'
        " claims(first: 5) { edges { node { id items { drugName } } } }"
    )
    once = f"{{ myMedcards {{ {fields} }} }}"
    thrice = (
        f"{{ myMedcards {{ {fields} }} me {{ medcards {{ {fields} }} }}"
        f" again: myMedcards {{ {fields} }} }}"
    )
    # one statement each for the member's card ids, the cards, their beneficiaries, their
    # monthly spends, their claims pages and those claims' items
    bounded = 6

    for user, count in (("gql-loader-3", 3), ("gql-loader-6", 6)):
        member = tokens.member(user)
        statements.clear()
        body = await gql(gateway, member, once)
        assert "errors" not in body, body
        assert len(body["data"]["myMedcards"]) == count
        assert all(len(c["claims"]["edges"]) == 1 for c in body["data"]["myMedcards"])
        assert len(statements) == bounded, statements

        statements.clear()
        body = await gql(gateway, member, thrice)
        assert "errors" not in body, body
        assert len(body["data"]["again"]) == count
        assert len(statements) == bounded, statements  # repeats are served from the loaders


async def test_too_deep_or_too_many_aliases_are_rejected(gateway: Gateway, tokens: Tokens) -> None:
    deepest_useful = "{ me { medcards { claims { edges { node { items { drugName } } } } } } }"
    assert "errors" not in await gql(gateway, tokens.admin(), deepest_useful)
    # claim -> medcard -> claims -> ... cycles: nesting it past the limit is refused unrun
    cycle = "medcard { claims { edges { node { %s } } } }"
    inner = "id"
    for _ in range(3):
        inner = cycle % inner
    too_deep = "query($c: ID!) { claim(id: $c) { " + inner + " } }"
    body = await gql(gateway, tokens.admin(), too_deep, c="00000000-0000-0000-0000-000000000000")
    assert body.get("data") is None
    assert any("exceeds maximum operation depth" in e["message"] for e in body["errors"])
    assert MAX_DEPTH < 3 * 4 + 1

    aliases = "{ " + " ".join(f"a{n}: me {{ subject }}" for n in range(20)) + " }"
    refused = await gql(gateway, tokens.admin(), aliases)
    assert refused.get("data") is None
    assert any("alias" in e["message"].lower() for e in refused["errors"])


PAGE = """
query($id: ID!, $after: String) {
  medcard(id: $id) {
    id beneficiaries { name }
    claims(first: 100, after: $after) {
      edges { cursor node { id claimedAt prescriptionId items { drugName } } }
      pageInfo { hasNextPage endCursor }
    }
  }
}"""


async def test_paging_through_1000_claims_costs_the_same_few_statements_per_page(
    gateway: Gateway, tokens: Tokens, statements: list[str]
) -> None:
    card = await issue_card(gateway.api, tokens.admin(), "gql-thousand", monthlyLimit="99999.00")
    posted: dict[str, tuple[datetime, str]] = {}
    for n in range(1000):
        item = {"drugCode": f"D-{n}", "drugName": f"drug-{n}", "quantity": 1, "unitPrice": "1.00"}
        answer = created(
            await claim(gateway.api, tokens.pharmacy(), card["id"], f"k-{n}", "1.00", items=[item])
        )
        posted[answer["claimId"]] = (datetime.fromisoformat(answer["claimedAt"]), f"drug-{n}")
    await gateway.project_new()
    # newest first: claimed_at descending, ties by id descending (uuid order = hex order)
    expected = sorted(posted, key=lambda c: (posted[c][0], c), reverse=True)

    seen: list[str] = []
    per_page: list[int] = []
    after: str | None = None
    while True:
        statements.clear()
        body = await gql(gateway, tokens.member("gql-thousand"), PAGE, id=card["id"], after=after)
        per_page.append(len(statements))
        assert "errors" not in body, body
        connection = body["data"]["medcard"]["claims"]
        for edge in connection["edges"]:
            node = edge["node"]
            assert [i["drugName"] for i in node["items"]] == [posted[node["id"]][1]]
            seen.append(node["id"])
        if not connection["pageInfo"]["hasNextPage"]:
            break
        after = connection["pageInfo"]["endCursor"]
    assert seen == expected  # each claim exactly once, newest first
    # one statement answers the card, its beneficiaries, the claims page and the page's items
    assert per_page == [1] * 10


SPEND = """
query($n: String!, $month: String!) {
  medcardByNumber(cardNumber: $n) {
    id cardNumber currentMonth currentMonthSpent remainingThisMonth
    monthlySpend(month: $month) { month spent limit remaining }
    earlier: monthlySpend(month: "2001-02") { month spent limit remaining }
  }
}"""


async def test_medcard_by_number_with_its_monthly_spend(
    gateway: Gateway, tokens: Tokens, statements: list[str]
) -> None:
    card = await issue_card(gateway.api, tokens.admin(), "gql-spend", monthlyLimit="1000.00")
    first = created(await claim(gateway.api, tokens.pharmacy(), card["id"], "sp-1", "350.00"))
    created(await claim(gateway.api, tokens.pharmacy(), card["id"], "sp-2", "100.00"))
    reversal = await gateway.api.client.post(
        f"{API}/medcards/{card['id']}/claims/{first['claimId']}/reversal",
        json={"reason": "returned"},
        headers=tokens.admin(),
    )
    assert reversal.status_code in (200, 201), reversal.text
    await gateway.project_new()
    month = first["month"]

    body = await gql(gateway, tokens.member("gql-spend"), SPEND, n=card["cardNumber"], month=month)
    assert "errors" not in body, body
    got = body["data"]["medcardByNumber"]
    assert (got["id"], got["cardNumber"], got["currentMonth"]) == (
        card["id"],
        card["cardNumber"],
        month,
    )
    # the month's total after its latest event: 315 + 90 covered, then 315 restored
    assert got["monthlySpend"] == {
        "month": month,
        "spent": "90.00",
        "limit": "1000.00",
        "remaining": "910.00",
    }
    assert (got["currentMonthSpent"], got["remainingThisMonth"]) == ("90.00", "910.00")
    # a month without a claim spent nothing
    assert got["earlier"] == {
        "month": "2001-02",
        "spent": "0.00",
        "limit": "1000.00",
        "remaining": "1000.00",
    }

    by_admin = await gql(gateway, tokens.admin(), SPEND, n=card["cardNumber"], month=month)
    assert by_admin["data"]["medcardByNumber"]["id"] == card["id"]

    around = """query($n: String!) { medcardByNumber(cardNumber: $n) {
      claims { edges { node { medcard { id } } } } } }"""
    statements.clear()
    body = await gql(gateway, tokens.member("gql-spend"), around, n=card["cardNumber"])
    edges = body["data"]["medcardByNumber"]["claims"]["edges"]
    assert [e["node"]["medcard"]["id"] for e in edges] == [card["id"]] * 2
    # the card by number with its claims, one statement: reaching it again by id reads nothing
    assert len(statements) == 1, statements


async def test_medcard_by_number_is_authorized_like_medcard_by_id(
    gateway: Gateway, tokens: Tokens
) -> None:
    rest = await gateway.client.get(
        f"{API}/medcards/{gateway.world.capped_card}", headers=tokens.admin()
    )
    number = rest.json()["cardNumber"]
    month = "2024-01"

    other = await gql(gateway, tokens.member("member-a"), SPEND, n=number, month=month)
    assert (other["data"], codes(other)) == ({"medcardByNumber": None}, ["NOT_FOUND"])
    unknown = await gql(
        gateway, tokens.member("member-b"), SPEND, n="6048000000000000", month=month
    )
    assert (unknown["data"], codes(unknown)) == ({"medcardByNumber": None}, ["NOT_FOUND"])
    pharmacy = await gql(gateway, tokens.pharmacy(), SPEND, n=number, month=month)
    assert (pharmacy["data"], codes(pharmacy)) == ({"medcardByNumber": None}, ["FORBIDDEN"])
    own = await gql(gateway, tokens.member("member-b"), SPEND, n=number, month=month)
    assert "errors" not in own, own
    assert own["data"]["medcardByNumber"]["id"] == gateway.world.capped_card


@pytest.mark.parametrize("month", ["2024-13", "2024-00", "2024-1", "24-01", "2024-01-01", "x"])
async def test_a_malformed_month_is_bad_user_input(
    gateway: Gateway, tokens: Tokens, month: str
) -> None:
    query = (
        "query($id: ID!, $m: String!) { medcard(id: $id) { id monthlySpend(month: $m) { spent } } }"
    )
    body = await gql(gateway, tokens.admin(), query, id=gateway.world.family_card, m=month)
    assert codes(body) == ["BAD_USER_INPUT"]
    assert body["data"] == {"medcard": None}  # monthlySpend is non-null: the card goes too


async def test_refusals_are_not_logged_as_errors_but_failures_are(
    gateway: Gateway,
    tokens: Tokens,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    query = "query($id: ID!) { medcard(id: $id) { id } }"
    with caplog.at_level(logging.ERROR, logger="strawberry.execution"):
        refused = await gql(gateway, tokens.member("member-a"), query, id=gateway.world.capped_card)
    assert codes(refused) == ["NOT_FOUND"]
    assert not [r for r in caplog.records if r.name == "strawberry.execution"]

    async def broken(*args: Any) -> Any:
        raise RuntimeError("the read model is on fire")

    monkeypatch.setattr(read_models, "card_view", broken)
    with caplog.at_level(logging.ERROR, logger="strawberry.execution"):
        failed = await gql(gateway, tokens.admin(), query, id=gateway.world.capped_card)
    [error] = failed["errors"]
    assert "on fire" not in error["message"]  # masked for the caller
    logged = [r for r in caplog.records if r.name == "strawberry.execution"]
    assert logged
    assert "on fire" in caplog.text  # but kept for the operator


async def test_limits_hold_on_a_repeated_query_and_huge_documents_are_refused(
    gateway: Gateway, tokens: Tokens
) -> None:
    aliases = "{ " + " ".join(f"a{n}: me {{ subject }}" for n in range(MAX_ALIASES + 1)) + " }"
    for _ in range(2):  # the second answer comes from the validation cache: still refused
        refused = await gql(gateway, tokens.admin(), aliases)
        assert refused.get("data") is None
        assert any("alias" in e["message"].lower() for e in refused["errors"])
    fields = " ".join("subject" for _ in range(MAX_TOKENS))
    huge = await gql(gateway, tokens.admin(), f"{{ me {{ {fields} }} }}")
    assert huge.get("data") is None
    assert any("token" in e["message"].lower() for e in huge["errors"])


async def test_every_request_gives_its_connection_back(gateway: Gateway, tokens: Tokens) -> None:
    pool = gateway.app.state.read_side.pool
    query = "query($id: ID!) { medcard(id: $id) { id claims(first: 2) { edges { cursor } } } }"
    for n in range(3 * pool.max_size):  # more requests than the pool has connections
        headers = tokens.admin() if n % 2 else tokens.member("member-b")
        await gql(gateway, headers, query, id=gateway.world.family_card)
    stats = pool.get_stats()
    assert stats.get("pool_size", 0) == stats.get("pool_available", 0)
    assert stats.get("requests_waiting", 0) == 0


async def test_a_request_reads_one_read_only_repeatable_read_snapshot(
    gateway: Gateway, tokens: Tokens, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[int, Any, Any, Any]] = []
    original = psycopg.AsyncCursor.execute

    async def recording(self: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
        conn = self.connection
        seen.append((id(conn), conn.info.transaction_status, conn.isolation_level, conn.read_only))
        return await original(self, query, *args, **kwargs)

    monkeypatch.setattr(psycopg.AsyncCursor, "execute", recording)
    query = """query($c: ID!, $w: ID!) {
      medcard(id: $c) { id beneficiaries { name } claims(first: 3) { edges { node { id } } } }
      wallet(id: $w) { balance }
    }"""
    body = await gql(
        gateway, tokens.admin(), query, c=gateway.world.family_card, w=gateway.world.wallet_a
    )
    assert "errors" not in body, body
    assert len(seen) == 2  # the card with its beneficiaries and claims, the wallet
    assert len({conn for conn, *_ in seen}) == 1  # one connection, so one transaction
    # inside the transaction (ACTIVE: another loader's statement is still in flight on it)
    assert {status for _, status, _, _ in seen} <= {
        psycopg.pq.TransactionStatus.INTRANS,
        psycopg.pq.TransactionStatus.ACTIVE,
    }
    assert {s[2:] for s in seen} == {(psycopg.IsolationLevel.REPEATABLE_READ, True)}


async def test_an_operation_asking_for_too_many_objects_is_refused_unrun(
    gateway: Gateway, tokens: Tokens, statements: list[str]
) -> None:
    nested = """query($c: ID!) { medcard(id: $c) { claims(first: 100) { edges { node {
      medcard { claims(first: 100) { edges { node { id } } } } } } } } }"""
    statements.clear()
    refused = await gql(gateway, tokens.admin(), nested, c=gateway.world.family_card)
    assert refused.get("data") is None
    assert codes(refused) == ["QUERY_TOO_COMPLEX"]
    assert refused["errors"][0]["extensions"]["cost"] > MAX_COST
    assert statements == []  # refused before anything ran

    # a variable page size counts as the largest page it could be
    as_variable = nested.replace("$c: ID!", "$c: ID!, $n: Int!").replace("first: 100", "first: $n")
    refused = await gql(gateway, tokens.admin(), as_variable, c=gateway.world.family_card, n=2)
    assert codes(refused) == ["QUERY_TOO_COMPLEX"]

    # the same shape with small pages is an ordinary query
    small = nested.replace("first: 100", "first: 5")
    answered = await gql(gateway, tokens.admin(), small, c=gateway.world.family_card)
    assert "errors" not in answered, answered
    # and so is a full page of 100 claims with their items
    page = """query($c: ID!) { medcard(id: $c) { claims(first: 100) { edges { cursor node {
      id decision reasons totalAmount coveredAmount items { drugName quantity unitPrice }
    } } } } }"""
    assert "errors" not in await gql(gateway, tokens.admin(), page, c=gateway.world.family_card)
