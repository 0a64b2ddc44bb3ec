"""Prescription claim adjudication (docs/design.md §6)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from uuid import uuid4

import pytest

from domain.errors import Kind
from domain.events import ClaimAdjudicated, Posting
from domain.medcard.claims import adjudicate
from domain.medcard.commands import (
    ActivateCard,
    AddBeneficiary,
    CancelCard,
    ExpireCard,
    RemoveBeneficiary,
    SuspendCard,
)
from tests.unit.builders import (
    PHARMACY,
    T0,
    Ledger,
    claim,
    issue,
    item,
    person,
    refused,
    utc,
)

D = Decimal


def adjudicated(ledger: Ledger, total: str = "350.00", **overrides: object) -> ClaimAdjudicated:
    decision = ledger.claim(claim(total, **overrides))
    assert not decision.replayed
    assert decision.card_events == [decision.claim]
    return decision.claim


def test_seed_case_gold_card_350() -> None:
    ledger = Ledger.with_card(issue(monthly_limit=D("5000")))
    command = claim("350.00", prescription_id="rx-test-1")
    decision = ledger.claim(command)
    event = decision.claim
    assert decision.wallet_events == []
    assert event.claim_id == command.claim_id
    assert event.prescription_id == "rx-test-1"
    assert event.pharmacy_id == PHARMACY
    assert event.beneficiary_id == ledger.state.primary_beneficiary_id
    assert event.decision == "approved"
    assert event.reasons == ("covered_within_monthly_limit",)
    assert (event.total_amount, event.covered_amount, event.copayment_amount) == (
        D("350.00"),
        D("315.00"),
        D("35.00"),
    )
    assert event.copay_percent == D("10.00")
    assert event.month == "2026-01"
    assert event.monthly_limit == D("5000.00")
    assert event.month_spent_after == D("315.00")
    assert event.remaining_after == D("4685.00")
    assert event.wallet_id is None
    assert event.copayment_paid_from_wallet == D("0.00")
    assert event.claimed_at == T0
    assert event.items == ()
    assert event.postings == (
        Posting(account="insurer:healthpay", amount=D("-315.00")),
        Posting(account=f"pharmacy:{PHARMACY}", amount=D("315.00")),
    )
    assert ledger.state.spent_in("2026-01") == D("315.00")
    assert ledger.state.remaining_in("2026-01") == D("4685.00")


def test_the_insurance_provider_pays() -> None:
    ledger = Ledger.with_card(issue(insurance_provider="misr"))
    assert adjudicated(ledger).postings[0].account == "insurer:misr"


@pytest.mark.parametrize(
    ("card_type", "total", "copay"),
    [
        ("gold", "0.05", "0.01"),  # 10% of 0.05 = 0.005 -> 0.01
        ("silver", "10.13", "2.03"),  # 20% of 10.13 = 2.026 -> 2.03
        ("platinum", "0.50", "0.03"),  # 5% of 0.50 = 0.025 -> 0.03
        ("gold", "0.04", "0.00"),  # 0.004 -> 0.00
        ("gold", "0.01", "0.00"),
    ],
)
def test_copay_rounds_half_up_to_the_cent(card_type: str, total: str, copay: str) -> None:
    event = adjudicated(Ledger.with_card(issue(card_type=card_type)), total)
    assert event.copayment_amount == D(copay)
    assert event.covered_amount == D(total) - D(copay)
    assert event.decision == "approved"


def test_a_card_with_100_percent_copay_covers_nothing() -> None:
    ledger = Ledger.with_card(issue(copay_percent=D("100"), may_override_terms=True))
    event = adjudicated(ledger, "80.00")
    assert (event.covered_amount, event.copayment_amount) == (D("0.00"), D("80.00"))
    assert event.postings == ()


def test_the_limit_is_used_up_approved_then_partial_then_rejected() -> None:
    ledger = Ledger.with_card()  # gold: 5000, 10%
    first = adjudicated(ledger, "2000.00")
    second = adjudicated(ledger, "2000.00")
    assert [first.covered_amount, second.covered_amount] == [D("1800.00"), D("1800.00")]
    assert second.remaining_after == D("1400.00")

    partial = adjudicated(ledger, "2000.00")
    assert partial.decision == "partially_approved"
    assert partial.reasons == ("monthly_limit_partially_exhausted",)
    assert (partial.covered_amount, partial.copayment_amount) == (D("1400.00"), D("600.00"))
    assert (partial.month_spent_after, partial.remaining_after) == (D("5000.00"), D("0.00"))

    rejected = adjudicated(ledger, "10.00")
    assert rejected.decision == "rejected"
    assert rejected.reasons == ("monthly_limit_exhausted",)
    assert (rejected.covered_amount, rejected.copayment_amount) == (D("0.00"), D("10.00"))
    assert (rejected.month_spent_after, rejected.remaining_after) == (D("5000.00"), D("0.00"))
    assert rejected.postings == ()


def test_a_claim_that_exactly_uses_up_the_remaining_limit_is_approved() -> None:
    ledger = Ledger.with_card(issue(monthly_limit=D("100"), may_override_terms=True))
    event = adjudicated(ledger, "100.00")  # covered 90.00
    assert event.decision == "approved"
    exact = adjudicated(ledger, "11.11")  # copay 1.11, covered 10.00 = remaining
    assert exact.decision == "approved"
    assert exact.remaining_after == D("0.00")


def test_a_new_cairo_month_resets_the_limit() -> None:
    ledger = Ledger.with_card(issue(monthly_limit=D("100"), may_override_terms=True))
    january = adjudicated(ledger, "200.00", at=utc("2026-01-31T21:59"))
    assert (january.month, january.decision, january.covered_amount) == (
        "2026-01",
        "partially_approved",
        D("100.00"),
    )
    assert adjudicated(ledger, "1.00", at=utc("2026-01-31T21:59")).decision == "rejected"
    # 22:30 UTC on 31 January is 00:30 on 1 February in Cairo
    february = adjudicated(ledger, "50.00", at=utc("2026-01-31T22:30"))
    assert (february.month, february.decision, february.covered_amount) == (
        "2026-02",
        "approved",
        D("45.00"),
    )
    assert february.month_spent_after == D("45.00")
    assert ledger.state.month_spent == {"2026-01": D("100.00"), "2026-02": D("45.00")}


def test_the_month_turns_at_cairo_midnight_in_summer_time() -> None:
    ledger = Ledger.with_card(issue(monthly_limit=D("100"), may_override_terms=True))
    assert adjudicated(ledger, "200.00", at=utc("2026-04-30T20:30")).month == "2026-04"
    may = adjudicated(ledger, "20.00", at=utc("2026-04-30T21:30"))  # 00:30 EEST on 1 May
    assert (may.month, may.decision) == ("2026-05", "approved")


def test_a_claim_for_a_beneficiary() -> None:
    ledger = Ledger.with_card()
    beneficiary_id = uuid4()
    ledger.run(AddBeneficiary(beneficiary_id, person(date(2015, 3, 9), relationship="child"), T0))
    event = adjudicated(ledger, beneficiary_id=beneficiary_id)
    assert (event.beneficiary_id, event.decision) == (beneficiary_id, "approved")


def test_a_claim_for_someone_not_on_the_card_is_rejected() -> None:
    ledger = Ledger.with_card()
    stranger = adjudicated(ledger, beneficiary_id=uuid4())
    assert (stranger.decision, stranger.reasons) == ("rejected", ("beneficiary_not_on_card",))
    beneficiary_id = uuid4()
    ledger.run(AddBeneficiary(beneficiary_id, person(), T0))
    ledger.run(RemoveBeneficiary(beneficiary_id, T0))
    removed = adjudicated(ledger, beneficiary_id=beneficiary_id)
    assert removed.reasons == ("beneficiary_not_on_card",)
    assert ledger.state.spent_in("2026-01") == D("0.00")


@pytest.mark.parametrize(
    ("prepare", "reason"),
    [
        ("pending", "card_not_activated"),
        ("suspended", "card_suspended"),
        ("cancelled", "card_cancelled"),
        ("expired", "card_expired"),
    ],
)
def test_cards_that_are_not_active_reject_claims(prepare: str, reason: str) -> None:
    ledger = Ledger.with_card(issue(activate=prepare != "pending"))
    if prepare == "suspended":
        ledger.run(SuspendCard(at=T0))
    elif prepare == "cancelled":
        ledger.run(CancelCard(at=T0))
    elif prepare == "expired":
        ledger.run(ExpireCard(at=utc("2027-02-01T10:00")))
    event = adjudicated(ledger, "350.00")
    assert (event.decision, event.reasons) == ("rejected", (reason,))
    assert (event.covered_amount, event.copayment_amount) == (D("0.00"), D("350.00"))
    assert event.postings == ()
    assert event.remaining_after == D("5000.00")


def test_an_activated_card_accepts_claims() -> None:
    ledger = Ledger.with_card(issue(activate=False))
    ledger.run(ActivateCard(at=T0))
    assert adjudicated(ledger).decision == "approved"


def test_an_active_card_past_its_expiry_date_in_cairo_rejects_claims() -> None:
    # a gold card issued on 2026-01-15 is valid through 2027-01-15, Cairo time
    ledger = Ledger.with_card()
    last_minute = adjudicated(ledger, at=utc("2027-01-15T21:59"))
    assert last_minute.decision == "approved"
    next_day = adjudicated(ledger, at=utc("2027-01-15T22:00"))
    assert (next_day.decision, next_day.reasons) == ("rejected", ("card_expired",))


def test_items_split_covered_and_copay_exactly() -> None:
    ledger = Ledger.with_card(issue(card_type="silver"))  # 20% copay
    items = (item(3, "3.33", "A"), item(1, "0.01", "B"), item(2, "45.50", "C"))
    event = adjudicated(ledger, "101.00", items=items)
    assert (event.covered_amount, event.copayment_amount) == (D("80.80"), D("20.20"))
    assert [i.drug_code for i in event.items] == ["A", "B", "C"]
    assert [i.item_id for i in event.items] == [i.item_id for i in items]
    assert [i.total_price for i in event.items] == [D("9.99"), D("0.01"), D("91.00")]
    assert sum(i.covered_amount for i in event.items) == event.covered_amount
    assert sum(i.copayment_amount for i in event.items) == event.copayment_amount
    for split in event.items:
        assert split.covered_amount + split.copayment_amount == split.total_price
        assert split.total_price == split.quantity * split.unit_price
        assert split.covered_amount >= 0
        assert split.copayment_amount >= 0


def test_items_of_a_partial_approval_split_what_was_covered() -> None:
    ledger = Ledger.with_card(issue(monthly_limit=D("10"), may_override_terms=True))
    event = adjudicated(ledger, "30.00", items=(item(1, "10.00", "A"), item(2, "10.00", "B")))
    assert event.decision == "partially_approved"
    assert [i.covered_amount for i in event.items] == [D("3.33"), D("6.67")]
    assert [i.copayment_amount for i in event.items] == [D("6.67"), D("13.33")]


def test_items_of_a_rejected_claim_cover_nothing() -> None:
    ledger = Ledger.with_card()
    ledger.run(SuspendCard(at=T0))
    event = adjudicated(ledger, "20.00", items=(item(2, "10.00"),))
    assert [(i.covered_amount, i.copayment_amount) for i in event.items] == [
        (D("0.00"), D("20.00"))
    ]


@pytest.mark.parametrize("total", ["350.01", "349.99", "0.01"])
def test_items_must_sum_to_the_total(total: str) -> None:
    ledger = Ledger.with_card()
    with refused("items_total_mismatch"):
        ledger.claim(claim(total, items=(item(2, "100.00"), item(1, "150.00"))))


@pytest.mark.parametrize("total", ["0", "0.00", "-10.00", "350.005", "0.001", "NaN"])
def test_total_must_be_a_positive_amount_of_cents(total: str) -> None:
    with refused("invalid_amount"):
        Ledger.with_card().claim(claim(total))


@pytest.mark.parametrize("price", ["0.00", "-1.00", "1.005"])
def test_unit_price_must_be_a_positive_amount_of_cents(price: str) -> None:
    with refused("invalid_amount"):
        Ledger.with_card().claim(claim("1.00", items=(item(1, price),)))


@pytest.mark.parametrize("quantity", [0, -1, 100_001])
def test_item_quantity_must_be_sensible(quantity: int) -> None:
    with refused("invalid_quantity"):
        Ledger.with_card().claim(claim("1.00", items=(item(quantity, "1.00"),)))


def test_items_need_a_drug_code_and_name() -> None:
    blank = item(1, "1.00", drug_code=" ")
    with refused("invalid_item"):
        Ledger.with_card().claim(claim("1.00", items=(blank,)))


@pytest.mark.parametrize("prescription_id", ["", "  ", "x" * 101])
def test_prescription_id_must_be_1_to_100_characters(prescription_id: str) -> None:
    with refused("invalid_prescription_id"):
        Ledger.with_card().claim(claim(prescription_id=prescription_id))


def test_a_claim_on_no_card() -> None:
    with refused("card_not_found", Kind.NOT_FOUND):
        adjudicate(None, None, claim())
