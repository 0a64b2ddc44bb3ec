"""The member's consent to copayments paid from the wallet, through the write API (in-memory and
real PostgreSQL; the concurrency test runs two command-service processes' worth of state on one
database).

What a pharmacy can do with `payCopaymentFromWallet: true`: take a claim's whole copayment from
the wallet if the member consented to that much (per claim, per Cairo month) and the wallet
holds it, else nothing; and learn nothing more than "paid" or "declined".
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import orjson
import pytest

from tests.api.support import (
    API,
    Api,
    Tokens,
    claim,
    created,
    done,
    issue_card,
    open_wallet,
    refused,
    running_api,
    set_copay_consent,
    top_up,
)

# What differs between two claims on two cards whatever the wallet: their ids and times.
PER_CLAIM = ("claimId", "medcardId", "beneficiaryId", "claimedAt", "position")
WALLET_FIELDS = ("copaymentPaidFromWallet", "walletId", "reasons")


async def member_with_wallet(
    api: Api, tokens: Tokens, user: str, balance: str, consent: tuple[str, str] | None = None
) -> tuple[str, str]:
    """A gold card (10% copay, a limit high enough never to matter) and a wallet: (card, wallet)."""
    card = await issue_card(api, tokens.admin(), user, monthlyLimit="100000.00")
    wallet = await open_wallet(api, tokens.ops(), user)
    if Decimal(balance) > 0:
        created(await top_up(api, tokens.ops(), wallet["id"], balance, f"fawry-{user}"))
    if consent is not None:
        done(await set_copay_consent(api, tokens.member(user), wallet["id"], *consent))
    return card["id"], wallet["id"]


async def copay_claim(api: Api, tokens: Tokens, card: str, rx: str, total: str) -> dict[str, Any]:
    return created(
        await claim(api, tokens.pharmacy(), card, rx, total, payCopaymentFromWallet=True)
    )


def postings_total(events: list[Any]) -> Decimal:
    return sum(
        (Decimal(p["amount"]) for e in events for p in e.data.get("postings") or ()), Decimal(0)
    )


async def test_a_pharmacy_takes_no_more_than_the_member_consented_to(
    api: Api, tokens: Tokens
) -> None:
    card, wallet = await member_with_wallet(api, tokens, "u-consent", "1000.00")
    before = await copay_claim(api, tokens, card, "rx-before", "350.00")
    assert (before["copaymentPaidFromWallet"], before["reasons"][-1]) == (
        "0.00",
        "wallet_payment_declined",
    )

    consent = done(await set_copay_consent(api, tokens.member("u-consent"), wallet, "50", "100"))
    assert consent["eventType"] == "wallet.copay_consent_set"
    assert consent["copayConsent"] | {"setAt": None} == {
        "perClaimLimit": "50.00",
        "monthlyLimit": "100.00",
        "setAt": None,
    }

    # An inflated total asks for a copay over the per-claim limit: nothing, not 50 of it.
    paid = {}
    for rx, total in [("rx-1", "5000.00"), ("rx-2", "400.00"), ("rx-3", "500.00")]:
        paid[rx] = (await copay_claim(api, tokens, card, rx, total))["copaymentPaidFromWallet"]
    for rx, total in [("rx-4", "300.00"), ("rx-5", "100.00"), ("rx-6", "10.00")]:
        paid[rx] = (await copay_claim(api, tokens, card, rx, total))["copaymentPaidFromWallet"]
    # 40 + 50 = 90; 30 would pass 100 this month; 10 fits exactly; then nothing is left
    assert paid == {
        "rx-1": "0.00",
        "rx-2": "40.00",
        "rx-3": "50.00",
        "rx-4": "0.00",
        "rx-5": "10.00",
        "rx-6": "0.00",
    }

    stream = await api.stream(wallet)
    debited = [e for e in stream if e.event_type == "wallet.debited"]
    assert sum(Decimal(e.data["amount"]) for e in debited) == Decimal("100.00")
    assert stream[-1].data["balance"] == "900.00"
    declined = [e.data["reason"] for e in stream if e.event_type == "wallet.copay_declined"]
    assert declined == [
        "no_consent",
        "over_claim_limit",
        "over_monthly_limit",
        "over_monthly_limit",
    ]
    assert [e.version for e in stream] == list(range(1, len(stream) + 1))
    assert postings_total(await api.events()) == 0


async def test_the_pharmacys_answer_is_the_same_whatever_the_wallet_holds(
    api: Api, tokens: Tokens
) -> None:
    """No wallet, no consent, a limit, too little money: one answer, byte for byte."""
    cards: dict[str, str] = {}
    cards["no_wallet"] = (await issue_card(api, tokens.admin(), "u-none", monthlyLimit="100000"))[
        "id"
    ]
    cards["no_consent"], _ = await member_with_wallet(api, tokens, "u-nc", "1000.00")
    cards["insufficient"], _ = await member_with_wallet(
        api, tokens, "u-poor", "34.99", ("100.00", "500.00")
    )
    cards["over_claim"], _ = await member_with_wallet(
        api, tokens, "u-claim", "1000.00", ("34.99", "500.00")
    )
    # the month's allowance used up on the member's other card
    other, _ = await member_with_wallet(api, tokens, "u-month", "1000.00", ("50.00", "60.00"))
    assert (await copay_claim(api, tokens, other, "rx-other", "350.00"))[
        "copaymentPaidFromWallet"
    ] == "35.00"
    cards["over_month"] = (await issue_card(api, tokens.admin(), "u-month", monthlyLimit="100000"))[
        "id"
    ]

    answers = {}
    for cause, card in cards.items():
        response = await claim(
            api, tokens.pharmacy(), card, "rx-same", "350.00", payCopaymentFromWallet=True
        )
        assert response.status_code == 201, response.text
        answers[cause] = response.json()
    wallet_bytes = {orjson.dumps({k: a[k] for k in WALLET_FIELDS}) for a in answers.values()}
    assert wallet_bytes == {
        b'{"copaymentPaidFromWallet":"0.00","walletId":null,'
        b'"reasons":["covered_within_monthly_limit","wallet_payment_declined"]}'
    }
    rest = {
        orjson.dumps({k: v for k, v in a.items() if k not in PER_CLAIM}) for a in answers.values()
    }
    assert len(rest) == 1, rest


async def test_setting_the_consent_is_audited_on_the_wallet_stream(
    api: Api, tokens: Tokens
) -> None:
    _, wallet = await member_with_wallet(api, tokens, "u-audit", "20.00")
    done(await set_copay_consent(api, tokens.member("u-audit"), wallet, "10.00", "30.00"))
    done(await set_copay_consent(api, tokens.admin("support-7"), wallet, "0", "0"))
    stream = await api.stream(wallet)
    sets = [e for e in stream if e.event_type == "wallet.copay_consent_set"]
    assert [(e.version, e.data["per_claim_limit"], e.data["monthly_limit"]) for e in sets] == [
        (3, "10.00", "30.00"),
        (4, "0.00", "0.00"),
    ]
    assert [(e.metadata["actor"]["role"], e.metadata["actor"]["sub"]) for e in sets] == [
        ("member", "u-audit"),
        ("admin", "support-7"),
    ]
    assert all("postings" not in e.data and "balance_after" not in e.data for e in sets)


@pytest.mark.parametrize(
    ("per_claim", "monthly", "status", "code"),
    [
        ("60.00", "50.00", 422, "invalid_copay_consent"),
        ("-1.00", "50.00", 422, "validation_failed"),
        ("10.001", "50.00", 422, "validation_failed"),
        ("10.00", "10000000000.00", 422, "validation_failed"),
    ],
)
async def test_an_invalid_consent_is_refused_and_stores_nothing(
    api: Api, tokens: Tokens, per_claim: str, monthly: str, status: int, code: str
) -> None:
    _, wallet = await member_with_wallet(api, tokens, "u-bad", "0")
    before = await api.events()
    await refused(
        api,
        set_copay_consent(api, tokens.member("u-bad"), wallet, per_claim, monthly),
        status,
        code,
    )
    assert await api.events() == before


async def test_no_consent_for_a_wallet_that_does_not_exist(api: Api, tokens: Tokens) -> None:
    missing = "00000000-0000-4000-8000-000000000000"
    await refused(
        api, set_copay_consent(api, tokens.admin(), missing, "1", "1"), 404, "wallet_not_found"
    )


async def test_a_member_may_not_book_a_debit_as_a_claims_copayment(
    api: Api, tokens: Tokens
) -> None:
    _, wallet = await member_with_wallet(api, tokens, "u-forge", "50.00")
    await refused(
        api,
        api.client.post(
            f"{API}/wallets/{wallet}/debits",
            json={"amount": "5.00", "reference": "x", "purpose": "claim_copayment"},
            headers=tokens.member("u-forge"),
        ),
        422,
        "reserved_purpose",
    )


def version_conflicts(api: Api) -> int:
    conflicts: int = api.app.state.write_side.executor.version_conflicts
    return conflicts


@pytest.mark.integration
async def test_a_process_deciding_on_a_stale_wallet_is_caught_by_its_version(
    postgres_url: str, tokens: Tokens
) -> None:
    """Process two remembers the wallet from before process one's copays: its decision on
    that state (35 used, 35 more fits) must never commit; decided again, it is declined."""
    async with (
        running_api("postgres", postgres_url) as one,
        running_api("postgres", postgres_url) as two,
    ):
        card_a, wallet = await member_with_wallet(
            one, tokens, "u-stale", "1000.00", ("40.00", "200.00")
        )
        card_b = (await issue_card(one, tokens.admin(), "u-stale", monthlyLimit="100000"))["id"]
        first = await copay_claim(two, tokens, card_b, "rx-two-1", "350.00")
        assert first["copaymentPaidFromWallet"] == "35.00"
        for n in range(4):
            paid = await copay_claim(one, tokens, card_a, f"rx-one-{n}", "350.00")
            assert paid["copaymentPaidFromWallet"] == "35.00"  # 175 used now
        stale = await copay_claim(two, tokens, card_b, "rx-two-2", "350.00")
        assert version_conflicts(two) >= 1
        assert stale["copaymentPaidFromWallet"] == "0.00"  # 175 + 35 > 200
        stream = await one.stream(wallet)
        assert stream[-1].data["reason"] == "over_monthly_limit"
        assert sum(
            Decimal(e.data["amount"]) for e in stream if e.event_type == "wallet.debited"
        ) == Decimal("175.00")


@pytest.mark.integration
async def test_the_monthly_limit_holds_under_concurrent_claims_from_two_processes(
    postgres_url: str, tokens: Tokens
) -> None:
    """Two command services (two caches, no shared lock) claim on the member's two cards at
    once: the wallet's version check lets exactly as many copays through as the month allows."""
    async with (
        running_api("postgres", postgres_url) as one,
        running_api("postgres", postgres_url) as two,
    ):
        card_a, wallet = await member_with_wallet(
            one, tokens, "u-race", "10000.00", ("40.00", "200.00")
        )
        card_b = (await issue_card(one, tokens.admin(), "u-race", monthlyLimit="100000"))["id"]
        for api, card in ((one, card_a), (two, card_b)):  # warm: both hold the card and wallet
            await copay_claim(api, tokens, card, f"rx-warm-{card}", "1.00")  # 0.10 each
        jobs = []
        for n in range(20):
            api, card = (one, card_a) if n % 2 == 0 else (two, card_b)
            jobs.append(copay_claim(api, tokens, card, f"rx-race-{n}", "350.00"))
        answers = await asyncio.gather(*jobs)
        paid = [a["copaymentPaidFromWallet"] for a in answers]
        assert paid.count("35.00") == 5  # 0.20 + 5 x 35 = 175.20; a sixth would pass 200
        assert paid.count("0.00") == 15
        stream = await one.stream(wallet)
        assert [e.version for e in stream] == list(range(1, len(stream) + 1))
        debits = [e for e in stream if e.event_type == "wallet.debited"]
        assert sum(Decimal(e.data["amount"]) for e in debits) == Decimal("175.20")
        assert debits[-1].data["balance_after"] == "9824.80"
        declined = [e for e in stream if e.event_type == "wallet.copay_declined"]
        assert [e.data["reason"] for e in declined] == ["over_monthly_limit"] * 15
        assert postings_total(await one.events()) == 0
