"""A pharmacy's statement (the claims it posted) over REST and GraphQL, and a member's wallet
under `me`, read from the read models the real writes were projected into. What each page
must hold is asked of prescription_claims itself."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import quote
from uuid import UUID

import pytest

from api_gateway.statements import STATUSES
from tests.api.support import API, PHARMACY, Headers, Tokens, assert_problem
from tests.gateway.conftest import Gateway
from tests.projections.support import rows

pytestmark = pytest.mark.integration

MINE = f"{API}/pharmacies/me/claims"
ROW_KEYS = {  # what a statement's line carries, among the claim body's fields
    "claimId",
    "medcardId",
    "prescriptionId",
    "claimedAt",
    "status",
    "decision",
    "totalAmount",
    "coveredAmount",
    "copaymentAmount",
    "reversedAt",
}
STATEMENT_GQL = """query($pharmacy: String!, $first: Int!, $after: String, $from: String,
  $to: String, $status: String) {
  pharmacyClaims(pharmacyId: $pharmacy, first: $first, after: $after, from: $from, to: $to,
      status: $status) {
    edges { cursor node { id pharmacyId status decision claimedAt reversedAt coveredAmount } }
    pageInfo { hasNextPage endCursor }
  }
}"""


async def _expected(gw: Gateway, pharmacy: str, where: str = "TRUE", *params: Any) -> list[str]:
    """The pharmacy's claim ids in prescription_claims, newest first, that `where` keeps."""
    found = await rows(
        gw.pool,
        f"SELECT id FROM prescription_claims WHERE pharmacy_id = %s AND ({where})"
        " ORDER BY claimed_at DESC, id DESC",
        pharmacy,
        *params,
    )
    return [str(r[0]) for r in found]


async def _pages(
    gw: Gateway, url: str, headers: Headers, query: str = ""
) -> list[list[dict[str, Any]]]:
    """Every page of a statement, following nextCursor to the end."""
    pages: list[list[dict[str, Any]]] = []
    cursor: str | None = None
    while True:
        params = query + (f"&cursor={cursor}" if cursor else "")
        response = await gw.client.get(f"{url}?{params}", headers=headers)
        assert response.status_code == 200, response.text
        assert "x-projection-position" not in response.headers  # no one stream's position
        body = response.json()
        pages.append(body["items"])
        cursor = body["nextCursor"]
        if cursor is None:
            return pages


async def _listed(gw: Gateway, headers: Headers, query: str, url: str = MINE) -> list[str]:
    return [c["claimId"] for page in await _pages(gw, url, headers, query) for c in page]


