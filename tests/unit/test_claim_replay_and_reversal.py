"""One charge per prescription per card; reversals; the copay paid from the member's wallet."""

from __future__ import annotations

from decimal import Decimal
from uuid import uuid4

import pytest

from domain.errors import Kind
from domain.events import (
    ClaimReversed,
    Posting,
    WalletCopayDeclined,
    WalletDebited,
    WalletRefunded,
)
from domain.medcard.claims import reverse_claim
from domain.medcard.commands import ActivateCard, ReactivateCard, ReverseClaim, SuspendCard
from domain.medcard.state import ClaimRecord
from domain.postings import balance_of
from domain.wallet.model import wallet_id_for
from tests.unit.builders import PHARMACY, T0, USER, Ledger, claim, issue, item, refused, utc

D = Decimal
LATER = utc("2026-01-20T10:00")
CONSENT = ("500.00", "1000.00")  # per claim, per month: enough for every copay below


# ---- one charge per prescription -------------------------------------------------------------


def test_a_retry_with_the_same_body_replays_the_original_decision() -> None:
    ledger = Ledger.with_card()
    first = claim("350.00", prescription_id="rx-1", items=(item(1, "350.00"),))
    original = ledger.claim(first)
    logged = len(ledger.card_log)
    retry = ledger.claim(claim("350.00", prescription_id="rx-1", items=first.items, at=LATER))
    assert retry.replayed
    assert retry.claim == original.claim
    assert (retry.card_events, retry.wallet_events) == ([], [])
    assert len(ledger.card_log) == logged
    assert ledger.state.spent_in("2026-01") == D("315.00")


def test_a_retry_that_writes_the_same_amount_differently_is_the_same_body() -> None:
    ledger = Ledger.with_card()
    original = ledger.claim(claim(D("350"), prescription_id="rx-1"))
    retry = ledger.claim(claim(D("350.00"), prescription_id="rx-1"))
    assert retry.replayed
    assert retry.claim == original.claim


@pytest.mark.parametrize(
    "change",
    [
        {"total": "350.01"},
        {"pharmacy_id": "pharmacy-2"},
        {"beneficiary_id": uuid4()},
        {"pay_copayment_from_wallet": True},
        {"items": (item(1, "350.00"),)},
    ],
)
def test_the_same_prescription_with_another_body_is_a_conflict(change: dict[str, object]) -> None:
    ledger = Ledger.with_card()
    ledger.claim(claim("350.00", prescription_id="rx-1"))
    change = dict(change)  # the parameter is shared between runs
    total = change.pop("total", "350.00")
    assert isinstance(total, str)
    with refused("duplicate_prescription", Kind.CONFLICT):
        ledger.claim(claim(total, prescription_id="rx-1", **change))


def test_the_same_prescription_on_another_card_is_another_charge() -> None:
    one, other = Ledger.with_card(), Ledger.with_card()
    assert not one.claim(claim(prescription_id="rx-1")).replayed
    assert not other.claim(claim(prescription_id="rx-1")).replayed


def test_a_resubmission_after_a_rejection_is_adjudicated_anew() -> None:
    ledger = Ledger.with_card()
    ledger.run(SuspendCard(at=T0))
    rejected = ledger.claim(claim(prescription_id="rx-1")).claim
    assert rejected.decision == "rejected"
    again = ledger.claim(claim(prescription_id="rx-1"))  # same body
    assert not again.replayed
    assert again.claim.claim_id != rejected.claim_id
    assert again.claim.decision == "rejected"
    ledger.run(ReactivateCard(at=T0))
    approved = ledger.claim(claim(prescription_id="rx-1", total_amount=D("100.00")))
    assert (approved.replayed, approved.claim.decision) == (False, "approved")
    assert ledger.claim(claim(prescription_id="rx-1", total_amount=D("100.00"))).replayed


def test_a_resubmission_after_a_reversal_is_adjudicated_anew() -> None:
    ledger = Ledger.with_card()
    first = ledger.claim(claim(prescription_id="rx-1")).claim
    ledger.reverse(first.claim_id)
    again = ledger.claim(claim(prescription_id="rx-1"))
    assert not again.replayed
    assert again.claim.decision == "approved"
    assert again.claim.month_spent_after == D("315.00")
    with refused("duplicate_prescription", Kind.CONFLICT):
        ledger.claim(claim("1.00", prescription_id="rx-1"))


def test_a_claim_id_cannot_be_used_twice_on_a_card() -> None:
    ledger = Ledger.with_card()
    first = ledger.claim(claim(prescription_id="rx-1")).claim
    with refused("claim_exists", Kind.CONFLICT):
        ledger.claim(claim(prescription_id="rx-2", claim_id=first.claim_id))
    # a replay of the original under its own id is still a replay
    assert ledger.claim(claim(prescription_id="rx-1", claim_id=first.claim_id)).replayed


