"""Benefit holds in the read model (medcard_holds) and the card read: the month's benefit
less its open holds, the open holds listed; captured and voided ones closed."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.api.support import API, Tokens, claim, created, done, issue_card
from tests.gateway.conftest import Gateway
from tests.gateway.test_graphql import gql

pytestmark = pytest.mark.integration


async def test_the_card_read_shows_open_holds_and_the_benefit_left(
    gateway: Gateway, tokens: Tokens
) -> None:
    api, pharmacy = gateway.api, tokens.pharmacy()
    card = await issue_card(api, tokens.admin(), "holds-read", monthlyLimit="1000.00")
    card_id = card["id"]

    async def hold(amount: str, rx: str) -> dict[str, str]:
        answer = await api.client.post(
            f"{API}/medcards/{card_id}/holds",
            json={"amount": amount, "prescriptionId": rx},
            headers=pharmacy,
        )
        return created(answer)

    kept = await hold("100.00", "rx-k")
    captured = await hold("200.00", "rx-c")
    voided = await hold("300.00", "rx-v")
    claimed = created(
        await claim(api, pharmacy, card_id, "rx-c", "100.00", holdId=captured["holdId"])
    )
    done(await api.client.post(f"{API}/medcards/{card_id}/holds/{voided['holdId']}/void",
                               headers=pharmacy))  # fmt: skip
    await gateway.project_new()

    read = (await gateway.client.get(f"{API}/medcards/{card_id}", headers=tokens.admin())).json()
    spent = Decimal(claimed["coveredAmount"])  # 90.00
    assert read["currentMonthSpent"] == str(spent)
    assert read["heldThisMonth"] == "100.00"
    assert Decimal(read["remainingThisMonth"]) == Decimal("1000.00") - spent - Decimal("100.00")
    assert [h["holdId"] for h in read["openHolds"]] == [kept["holdId"]]
    assert read["openHolds"][0]["amount"] == "100.00"
    assert read["openHolds"][0]["expiresAt"] == kept["expiresAt"]

    # GraphQL: the same card read, the same figures
    data = await gql(
        gateway,
        tokens.admin(),
        "query($id: ID!) { medcard(id: $id) { heldThisMonth remainingThisMonth"
        " openHolds { holdId amount prescriptionId pharmacyId expiresAt } } }",
        id=card_id,
    )
    assert not data.get("errors"), data
    medcard = data["data"]["medcard"]
    assert (medcard["heldThisMonth"], medcard["remainingThisMonth"]) == (
        read["heldThisMonth"],
        read["remainingThisMonth"],
    )
    assert medcard["openHolds"] == [
        {k: h[k] for k in ("holdId", "amount", "prescriptionId", "pharmacyId", "expiresAt")}
        for h in read["openHolds"]
    ]

    async with gateway.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT id::text, status, claim_id::text, used_amount FROM medcard_holds"
            " WHERE medcard_id = %s ORDER BY placed_at",
            (card_id,),
        )
        rows = await cur.fetchall()
    assert rows == [
        (kept["holdId"], "open", None, None),
        (captured["holdId"], "captured", claimed["claimId"], Decimal("90.00")),
        (voided["holdId"], "voided", None, None),
    ]
