"""The copay consent from the member's app (GraphQL) to the read models and back (real
PostgreSQL): the member sets it and reads it, sees each declined copayment and why on their
statement; the pharmacy's reads of the same claims say only that the wallet declined."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.api.support import (
    API,
    Tokens,
    claim,
    created,
    issue_card,
    open_wallet,
    top_up,
)
from tests.gateway.conftest import Gateway
from tests.gateway.test_graphql_mutations import gql, only_error
from tests.gateway.test_openapi import _conforms

pytestmark = pytest.mark.integration

SET = """
mutation($wallet: ID!, $input: CopayConsentInput!, $key: String) {
  setCopayConsent(walletId: $wallet, input: $input, idempotencyKey: $key) {
    position version eventType replayed walletId
    copayConsent { perClaimLimit monthlyLimit setAt }
  }
}"""
READ = """
query($id: ID!, $p: Long) {
  wallet(id: $id, minPosition: $p) {
    balance version copayConsent { perClaimLimit monthlyLimit setAt }
    transactions(first: 10) { edges { node { type amount balance reference reason } } }
  }
}"""
WALLET_ROUTE = f"{API}/wallets/{{wallet_id}}"
PAGE_ROUTE = f"{API}/wallets/{{wallet_id}}/transactions"


@pytest.fixture(scope="module")
async def document(gateway: Gateway) -> dict[str, Any]:
    """The gateway's /openapi.json, which real answers are held to."""
    spec: dict[str, Any] = (await gateway.client.get("/openapi.json")).json()
    return spec


async def member_wallet(gw: Gateway, tokens: Tokens, user: str) -> tuple[str, str]:
    card = await issue_card(gw.api, tokens.admin(), user)
    wallet = await open_wallet(gw.api, tokens.ops(), user)
    assert (await top_up(gw.api, tokens.ops(), wallet["id"], "100.00", f"fawry-{user}")).is_success
    return card["id"], wallet["id"]


async def test_the_member_sets_the_consent_from_the_app_and_reads_it_back(
    gateway: Gateway, writer: httpx.AsyncClient, tokens: Tokens, document: dict[str, Any]
) -> None:
    _, wallet = await member_wallet(gateway, tokens, "app-consent")
    member = tokens.member("app-consent")
    limits = {"perClaimLimit": "25.00", "monthlyLimit": "80.00"}
    body = await gql(writer, member, SET, wallet=wallet, input=limits, key="consent-1")
    assert "errors" not in body, body
    written = body["data"]["setCopayConsent"]
    assert (written["eventType"], written["version"], written["walletId"]) == (
        "wallet.copay_consent_set",
        3,
        wallet,
    )
    assert written["copayConsent"] | {"setAt": None} == {**limits, "setAt": None}
    again = await gql(writer, member, SET, wallet=wallet, input=limits, key="consent-1")
    assert again["data"]["setCopayConsent"] == written | {"replayed": True}

    await gateway.project_new()
    read = await gql(writer, member, READ, id=wallet, p=written["position"])
    assert read["data"]["wallet"]["copayConsent"] == written["copayConsent"]
    rest = _conforms(
        document,
        WALLET_ROUTE,
        await gateway.client.get(
            f"{API}/wallets/{wallet}?minPosition={written['position']}", headers=member
        ),
    )
    assert rest["copayConsent"] == written["copayConsent"]
    assert rest["version"] == 3


async def test_a_fresh_wallet_reads_as_no_consent(
    gateway: Gateway, tokens: Tokens, document: dict[str, Any]
) -> None:
    _, wallet = await member_wallet(gateway, tokens, "app-fresh")
    await gateway.project_new()
    url = WALLET_ROUTE.replace("{wallet_id}", wallet)
    body = _conforms(
        document, WALLET_ROUTE, await gateway.client.get(url, headers=tokens.member("app-fresh"))
    )
    assert body["copayConsent"] == {"perClaimLimit": "0.00", "monthlyLimit": "0.00", "setAt": None}


