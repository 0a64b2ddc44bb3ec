"""Prescription claims and reversals through the API (docs/design.md §6)."""

from __future__ import annotations

import uuid
from decimal import Decimal

from tests.api.support import (
    API,
    OTHER_PHARMACY,
    PHARMACY,
    Api,
    Tokens,
    claim,
    created,
    done,
    issue_card,
    open_wallet,
    refused,
    repeat_of,
    set_copay_consent,
    top_up,
)


async def test_seed_flow_gold_card_and_first_claim(api: Api, tokens: Tokens) -> None:
    """The seed's E2E: gold card, limit 5000, rx-test-1 for 350.00."""
    card = await issue_card(api, tokens.admin(), "test-user-1", monthlyLimit=5000)
    answer = created(
        await api.client.post(
            f"{API}/medcards/{card['id']}/claims/prescriptions",
            json={"prescriptionId": "rx-test-1", "totalAmount": 350.00},
            headers=tokens.pharmacy(),
        )
    )
    assert answer["decision"] == "approved"
    assert answer["reasons"] == ["covered_within_monthly_limit"]
    assert answer["totalAmount"] == "350.00"
    assert answer["coveredAmount"] == "315.00"
    assert answer["copaymentAmount"] == "35.00"
    assert answer["remainingMonthlyLimit"] == "4685.00"
    assert answer["monthlyLimit"] == "5000.00"
    assert answer["pharmacyId"] == PHARMACY
    assert answer["medcardId"] == card["id"]
    assert answer["version"] == 2
    assert answer["position"] > card["position"]

    stored = await api.events()
    assert [(str(e.aggregate_id), e.event_type, e.version) for e in stored] == [
        (card["id"], "medcard.issued", 1),
        (card["id"], "medcard.claim_adjudicated", 2),
    ]
    assert [e.position for e in stored] == [card["position"], answer["position"]]
    assert stored[1].data["covered_amount"] == "315.00"
    assert stored[1].metadata["actor"]["pharmacy_id"] == PHARMACY


async def test_claim_with_items_splits_the_covered_amount(api: Api, tokens: Tokens) -> None:
    card = await issue_card(api, tokens.admin(), "u-items", card_type="silver")  # copay 20%
    answer = created(
        await claim(
            api,
            tokens.pharmacy(),
            card["id"],
            "rx-items",
            "100.00",
            items=[
                {"drugCode": "D-1", "drugName": "Augmentin", "quantity": 3, "unitPrice": "11.11"},
                {"drugCode": "D-2", "drugName": "Panadol", "quantity": 1, "unitPrice": "66.67"},
            ],
        )
    )
    assert (answer["coveredAmount"], answer["copaymentAmount"]) == ("80.00", "20.00")
    items = answer["items"]
    assert [i["totalPrice"] for i in items] == ["33.33", "66.67"]
    assert sum(Decimal(i["coveredAmount"]) for i in items) == Decimal(answer["coveredAmount"])
    assert sum(Decimal(i["copaymentAmount"]) for i in items) == Decimal(answer["copaymentAmount"])
    for item in items:
        assert Decimal(item["coveredAmount"]) + Decimal(item["copaymentAmount"]) == Decimal(
            item["totalPrice"]
        )


async def test_items_that_do_not_sum_to_the_total_are_refused(api: Api, tokens: Tokens) -> None:
    card = await issue_card(api, tokens.admin(), "u-mismatch")
    await refused(
        api,
        claim(
            api,
            tokens.pharmacy(),
            card["id"],
            "rx-mismatch",
            "100.00",
            items=[{"drugCode": "D-1", "drugName": "X", "quantity": 2, "unitPrice": "49.99"}],
        ),
        422,
        "items_total_mismatch",
    )


async def test_claim_on_a_suspended_card_is_a_recorded_rejection(api: Api, tokens: Tokens) -> None:
    card = await issue_card(api, tokens.admin(), "u-susp")
    done(await api.client.post(f"{API}/medcards/{card['id']}/suspend", headers=tokens.ops()))
    answer = created(await claim(api, tokens.pharmacy(), card["id"], "rx-susp", "350.00"))
    assert answer["decision"] == "rejected"
    assert answer["reasons"] == ["card_suspended"]
    assert (answer["coveredAmount"], answer["copaymentAmount"]) == ("0.00", "350.00")
    assert answer["remainingMonthlyLimit"] == "5000.00"
    assert [e.event_type for e in await api.stream(card["id"])][-1] == "medcard.claim_adjudicated"


async def test_claim_for_a_beneficiary_not_on_the_card_is_rejected(
    api: Api, tokens: Tokens
) -> None:
    card = await issue_card(api, tokens.admin(), "u-benef")
    answer = created(
        await claim(
            api, tokens.pharmacy(), card["id"], "rx-b", "10.00", beneficiaryId=str(uuid.uuid4())
        )
    )
    assert (answer["decision"], answer["reasons"]) == ("rejected", ["beneficiary_not_on_card"])


