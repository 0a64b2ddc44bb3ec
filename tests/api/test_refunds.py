"""Refunds of direct wallet debits through the API: in part or whole, never more in all than
the debit, repeated with an Idempotency-Key answered alike, and only of direct debits."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import httpx

from tests.api.support import (
    API,
    Api,
    Headers,
    Tokens,
    claim,
    created,
    done,
    issue_card,
    open_wallet,
    refused,
    set_copay_consent,
    top_up,
)


async def wallet_with_debit(
    api: Api, tokens: Tokens, user: str, amount: str = "50.00"
) -> tuple[str, str]:
    """A wallet topped up with 200.00 and debited `amount` by its member: (wallet, debit)."""
    wallet = await open_wallet(api, tokens.ops(), user)
    created(await top_up(api, tokens.ops(), wallet["id"], "200.00", f"fawry-{user}"))
    debit = created(
        await api.client.post(
            f"{API}/wallets/{wallet['id']}/debits",
            json={"amount": amount, "reference": f"order-{user}"},
            headers=tokens.member(user),
        )
    )
    return wallet["id"], debit["transactionId"]


def send_refund(api: Api, headers: Headers, wallet: str, debit: str, body: dict[str, Any]) -> Any:
    return api.client.post(
        f"{API}/wallets/{wallet}/debits/{debit}/refund", json=body, headers=headers
    )


async def test_a_partial_refund_then_the_rest_then_none_more(api: Api, tokens: Tokens) -> None:
    wallet, debit = await wallet_with_debit(api, tokens, "r-partial")
    first = created(
        await send_refund(
            api, tokens.admin(), wallet, debit, {"amount": "20.00", "reason": "one returned"}
        )
    )
    assert (first["type"], first["amount"], first["balance"]) == ("refund", "20.00", "170.00")
    assert (first["debitId"], first["reason"], first["walletId"]) == (debit, "one returned", wallet)
    assert first["eventType"] == "wallet.refunded"

    too_much = await refused(
        api,
        send_refund(api, tokens.ops(), wallet, debit, {"amount": "30.01", "reason": "x"}),
        409,
        "refund_exceeds_debit",
    )
    assert "30.00 EGP" in too_much["detail"]
    # No amount: whatever of the debit is left.
    rest = created(await send_refund(api, tokens.ops(), wallet, debit, {"reason": "cancelled"}))
    assert (rest["amount"], rest["balance"]) == ("30.00", "200.00")
    for body in ({"amount": "0.01", "reason": "x"}, {"amount": None, "reason": "x"}):
        none_left = await refused(
            api, send_refund(api, tokens.ops(), wallet, debit, body), 409, "refund_exceeds_debit"
        )
        assert "0.00 EGP" in none_left["detail"]

    stream = await api.stream(wallet)
    assert [(e.event_type, e.data["amount"], e.data["balance_after"]) for e in stream[1:]] == [
        ("wallet.topped_up", "200.00", "200.00"),
        ("wallet.debited", "50.00", "150.00"),
        ("wallet.refunded", "20.00", "170.00"),
        ("wallet.refunded", "30.00", "200.00"),
    ]
    debited, *refunds = stream[2:]
    for refund, body in zip(refunds, (first, rest), strict=True):
        assert (refund.data["debit_id"], refund.data["refund_id"]) == (debit, body["transactionId"])
        # the debit's legs reversed: the counterparty pays back what the wallet paid
        legs = {p["account"]: Decimal(p["amount"]) for p in refund.data["postings"]}
        paid = {p["account"]: Decimal(p["amount"]) for p in debited.data["postings"]}
        share = Decimal(refund.data["amount"]) / Decimal(debited.data["amount"])
        assert legs == {account: -amount * share for account, amount in paid.items()}
        assert refund.metadata["actor"]["role"] in ("admin", "ops")


async def test_a_refund_repeated_with_its_idempotency_key_is_answered_alike(
    api: Api, tokens: Tokens
) -> None:
    wallet, debit = await wallet_with_debit(api, tokens, "r-retry")
    headers = {**tokens.ops(), "Idempotency-Key": "refund-r-retry-1"}
    body = {"amount": "50.00", "reason": "order cancelled"}
    first = await send_refund(api, headers, wallet, debit, body)
    assert first.status_code == 201, first.text
    count = await api.event_count()

    # The debit is wholly refunded now, yet the retry gets the first answer, not a refusal.
    again = await send_refund(api, headers, wallet, debit, body)
    assert again.status_code == 201, again.text
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    assert await api.event_count() == count

    other_key = {**tokens.ops(), "Idempotency-Key": "refund-r-retry-2"}
    await refused(
        api, send_refund(api, other_key, wallet, debit, body), 409, "refund_exceeds_debit"
    )
    await refused(
        api,
        send_refund(api, headers, wallet, debit, {**body, "amount": "1.00"}),
        422,
        "idempotency_key_reused",
    )
    assert [e.event_type for e in await api.stream(wallet)].count("wallet.refunded") == 1


async def test_only_a_direct_debit_of_this_wallet_is_refunded(api: Api, tokens: Tokens) -> None:
    wallet, debit = await wallet_with_debit(api, tokens, "r-kinds")
    card = await issue_card(api, tokens.admin(), "r-kinds")
    done(await set_copay_consent(api, tokens.member("r-kinds"), wallet, "50.00", "100.00"))
    paid = created(
        await claim(api, tokens.pharmacy(), card["id"], "rx-r-kinds", "350.00",
                    payCopaymentFromWallet=True)
    )  # fmt: skip
    assert (paid["copaymentPaidFromWallet"], paid["walletId"]) == ("35.00", wallet)
    topped = created(await top_up(api, tokens.ops(), wallet, "5.00", "fawry-r-kinds-2"))
    body = {"reason": "x"}
    ops = tokens.ops()

    # A claim's copayment debit carries the claim's id; its reversal is what refunds it.
    copay = await refused(
        api, send_refund(api, ops, wallet, paid["claimId"], body), 422, "not_a_direct_debit"
    )
    assert "revers" in copay["detail"]
    top = await refused(
        api,
        send_refund(api, ops, wallet, topped["transactionId"], body),
        422,
        "not_a_direct_debit",
    )
    assert "top-up" in top["detail"]
    await refused(
        api, send_refund(api, ops, wallet, str(uuid.uuid4()), body), 404, "debit_not_found"
    )
    other, _ = await wallet_with_debit(api, tokens, "r-kinds-other")
    await refused(api, send_refund(api, ops, other, debit, body), 404, "debit_not_found")
    await refused(
        api, send_refund(api, ops, str(uuid.uuid4()), debit, body), 404, "wallet_not_found"
    )
    # ... and the direct debit itself still is.
    created(await send_refund(api, ops, wallet, debit, body))


async def test_the_member_who_debited_may_not_refund(api: Api, tokens: Tokens) -> None:
    wallet, debit = await wallet_with_debit(api, tokens, "r-member")
    member = tokens.member("r-member")
    problem = await refused(
        api,
        send_refund(api, member, wallet, debit, {"reason": "changed my mind"}),
        403,
        "forbidden",
    )
    assert "member" in problem["detail"]


async def test_a_refund_reason_is_required_and_checked(api: Api, tokens: Tokens) -> None:
    wallet, debit = await wallet_with_debit(api, tokens, "r-reason")
    for body, field in (
        ({"amount": "1.00"}, "reason"),
        ({"amount": "1.00", "reason": "   "}, "reason"),
        ({"amount": "1.00", "reason": "x" * 501}, "reason"),
        ({"amount": "-1.00", "reason": "x"}, "amount"),
        ({"amount": "1.001", "reason": "x"}, "amount"),
        ({"amount": 0, "reason": "x"}, "amount"),
    ):
        response: httpx.Response = await send_refund(api, tokens.ops(), wallet, debit, body)
        assert response.status_code == 422, (body, response.text)
        problem = response.json()
        assert problem["code"] == "validation_failed"
        assert [e["field"] for e in problem["errors"]] == [field], (body, problem)
    assert [e.event_type for e in await api.stream(wallet)].count("wallet.refunded") == 0