async def test_pages_list_each_claim_once_newest_first(gateway: Gateway, tokens: Tokens) -> None:
    expected = await _expected(gateway, PHARMACY)
    assert len(expected) >= 7  # the world's pharmacy-1 claims: 3 pages of 3
    pages = await _pages(gateway, MINE, tokens.pharmacy(), "limit=3")
    assert len(pages) == -(-len(expected) // 3) >= 3
    assert [len(p) for p in pages[:-1]] == [3] * (len(pages) - 1)
    listed = [c["claimId"] for page in pages for c in page]
    assert listed == expected
    assert all(c["pharmacyId"] == PHARMACY and set(c) >= ROW_KEYS for p in pages for c in p)
    # staff read the same statement by the pharmacy's id, in other page sizes
    for role in ("admin", "ops"):
        by_id = f"{API}/pharmacies/{PHARMACY}/claims"
        assert await _listed(gateway, tokens.for_role(role), "limit=2", by_id) == expected


async def test_a_line_is_the_claim_read_and_a_reversal_shows(
    gateway: Gateway, tokens: Tokens
) -> None:
    [page] = await _pages(gateway, MINE, tokens.pharmacy(), "limit=100")
    reversed_ = [c for c in page if c["status"] == "reversed"]
    assert {c["prescriptionId"] for c in reversed_} == {"rx-copay", "rx-c1"}
    for line in reversed_:
        assert line["decision"] == "approved"
        assert line["reversedAt"] is not None
    assert all(c["reversedAt"] is None for c in page if c["status"] != "reversed")
    copay = next(c for c in reversed_ if c["prescriptionId"] == "rx-copay")
    assert copay["reversalReason"] == "returned"
    for line in page:  # the claim read's body, without its prescription lines
        one = await gateway.client.get(f"{API}/claims/{line['claimId']}", headers=tokens.admin())
        assert {k: v for k, v in one.json().items() if k != "items"} == line


async def test_filters_by_status(gateway: Gateway, tokens: Tokens) -> None:
    for status in STATUSES:
        expected = await _expected(gateway, PHARMACY, "status = %s", status)
        assert expected, status  # the world has a claim of every status
        assert await _listed(gateway, tokens.pharmacy(), f"limit=2&status={status}") == expected


def _z(claimed_at: str) -> str:
    """The same instant written in UTC with Z (the bodies write the session's offset)."""
    return datetime.fromisoformat(claimed_at).astimezone(UTC).isoformat().replace("+00:00", "Z")


async def test_filters_by_instants_both_inclusive(gateway: Gateway, tokens: Tokens) -> None:
    [page] = await _pages(gateway, MINE, tokens.pharmacy(), "limit=100")
    newest, oldest = page[1]["claimedAt"], page[-2]["claimedAt"]
    expected = await _expected(
        gateway,
        PHARMACY,
        "claimed_at BETWEEN %s AND %s",
        datetime.fromisoformat(oldest),
        datetime.fromisoformat(newest),
    )
    assert expected == [c["claimId"] for c in page[1:-1]]
    query = f"limit=2&from={_z(oldest)}&to={_z(newest)}"
    assert await _listed(gateway, tokens.pharmacy(), query) == expected
    # from alone, to alone
    since = await _listed(gateway, tokens.pharmacy(), f"from={_z(newest)}")
    assert since == [c["claimId"] for c in page[:2]]
    until = await _listed(gateway, tokens.pharmacy(), f"to={_z(oldest)}")
    assert until == [c["claimId"] for c in page[-2:]]


async def test_filters_by_cairo_days(gateway: Gateway, tokens: Tokens) -> None:
    [page] = await _pages(gateway, MINE, tokens.pharmacy(), "limit=100")
    [(day,)] = await rows(
        gateway.pool,
        "SELECT (%s::timestamptz AT TIME ZONE 'Africa/Cairo')::date",
        datetime.fromisoformat(page[0]["claimedAt"]),
    )
    assert isinstance(day, date)
    cairo_day = "(claimed_at AT TIME ZONE 'Africa/Cairo')::date BETWEEN %s AND %s"
    for low, high in ((day, day), (day - timedelta(days=1), day), (day - timedelta(days=3), day)):
        expected = await _expected(gateway, PHARMACY, cairo_day, low, high)
        query = f"limit=3&from={low.isoformat()}&to={high.isoformat()}"
        assert await _listed(gateway, tokens.pharmacy(), query) == expected
    assert await _expected(gateway, PHARMACY, cairo_day, day, day)  # today's claims are there
    before = (day - timedelta(days=1)).isoformat()
    assert await _listed(gateway, tokens.pharmacy(), f"to={before}") == []
    assert await _listed(gateway, tokens.pharmacy(), f"from={(day + timedelta(days=1))}") == []


def _tampered(gw_cursor: str) -> str:
    return gw_cursor[:-2] + ("AA" if not gw_cursor.endswith("AA") else "BB")


BAD_QUERIES = {
    "from=2026-02-30": ("invalid_from", "from"),
    "from=2026-12-04T10:00:00": ("invalid_from", "from"),  # no offset
    "from=04/12/2026": ("invalid_from", "from"),
    "to=2026-13-01": ("invalid_to", "to"),
    "to=2026-12-04T24:00:00Z": ("invalid_to", "to"),
    "from=2026-12-05&to=2026-12-04": ("invalid_range", "from"),
    "from=2026-12-04T10:00:00.000001Z&to=2026-12-04T10:00:00Z": ("invalid_range", "from"),
    "status=approve": ("invalid_status", "status"),
    "status=APPROVED": ("invalid_status", "status"),
    "limit=0": ("invalid_limit", None),
    "limit=101": ("invalid_limit", None),
    "limit=x": ("invalid_limit", None),
    "cursor=not-a-cursor": ("invalid_cursor", None),
    "minPosition=1": ("invalid_min_position", None),
}


@pytest.mark.parametrize("query", BAD_QUERIES)
async def test_bad_inputs_are_400_naming_the_parameter(
    gateway: Gateway, tokens: Tokens, query: str
) -> None:
    code, field = BAD_QUERIES[query]
    for url, headers in ((MINE, tokens.pharmacy()), (f"{API}/pharmacies/p/claims", tokens.ops())):
        body = assert_problem(
            await gateway.client.get(f"{url}?{query}", headers=headers), 400, code
        )
        if field is not None:
            assert body["errors"][0]["field"] == field


async def test_a_tampered_cursor_is_400(gateway: Gateway, tokens: Tokens) -> None:
    first = (await gateway.client.get(f"{MINE}?limit=2", headers=tokens.pharmacy())).json()
    cursor = first["nextCursor"]
    assert cursor is not None
    for bad in (_tampered(cursor), cursor[1:], cursor + "!"):
        response = await gateway.client.get(f"{MINE}?cursor={bad}", headers=tokens.pharmacy())
        assert_problem(response, 400, "invalid_cursor")


async def test_a_pharmacy_that_posted_nothing_has_an_empty_statement(
    gateway: Gateway, tokens: Tokens
) -> None:
    for pharmacy in ("pharmacy-never", "with space", "nul\x00inside", "ünï"):
        response = await gateway.client.get(
            f"{API}/pharmacies/{quote(pharmacy, safe='')}/claims", headers=tokens.admin()
        )
        assert response.json() == {"items": [], "nextCursor": None}, pharmacy
    response = await gateway.client.get(MINE, headers=tokens.pharmacy("pharmacy-never"))
    assert response.json() == {"items": [], "nextCursor": None}


# ------------------------------------------------------------------------------ GraphQL


async def _gql(gw: Gateway, headers: Headers, query: str, variables: dict[str, Any]) -> Any:
    response = await gw.client.post(
        "/graphql", json={"query": query, "variables": variables}, headers=headers
    )
    assert response.status_code == 200, response.text
    return response.json()


async def test_graphql_pages_a_statement_as_a_connection(gateway: Gateway, tokens: Tokens) -> None:
    expected = await _expected(gateway, PHARMACY)
    for headers in (tokens.ops(), tokens.pharmacy()):
        seen: list[str] = []
        after: str | None = None
        pages = 0
        while True:
            variables = {"pharmacy": PHARMACY, "first": 3, "after": after}
            body = await _gql(gateway, headers, STATEMENT_GQL, variables)
            assert "errors" not in body, body
            connection = body["data"]["pharmacyClaims"]
            seen += [e["node"]["id"] for e in connection["edges"]]
            pages += 1
            assert {e["node"]["pharmacyId"] for e in connection["edges"]} <= {PHARMACY}
            if not connection["pageInfo"]["hasNextPage"]:
                break
            after = connection["pageInfo"]["endCursor"]
        assert pages >= 3
        assert seen == expected


async def test_graphql_filters_as_rest_does(gateway: Gateway, tokens: Tokens) -> None:
    [page] = await _pages(gateway, MINE, tokens.pharmacy(), "limit=100")
    low, high = _z(page[-2]["claimedAt"]), _z(page[1]["claimedAt"])
    for variables, query in (
        ({"status": "reversed"}, "status=reversed"),
        ({"from": low, "to": high}, f"from={low}&to={high}"),
        ({"from": low, "status": "rejected"}, f"from={low}&status=rejected"),
    ):
        asked = {"pharmacy": PHARMACY, "first": 100} | variables
        body = await _gql(gateway, tokens.admin(), STATEMENT_GQL, asked)
        ids = [e["node"]["id"] for e in body["data"]["pharmacyClaims"]["edges"]]
        assert ids == await _listed(gateway, tokens.pharmacy(), query), variables


@pytest.mark.parametrize(
    ("variables", "argument"),
    [
        ({"from": "2026-02-30"}, "from"),
        ({"to": "yesterday"}, "to"),
        ({"from": "2026-12-05", "to": "2026-12-04"}, "from"),
        ({"status": "approve"}, "status"),
    ],
)
async def test_graphql_bad_arguments_name_the_argument(
    gateway: Gateway, tokens: Tokens, variables: dict[str, str], argument: str
) -> None:
    asked = {"pharmacy": PHARMACY, "first": 5} | variables
    body = await _gql(gateway, tokens.ops(), STATEMENT_GQL, asked)
    assert body["data"] == {"pharmacyClaims": None}
    [error] = body["errors"]
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "argument": argument}
    for first, after in ((0, None), (101, None), (5, "tampered")):
        asked = {"pharmacy": PHARMACY, "first": first, "after": after}
        body = await _gql(gateway, tokens.ops(), STATEMENT_GQL, asked)
        assert [e["extensions"]["code"] for e in body["errors"]] == ["BAD_USER_INPUT"]