async def test_same_prescription_same_body_replays_the_original(api: Api, tokens: Tokens) -> None:
    card = await issue_card(api, tokens.admin(), "u-dup")
    first = await claim(api, tokens.pharmacy(), card["id"], "rx-dup", "350.00")
    original = created(first)
    assert "idempotent-replayed" not in first.headers
    count = await api.event_count()

    again = await claim(api, tokens.pharmacy(), card["id"], "rx-dup", "350.00")
    assert again.status_code == 200, again.text
    assert again.headers["idempotent-replayed"] == "true"
    replayed = again.json()
    assert replayed["claimId"] == original["claimId"]
    assert replayed["position"] == original["position"]
    assert replayed["version"] == original["version"]
    # the same answer, but for NCPDP's word for a repeat: D, duplicate of a paid claim
    assert replayed == repeat_of(original)
    assert replayed["ncpdp"]["transactionStatus"] == "D"
    assert await api.event_count() == count

    await refused(
        api,
        claim(api, tokens.pharmacy(), card["id"], "rx-dup", "351.00"),
        409,
        "duplicate_prescription",
    )
    # Another pharmacy presenting the same prescription is a different request, too.
    await refused(
        api,
        claim(api, tokens.pharmacy(OTHER_PHARMACY), card["id"], "rx-dup", "350.00"),
        409,
        "duplicate_prescription",
    )


async def test_same_prescription_retried_under_a_new_idempotency_key_replays(
    api: Api, tokens: Tokens
) -> None:
    """A pharmacy system that mints a fresh Idempotency-Key per attempt still gets the original
    decision back (one charge per prescription), not an error."""
    card = await issue_card(api, tokens.admin(), "u-dup-key")
    pharmacy = tokens.pharmacy()
    original = created(
        await claim(api, {**pharmacy, "Idempotency-Key": "attempt-1"}, card["id"], "rx-k", "90.00")
    )
    count = await api.event_count()
    again = await claim(
        api, {**pharmacy, "Idempotency-Key": "attempt-2"}, card["id"], "rx-k", "90.00"
    )
    assert again.status_code == 200, (again.status_code, again.text)
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json()["claimId"] == original["claimId"]
    assert again.json()["position"] == original["position"]
    assert await api.event_count() == count


async def test_reversal_restores_the_benefit(api: Api, tokens: Tokens) -> None:
    card = await issue_card(api, tokens.admin(), "u-rev")
    charged = created(await claim(api, tokens.pharmacy(), card["id"], "rx-rev", "350.00"))
    assert charged["remainingMonthlyLimit"] == "4685.00"
    url = f"{API}/medcards/{card['id']}/claims/{charged['claimId']}/reversal"
    reversed_ = done(
        await api.client.post(url, json={"reason": "returned"}, headers=tokens.pharmacy())
    )
    assert reversed_["status"] == "reversed"
    assert reversed_["claimId"] == charged["claimId"]
    assert reversed_["restoredAmount"] == "315.00"
    assert reversed_["remainingMonthlyLimit"] == "5000.00"
    assert reversed_["position"] > charged["position"]

    await refused(api, api.client.post(url, headers=tokens.admin()), 409, "claim_already_reversed")
    # The restored benefit is really there: the next claim sees the full limit.
    nxt = created(await claim(api, tokens.pharmacy(), card["id"], "rx-rev-2", "100.00"))
    assert nxt["remainingMonthlyLimit"] == "4910.00"
    assert [e.event_type for e in await api.stream(card["id"])] == [
        "medcard.issued",
        "medcard.claim_adjudicated",
        "medcard.claim_reversed",
        "medcard.claim_adjudicated",
    ]


async def test_a_pharmacy_cannot_reverse_another_pharmacys_claim(api: Api, tokens: Tokens) -> None:
    card = await issue_card(api, tokens.admin(), "u-other-ph")
    charged = created(await claim(api, tokens.pharmacy(PHARMACY), card["id"], "rx-o", "200.00"))
    url = f"{API}/medcards/{card['id']}/claims/{charged['claimId']}/reversal"
    await refused(
        api, api.client.post(url, headers=tokens.pharmacy(OTHER_PHARMACY)), 403, "forbidden"
    )
    assert done(await api.client.post(url, headers=tokens.pharmacy(PHARMACY)))["status"] == (
        "reversed"
    )


async def test_a_rejected_claim_cannot_be_reversed(api: Api, tokens: Tokens) -> None:
    card = await issue_card(api, tokens.admin(), "u-rej")
    done(await api.client.post(f"{API}/medcards/{card['id']}/suspend", headers=tokens.admin()))
    rejected = created(await claim(api, tokens.pharmacy(), card["id"], "rx-rej", "10.00"))
    await refused(
        api,
        api.client.post(
            f"{API}/medcards/{card['id']}/claims/{rejected['claimId']}/reversal",
            headers=tokens.admin(),
        ),
        409,
        "claim_not_reversible",
    )