# ---- reversal ----------------------------------------------------------------------------------


def test_a_reversal_restores_the_months_benefit() -> None:
    ledger = Ledger.with_card(issue(monthly_limit=D("1000"), may_override_terms=True))
    claimed = ledger.claim(claim("500.00")).claim
    ledger.claim(claim("200.00"))
    assert ledger.state.remaining_in("2026-01") == D("370.00")
    decision = ledger.reverse(claimed.claim_id, at=LATER, reason="dispensing error")
    assert decision.wallet_events == []
    assert decision.card_events == [decision.reversal]
    assert decision.reversal == ClaimReversed(
        claim_id=claimed.claim_id,
        prescription_id=claimed.prescription_id,
        pharmacy_id=PHARMACY,
        month="2026-01",
        restored_amount=D("450.00"),
        month_spent_after=D("180.00"),
        remaining_after=D("820.00"),
        wallet_refund=D("0.00"),
        reason="dispensing error",
        at=LATER,
        postings=(
            Posting(account="insurer:healthpay", amount=D("450.00")),
            Posting(account=f"pharmacy:{PHARMACY}", amount=D("-450.00")),
        ),
    )
    assert ledger.state.remaining_in("2026-01") == D("820.00")
    record = ledger.state.claim(claimed.claim_id)
    assert isinstance(record, ClaimRecord)
    assert record.reversed


def test_a_reversal_restores_the_month_of_the_claim_not_the_current_one() -> None:
    ledger = Ledger.with_card()
    january = ledger.claim(claim("100.00", at=utc("2026-01-31T21:00"))).claim
    ledger.claim(claim("100.00", at=utc("2026-02-02T10:00")))
    reversal = ledger.reverse(january.claim_id, at=utc("2026-02-03T10:00")).reversal
    assert reversal.month == "2026-01"
    assert ledger.state.month_spent == {"2026-01": D("0.00"), "2026-02": D("90.00")}


def test_a_partially_approved_claim_can_be_reversed() -> None:
    ledger = Ledger.with_card(issue(monthly_limit=D("100"), may_override_terms=True))
    partial = ledger.claim(claim("500.00")).claim
    assert partial.decision == "partially_approved"
    assert ledger.claim(claim("5.00")).claim.decision == "rejected"
    reversal = ledger.reverse(partial.claim_id).reversal
    assert (reversal.restored_amount, reversal.remaining_after) == (D("100.00"), D("100.00"))
    assert ledger.claim(claim("5.00")).claim.decision == "approved"


def test_a_claim_cannot_be_reversed_twice() -> None:
    ledger = Ledger.with_card()
    claimed = ledger.claim(claim()).claim
    ledger.reverse(claimed.claim_id)
    with refused("claim_already_reversed", Kind.CONFLICT):
        ledger.reverse(claimed.claim_id)


def test_a_rejected_claim_cannot_be_reversed() -> None:
    ledger = Ledger.with_card(issue(activate=False))
    rejected = ledger.claim(claim()).claim
    with refused("claim_not_reversible", Kind.CONFLICT):
        ledger.reverse(rejected.claim_id)
    ledger.run(ActivateCard(at=T0))


def test_reversing_an_unknown_claim() -> None:
    ledger = Ledger.with_card()
    with refused("claim_not_found", Kind.NOT_FOUND):
        ledger.reverse(uuid4())
    with refused("card_not_found", Kind.NOT_FOUND):
        reverse_claim(None, None, ReverseClaim(uuid4(), T0))


# ---- copay from the wallet --------------------------------------------------------------------


def test_the_copay_is_paid_from_the_wallet_when_it_suffices() -> None:
    ledger = Ledger.with_card()
    ledger.open_wallet("100.00", consent=CONSENT)
    command = claim("350.00", pay_copayment_from_wallet=True)
    decision = ledger.claim(command)
    event = decision.claim
    wallet_id = wallet_id_for(USER)
    assert event.reasons == ("covered_within_monthly_limit", "copayment_paid_from_wallet")
    assert (event.wallet_id, event.copayment_paid_from_wallet) == (wallet_id, D("35.00"))
    (debited,) = decision.wallet_events
    assert isinstance(debited, WalletDebited)
    assert debited.debit_id == command.claim_id
    assert (debited.amount, debited.balance_after) == (D("35.00"), D("65.00"))
    assert (debited.purpose, debited.reference) == ("claim_copayment", str(command.claim_id))
    assert debited.postings == (
        Posting(account=f"member_wallet:{wallet_id}", amount=D("-35.00")),
        Posting(account=f"pharmacy:{PHARMACY}", amount=D("35.00")),
    )
    assert ledger.purse.balance == D("65.00")