async def test_only_the_member_or_admin_may_set_it(
    gateway: Gateway, writer: httpx.AsyncClient, tokens: Tokens
) -> None:
    _, wallet = await member_wallet(gateway, tokens, "app-owner")
    limits = {"perClaimLimit": "10.00", "monthlyLimit": "10.00"}
    before = await gateway.api.event_count()
    for headers, code in [(tokens.ops(), "forbidden"), (tokens.pharmacy(), "forbidden")]:
        refused = only_error(
            await gql(writer, headers, SET, wallet=wallet, input=limits), "setCopayConsent"
        )
        assert (refused["code"], refused["problem"]) == ("FORBIDDEN", code)
    stranger = only_error(
        await gql(writer, tokens.member("app-stranger"), SET, wallet=wallet, input=limits),
        "setCopayConsent",
    )
    assert (stranger["code"], stranger["problem"]) == ("NOT_FOUND", "wallet_not_found")
    invalid = only_error(
        await gql(
            writer,
            tokens.member("app-owner"),
            SET,
            wallet=wallet,
            input={"perClaimLimit": "20.00", "monthlyLimit": "10.00"},
        ),
        "setCopayConsent",
    )
    assert (invalid["code"], invalid["problem"]) == ("BAD_USER_INPUT", "invalid_copay_consent")
    assert await gateway.api.event_count() == before
    admin = await gql(writer, tokens.admin(), SET, wallet=wallet, input=limits)
    assert "errors" not in admin, admin


async def test_the_member_sees_why_a_copay_was_declined_and_the_pharmacy_does_not(
    gateway: Gateway, writer: httpx.AsyncClient, tokens: Tokens, document: dict[str, Any]
) -> None:
    card, wallet = await member_wallet(gateway, tokens, "app-declined")
    member = tokens.member("app-declined")
    limits = {"perClaimLimit": "30.00", "monthlyLimit": "50.00"}
    assert "errors" not in await gql(writer, member, SET, wallet=wallet, input=limits)
    pharmacy = tokens.pharmacy()
    answers = [
        created(await claim(gateway.api, pharmacy, card, rx, total, payCopaymentFromWallet=True))
        for rx, total in [("rx-d1", "400.00"), ("rx-d2", "300.00"), ("rx-d3", "300.00")]
    ]
    # 40 > 30 per claim; 30 paid; 30 + 30 > 50 this month
    assert [a["copaymentPaidFromWallet"] for a in answers] == ["0.00", "30.00", "0.00"]
    last = await gateway.project_new()

    read = await gql(writer, member, READ, id=wallet, p=last)
    nodes = [e["node"] for e in read["data"]["wallet"]["transactions"]["edges"]]
    assert nodes[:3] == [
        {
            "type": "declined",
            "amount": "30.00",
            "balance": "70.00",
            "reference": answers[2]["claimId"],
            "reason": "over_monthly_limit",
        },
        {
            "type": "debit",
            "amount": "30.00",
            "balance": "70.00",
            "reference": answers[1]["claimId"],
            "reason": None,
        },
        {
            "type": "declined",
            "amount": "40.00",
            "balance": "100.00",
            "reference": answers[0]["claimId"],
            "reason": "over_claim_limit",
        },
    ]
    page = _conforms(
        document,
        PAGE_ROUTE,
        await gateway.client.get(f"{API}/wallets/{wallet}/transactions", headers=member),
    )
    assert [t["type"] for t in page["items"]] == ["declined", "debit", "declined", "topup"]

    for answer in (answers[0], answers[2]):
        seen = await gateway.client.get(f"{API}/claims/{answer['claimId']}", headers=pharmacy)
        assert seen.status_code == 200, seen.text
        body = seen.json()
        assert (body["copaymentPaidFromWallet"], body["walletId"]) == ("0.00", None)
        assert body["reasons"] == ["covered_within_monthly_limit", "wallet_payment_declined"]
        for detail in ("over_", "insufficient", "consent", "balance"):
            assert detail not in seen.text