async def test_claim_paying_copayment_from_wallet_is_one_atomic_write(
    api: Api, tokens: Tokens
) -> None:
    card = await issue_card(api, tokens.admin(), "u-wallet")
    wallet = await open_wallet(api, tokens.ops(), "u-wallet")
    created(await top_up(api, tokens.ops(), wallet["id"], "100.00", "fawry-w-1"))
    done(await set_copay_consent(api, tokens.member("u-wallet"), wallet["id"], "50.00", "100.00"))
    before = await api.events()

    answer = created(
        await claim(
            api,
            {**tokens.pharmacy(), "X-Correlation-ID": "corr-wallet-claim"},
            card["id"],
            "rx-wallet",
            "350.00",
            payCopaymentFromWallet=True,
        )
    )
    assert answer["decision"] == "approved"
    assert answer["copaymentAmount"] == "35.00"
    assert answer["copaymentPaidFromWallet"] == "35.00"
    assert answer["walletId"] == wallet["id"]
    assert "copayment_paid_from_wallet" in answer["reasons"]

    after = await api.events()
    new = after[len(before) :]
    assert after[: len(before)] == before
    assert sorted((e.aggregate_type, e.event_type, e.version) for e in new) == [
        ("medcard", "medcard.claim_adjudicated", 2),
        ("wallet", "wallet.debited", 4),
    ]
    by_type = {e.aggregate_type: e for e in new}
    assert str(by_type["medcard"].aggregate_id) == card["id"]
    assert str(by_type["wallet"].aggregate_id) == wallet["id"]
    assert {e.metadata["correlation_id"] for e in new} == {"corr-wallet-claim"}
    assert by_type["wallet"].data["amount"] == "35.00"
    if api.backend == "postgres":
        # Both streams advanced in one database transaction.
        assert by_type["medcard"].transaction_id == by_type["wallet"].transaction_id
        assert by_type["medcard"].transaction_id is not None

    # The wallet really holds 65.00 now.
    await refused(
        api,
        api.client.post(
            f"{API}/wallets/{wallet['id']}/debits",
            json={"amount": "65.01", "reference": "order-1"},
            headers=tokens.admin(),
        ),
        409,
        "insufficient_funds",
    )

    # Reversing the claim refunds the copayment to the wallet, atomically as well.
    reversal = done(
        await api.client.post(
            f"{API}/medcards/{card['id']}/claims/{answer['claimId']}/reversal",
            headers=tokens.pharmacy(),
        )
    )
    assert reversal["walletRefund"] == "35.00"
    refunded = [e for e in await api.stream(wallet["id"]) if e.event_type == "wallet.refunded"]
    assert len(refunded) == 1
    assert refunded[0].data["amount"] == "35.00"
    emptied = created(
        await api.client.post(
            f"{API}/wallets/{wallet['id']}/debits",
            json={"amount": "100.00", "reference": "order-2"},
            headers=tokens.admin(),
        )
    )
    assert emptied["balance"] == "0.00"


async def test_claim_wanting_the_wallet_without_enough_in_it_still_adjudicates(
    api: Api, tokens: Tokens
) -> None:
    card = await issue_card(api, tokens.admin(), "u-poor")
    wallet = await open_wallet(api, tokens.ops(), "u-poor")
    created(await top_up(api, tokens.ops(), wallet["id"], "10.00", "fawry-p-1"))
    done(await set_copay_consent(api, tokens.member("u-poor"), wallet["id"], "50.00", "100.00"))
    answer = created(
        await claim(
            api, tokens.pharmacy(), card["id"], "rx-poor", "350.00", payCopaymentFromWallet=True
        )
    )
    assert answer["decision"] == "approved"
    assert answer["copaymentPaidFromWallet"] == "0.00"
    assert answer["reasons"] == ["covered_within_monthly_limit", "wallet_payment_declined"]
    stream = await api.stream(wallet["id"])
    assert [e.event_type for e in stream] == [
        "wallet.opened",
        "wallet.topped_up",
        "wallet.copay_consent_set",
        "wallet.copay_declined",
    ]
    assert stream[-1].data["reason"] == "insufficient_funds"


async def test_the_monthly_limit_caps_coverage(api: Api, tokens: Tokens) -> None:
    card = await issue_card(api, tokens.admin(), "u-cap", card_type="silver")  # 2000, 20%
    first = created(await claim(api, tokens.pharmacy(), card["id"], "rx-c1", "2400.00"))
    assert (first["decision"], first["coveredAmount"]) == ("approved", "1920.00")
    second = created(await claim(api, tokens.pharmacy(), card["id"], "rx-c2", "200.00"))
    assert second["decision"] == "partially_approved"
    assert (second["coveredAmount"], second["copaymentAmount"]) == ("80.00", "120.00")
    assert second["remainingMonthlyLimit"] == "0.00"
    third = created(await claim(api, tokens.pharmacy(), card["id"], "rx-c3", "50.00"))
    assert (third["decision"], third["reasons"]) == ("rejected", ["monthly_limit_exhausted"])