ME_WALLET = """{ me { wallet { id balance currency projectionPosition
  copayConsent { perClaimLimit monthlyLimit setAt }
  transactions(first: 2) { edges { node { transactionId type amount balance } }
    pageInfo { hasNextPage endCursor } } } } }"""


async def test_me_wallet_is_the_members_wallet_read(gateway: Gateway, tokens: Tokens) -> None:
    world = gateway.world
    member = tokens.member("member-a")
    body = await _gql(gateway, member, ME_WALLET, {})
    assert "errors" not in body, body
    wallet = body["data"]["me"]["wallet"]
    rest = (await gateway.client.get(f"{API}/wallets/{world.wallet_a}", headers=member)).json()
    assert wallet["id"] == world.wallet_a
    assert (wallet["balance"], wallet["currency"]) == (rest["balance"], rest["currency"])
    assert wallet["copayConsent"] == rest["copayConsent"]
    assert wallet["copayConsent"]["perClaimLimit"] == "100.00"  # a decimal string
    listed = await gateway.client.get(
        f"{API}/wallets/{world.wallet_a}/transactions?limit=2", headers=member
    )
    first = listed.json()
    nodes = [e["node"] for e in wallet["transactions"]["edges"]]
    assert [n["transactionId"] for n in nodes] == [t["transactionId"] for t in first["items"]]
    assert [n["amount"] for n in nodes] == [t["amount"] for t in first["items"]]
    assert wallet["transactions"]["pageInfo"]["hasNextPage"] is (first["nextCursor"] is not None)
    [(balance,)] = await rows(
        gateway.pool, "SELECT balance FROM wallets WHERE id = %s", UUID(world.wallet_a)
    )
    assert wallet["balance"] == f"{balance:.2f}"