def test_a_wallet_holding_exactly_the_copay_pays_it() -> None:
    ledger = Ledger.with_card()
    ledger.open_wallet("35.00", consent=CONSENT)
    event = ledger.claim(claim("350.00", pay_copayment_from_wallet=True)).claim
    assert event.copayment_paid_from_wallet == D("35.00")
    assert ledger.purse.balance == D("0.00")


def test_a_partial_approval_takes_the_whole_copay_from_the_wallet() -> None:
    ledger = Ledger.with_card(issue(monthly_limit=D("100"), may_override_terms=True))
    ledger.open_wallet("1000.00", consent=("400.00", "1000.00"))
    event = ledger.claim(claim("500.00", pay_copayment_from_wallet=True)).claim
    assert event.reasons == ("monthly_limit_partially_exhausted", "copayment_paid_from_wallet")
    assert event.copayment_paid_from_wallet == D("400.00")
    assert ledger.purse.balance == D("600.00")


def test_a_wallet_short_of_the_copay_is_not_touched() -> None:
    ledger = Ledger.with_card()
    ledger.open_wallet("34.99", consent=CONSENT)
    decision = ledger.claim(claim("350.00", pay_copayment_from_wallet=True))
    event = decision.claim
    assert event.decision == "approved"
    assert event.reasons == ("covered_within_monthly_limit", "wallet_payment_declined")
    assert (event.wallet_id, event.copayment_paid_from_wallet) == (None, D("0.00"))
    (declined,) = decision.wallet_events
    assert isinstance(declined, WalletCopayDeclined)
    assert (declined.reason, declined.amount, declined.balance) == (
        "insufficient_funds",
        D("35.00"),
        D("34.99"),
    )
    assert ledger.purse.balance == D("34.99")


def test_no_wallet() -> None:
    decision = Ledger.with_card().claim(claim("350.00", pay_copayment_from_wallet=True))
    assert decision.claim.reasons == ("covered_within_monthly_limit", "wallet_payment_declined")
    assert decision.claim.copayment_paid_from_wallet == D("0.00")
    assert decision.wallet_events == []


def test_no_wallet_debit_for_a_rejected_claim_or_a_zero_copay() -> None:
    ledger = Ledger.with_card(issue(copay_percent=D("0"), may_override_terms=True))
    ledger.open_wallet("100.00", consent=CONSENT)
    free = ledger.claim(claim("50.00", pay_copayment_from_wallet=True))
    assert (free.claim.reasons, free.wallet_events) == (("covered_within_monthly_limit",), [])
    assert free.claim.wallet_id is None
    ledger.run(SuspendCard(at=T0))
    rejected = ledger.claim(claim("50.00", pay_copayment_from_wallet=True))
    assert (rejected.claim.reasons, rejected.wallet_events) == (("card_suspended",), [])
    assert ledger.purse.balance == D("100.00")


def test_a_replayed_claim_does_not_debit_the_wallet_again() -> None:
    ledger = Ledger.with_card()
    ledger.open_wallet("100.00", consent=CONSENT)
    ledger.claim(claim("350.00", prescription_id="rx-1", pay_copayment_from_wallet=True))
    retry = ledger.claim(claim("350.00", prescription_id="rx-1", pay_copayment_from_wallet=True))
    assert retry.replayed
    assert ledger.purse.balance == D("65.00")


def test_a_reversal_refunds_the_copay_paid_from_the_wallet() -> None:
    ledger = Ledger.with_card()
    ledger.open_wallet("100.00", consent=CONSENT)
    claimed = ledger.claim(claim("350.00", pay_copayment_from_wallet=True)).claim
    decision = ledger.reverse(claimed.claim_id, at=LATER)
    assert decision.reversal.wallet_refund == D("35.00")
    assert decision.reversal.restored_amount == D("315.00")
    (refunded,) = decision.wallet_events
    assert isinstance(refunded, WalletRefunded)
    assert refunded.debit_id == claimed.claim_id
    assert (refunded.amount, refunded.balance_after) == (D("35.00"), D("100.00"))
    assert refunded.reason == "claim_reversed"
    assert balance_of(refunded.postings) == 0
    assert ledger.purse.balance == D("100.00")
    assert ledger.state.remaining_in("2026-01") == D("5000.00")


def test_a_reversal_needs_the_wallet_that_paid_the_copay() -> None:
    ledger = Ledger.with_card()
    ledger.open_wallet("100.00", consent=CONSENT)
    claimed = ledger.claim(claim("350.00", pay_copayment_from_wallet=True)).claim
    with refused("wallet_not_found", Kind.CONFLICT):
        reverse_claim(ledger.card, None, ReverseClaim(claimed.claim_id, LATER))
