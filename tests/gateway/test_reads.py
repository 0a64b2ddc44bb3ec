"""Each REST read's happy path and shape, over read models projected from real writes."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest

from api_gateway.freshness import ReadSide
from tests.api.support import (
    API,
    OTHER_PHARMACY,
    Tokens,
    assert_problem,
    claim,
    created,
    issue_card,
)
from tests.gateway.conftest import Gateway

pytestmark = pytest.mark.integration


def ok(response: httpx.Response) -> Any:
    assert response.status_code == 200, (response.status_code, response.text)
    assert response.headers["content-type"] == "application/json"
    assert int(response.headers["x-projection-position"]) > 0
    return response.json()


async def stream_position(gw: Gateway, aggregate_id: str) -> int:
    return max(e.position for e in await gw.api.stream(aggregate_id))


async def test_a_card_with_this_months_spend_and_its_beneficiaries(
    gateway: Gateway, tokens: Tokens
) -> None:
    card_id = gateway.world.family_card
    response = await gateway.client.get(
        f"{API}/medcards/{card_id}", headers=tokens.member("member-a")
    )
    card = ok(response)
    assert int(response.headers["x-projection-position"]) == await stream_position(gateway, card_id)
    assert card["id"] == card_id
    assert card["userId"] == "member-a"
    assert (card["cardType"], card["status"], card["currency"]) == ("gold", "ACTIVE", "EGP")
    assert card["monthlyLimit"] == "5000.00"
    assert card["copaymentPercentage"] == "10.00"
    # gold 10%: 90 (items) + 315 (spouse); the reversed and the rejected claims add nothing
    assert card["currentMonthSpent"] == "405.00"
    assert card["remainingThisMonth"] == "4595.00"
    assert len(card["cardNumber"]) == 16
    assert card["primaryHolder"]["name"] == "Ahmed Ali"
    names = [(b["relationship"], b["isPrimary"]) for b in card["beneficiaries"]]
    assert names == [("self", True), ("spouse", False)]  # the removed child is not listed
    assert set(card["beneficiaries"][1]) >= {"id", "nationalId", "name", "dateOfBirth"}


async def test_a_card_read_in_a_later_cairo_month_has_spent_nothing(
    gateway: Gateway, tokens: Tokens
) -> None:
    side: ReadSide = gateway.app.state.read_side
    gateway.app.state.read_side = replace(side, clock=lambda: datetime(2099, 1, 1, tzinfo=UTC))
    try:
        card = ok(
            await gateway.client.get(
                f"{API}/medcards/{gateway.world.family_card}", headers=tokens.ops()
            )
        )
    finally:
        gateway.app.state.read_side = side
    assert (card["currentMonth"], card["currentMonthSpent"]) == ("2099-01", "0.00")
    assert card["remainingThisMonth"] == "5000.00"


async def test_beneficiaries_of_a_card(gateway: Gateway, tokens: Tokens) -> None:
    body = ok(
        await gateway.client.get(
            f"{API}/medcards/{gateway.world.family_card}/beneficiaries", headers=tokens.admin()
        )
    )
    assert [b["relationship"] for b in body["items"]] == ["self", "spouse"]
    assert gateway.world.removed_beneficiary not in {b["id"] for b in body["items"]}


async def test_a_cards_claims_newest_first_with_decisions_and_reasons(
    gateway: Gateway, tokens: Tokens
) -> None:
    body = ok(
        await gateway.client.get(
            f"{API}/medcards/{gateway.world.capped_card}/claims", headers=tokens.member("member-b")
        )
    )
    assert body["nextCursor"] is None
    by_rx = {c["prescriptionId"]: c for c in body["items"]}
    assert [c["prescriptionId"] for c in body["items"]] == ["rx-c3", "rx-c2", "rx-c1"]
    assert by_rx["rx-c1"]["status"] == "reversed"
    assert by_rx["rx-c1"]["decision"] == "approved"
    assert by_rx["rx-c2"]["decision"] == "partially_approved"
    assert by_rx["rx-c3"]["decision"] == "rejected"
    assert by_rx["rx-c3"]["reasons"]
    assert by_rx["rx-c2"]["coveredAmount"] == "80.00"
    for key in ("totalAmount", "copaymentAmount", "remainingMonthlyLimit"):
        Decimal(by_rx["rx-c2"][key])  # money as strings


async def test_one_claim_with_its_items(gateway: Gateway, tokens: Tokens) -> None:
    listed = ok(
        await gateway.client.get(
            f"{API}/medcards/{gateway.world.family_card}/claims", headers=tokens.ops()
        )
    )
    [with_items] = [c for c in listed["items"] if c["prescriptionId"] == "rx-items"]
    response = await gateway.client.get(
        f"{API}/claims/{with_items['claimId']}", headers=tokens.pharmacy()
    )
    body = ok(response)
    assert body["pharmacyId"] == "pharmacy-1"
    assert [i["drugName"] for i in body["items"]] == ["Augmentin", "Panadol"]
    assert body["items"][0] == {
        "drugCode": "D-1",
        "drugName": "Augmentin",
        "quantity": 3,
        "unitPrice": "11.11",
        "totalPrice": "33.33",
        "coveredAmount": body["items"][0]["coveredAmount"],
        "copaymentAmount": body["items"][0]["copaymentAmount"],
        "daysSupply": None,  # not told
    }
    assert (body["totalAmount"], body["coveredAmount"]) == ("100.00", "90.00")
    assert body["reasons"] == with_items["reasons"]
    assert int(response.headers["x-projection-position"]) == await stream_position(
        gateway, gateway.world.family_card
    )


async def test_a_wallet_and_its_transactions(gateway: Gateway, tokens: Tokens) -> None:
    wallet_id = gateway.world.wallet_a
    headers = tokens.member("member-a")
    wallet = ok(await gateway.client.get(f"{API}/wallets/{wallet_id}", headers=headers))
    assert (wallet["id"], wallet["ownerUserId"], wallet["currency"]) == (
        wallet_id,
        "member-a",
        "EGP",
    )
    consent = wallet["copayConsent"]
    assert (consent["perClaimLimit"], consent["monthlyLimit"]) == ("100.00", "300.00")
    assert consent["setAt"] is not None
    history = ok(
        await gateway.client.get(f"{API}/wallets/{wallet_id}/transactions", headers=headers)
    )
    items = history["items"]
    assert history["nextCursor"] is None
    assert [t["type"] for t in items] == ["refund", "debit", "refund", "debit", "topup", "topup"]
    # the direct debit's partial refund names the debit and says why
    direct_refund, direct_debit = items[2], items[3]
    assert (direct_refund["debitId"], direct_refund["reason"]) == (
        direct_debit["transactionId"],
        "one item returned",
    )
    assert (direct_refund["amount"], direct_refund["balance"]) == ("15.00", "565.00")
    assert [t["position"] for t in items] == sorted((t["position"] for t in items), reverse=True)
    assert items[0]["balance"] == wallet["balance"]
    assert items[-1] == items[-1] | {"amount": "500.00", "balance": "500.00", "gateway": "fawry"}


async def test_pagination_over_120_claims_has_no_gaps_no_duplicates_and_a_stable_order(
    gateway: Gateway, tokens: Tokens
) -> None:
    admin = tokens.admin()
    card = created(
        await gateway.api.client.post(
            f"{API}/medcards",
            json={"userId": "member-many", "cardType": "gold", "monthlyLimit": "99999.00"},
            headers=admin,
        )
    )
    posted = set()
    for n in range(120):
        pharmacy = tokens.pharmacy() if n % 2 else tokens.pharmacy(OTHER_PHARMACY)
        answer = created(await claim(gateway.api, pharmacy, card["id"], f"rx-many-{n}", "1.00"))
        posted.add(answer["claimId"])
    await gateway.project_new()

    seen: list[dict[str, Any]] = []
    cursor: str | None = None
    pages = 0
    while True:
        query = f"?limit=7&cursor={cursor}" if cursor else "?limit=7"
        body = ok(
            await gateway.client.get(
                f"{API}/medcards/{card['id']}/claims{query}", headers=tokens.member("member-many")
            )
        )
        pages += 1
        seen.extend(body["items"])
        cursor = body["nextCursor"]
        if cursor is None:
            break
    assert pages == 18  # 17 full pages of 7 and one of 1
    ids = [c["claimId"] for c in seen]
    assert len(ids) == len(set(ids)) == 120
    assert set(ids) == posted
    keys = [(datetime.fromisoformat(c["claimedAt"]), c["claimId"]) for c in seen]
    assert keys == sorted(keys, reverse=True)
    whole = ok(
        await gateway.client.get(f"{API}/medcards/{card['id']}/claims?limit=100", headers=admin)
    )
    assert [c["claimId"] for c in whole["items"]] == ids[:100]


async def test_wallet_transactions_page_by_position(gateway: Gateway, tokens: Tokens) -> None:
    url = f"{API}/wallets/{gateway.world.wallet_a}/transactions"
    seen: list[int] = []
    cursor: str | None = None
    while True:
        suffix = f"&cursor={cursor}" if cursor else ""
        body = ok(await gateway.client.get(f"{url}?limit=2{suffix}", headers=tokens.ops()))
        seen.extend(t["position"] for t in body["items"])
        cursor = body["nextCursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 6  # two top-ups, two debits, two refunds
    assert seen == sorted(seen, reverse=True)


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("limit=0", "invalid_limit"),
        ("limit=101", "invalid_limit"),
        ("limit=ten", "invalid_limit"),
        ("cursor=not-a-cursor", "invalid_cursor"),
        ("cursor=WzFd", "invalid_cursor"),  # [1]: a well-formed cursor of the wrong kind
        ("minPosition=-1", "invalid_min_position"),
    ],
)
async def test_bad_paging_parameters_are_400_problems(
    gateway: Gateway, tokens: Tokens, query: str, code: str
) -> None:
    response = await gateway.client.get(
        f"{API}/medcards/{gateway.world.family_card}/claims?{query}", headers=tokens.admin()
    )
    assert_problem(response, 400, code)


async def test_a_cursor_with_characters_outside_its_alphabet_is_400(
    gateway: Gateway, tokens: Tokens
) -> None:
    # base64's lenient decoder skips such characters: the cursor would still name its page
    url = f"{API}/medcards/{gateway.world.family_card}/claims"
    cursor = ok(await gateway.client.get(f"{url}?limit=2", headers=tokens.admin()))["nextCursor"]
    assert ok(await gateway.client.get(f"{url}?cursor={cursor}", headers=tokens.admin()))
    for bad in (cursor + "%21", "%2E" + cursor, cursor[:4] + "%20" + cursor[4:]):
        response = await gateway.client.get(f"{url}?cursor={bad}", headers=tokens.admin())
        assert_problem(response, 400, "invalid_cursor")


async def test_unknown_paths_are_problems_too(gateway: Gateway, tokens: Tokens) -> None:
    response = await gateway.client.get(f"{API}/nothing-here", headers=tokens.admin())
    assert_problem(response, 404, "not_found")


async def test_an_items_days_supply_is_read_back(gateway: Gateway, tokens: Tokens) -> None:
    api, pharmacy = gateway.api, tokens.pharmacy()
    card = await issue_card(api, tokens.admin(), "days-supply-read")
    items = [
        {"drugCode": "D-9", "drugName": "Metformin", "quantity": 1, "unitPrice": "30.00",
         "daysSupply": 30},
        {"drugCode": "D-8", "drugName": "Panadol", "quantity": 1, "unitPrice": "20.00"},
    ]  # fmt: skip
    booked = created(await claim(api, pharmacy, card["id"], "rx-days", "50.00", items=items))
    await gateway.project_new()
    read = await gateway.client.get(f"{API}/claims/{booked['claimId']}", headers=pharmacy)
    assert [i["daysSupply"] for i in read.json()["items"]] == [30, None]