async def test_me_wallet_is_null_without_one_and_closed_to_pharmacies(
    gateway: Gateway, tokens: Tokens
) -> None:
    body = await _gql(gateway, tokens.member("member-c"), ME_WALLET, {})  # opened none
    assert body == {"data": {"me": {"wallet": None}}}
    body = await _gql(gateway, tokens.pharmacy(), ME_WALLET, {})
    assert body["data"] == {"me": {"wallet": None}}
    assert [e["extensions"]["code"] for e in body["errors"]] == ["FORBIDDEN"]
    other = await _gql(gateway, tokens.member("member-b"), "{ me { wallet { id } } }", {})
    assert other["data"]["me"]["wallet"]["id"] == gateway.world.wallet_b


# the edges of what from and to take: the calendar's ends with the widest offsets, leap
# days, fractions past microseconds, either case of T and Z, and near misses
EDGE_INSTANTS = [
    "0001-01-01",
    "9999-12-31",
    "0001-01-01T00:00:00+23:59",
    "9999-12-31T23:59:59.999999-23:59",
    "9999-12-31T23:59:59.9999999Z",
    "2024-02-29",
    "2024-02-29t12:00:00z",
    "2026-12-04T10:00:00.1+02:00",
    "2023-02-29",
    "2026-12-04T23:59:60Z",
    "2026-12-04T10:00:00+24:00",
    "\uff12\uff10\uff12\uff16-\uff11\uff12-\uff10\uff14",  # fullwidth digits
    "2026-12-04 10:00:00Z",
    "",
    " 2026-12-04",
    "2026-12-04\x00",
]


async def test_no_from_to_or_pharmacy_id_is_a_server_error(
    gateway: Gateway, tokens: Tokens
) -> None:
    answers: set[int] = set()
    for since in [None, *EDGE_INSTANTS]:
        for until in [None, *EDGE_INSTANTS[::3]]:
            params = {k: v for k, v in (("from", since), ("to", until)) if v is not None}
            response = await gateway.client.get(MINE, params=params, headers=tokens.pharmacy())
            assert response.status_code in (200, 400), (params, response.text)
            answers.add(response.status_code)
            if response.status_code == 400:
                assert response.json()["code"] in ("invalid_from", "invalid_to", "invalid_range")
    assert answers == {200, 400}
    for pharmacy in ("%00", "%FF", "%F0%9F%92%8A", "..%2F", "a" * 5000, "%25"):
        url = f"{API}/pharmacies/{pharmacy}/claims"
        response = await gateway.client.get(url, headers=tokens.admin())
        assert response.status_code in (200, 404), (pharmacy, response.text)
