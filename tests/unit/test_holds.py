"""Benefit holds decided on a card's state (domain/medcard/holds.py): what they take from the
month, their capture, void and expiry, who may touch them, and the state's bound."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from uuid import uuid4

from domain.errors import Kind
from domain.events import HoldCaptured
from domain.medcard.commands import SuspendCard
from domain.medcard.holds import MAX_OPEN_HOLDS, VoidHold
from domain.medcard.state import evolve
from tests.unit.builders import PHARMACY, T0, Ledger, claim, refused

# gold: 5,000.00 a month, 10 % copay


def test_a_hold_takes_its_amount_from_what_claims_may_use() -> None:
    ledger = Ledger.with_card()
    ledger.hold("4000.00")
    decided = ledger.claim(claim("2000.00")).claim
    # 1,800 after the copay would be covered; only the 1,000 not held is left
    assert (decided.decision, decided.covered_amount) == ("partially_approved", Decimal("1000.00"))
    assert decided.month_spent_after == Decimal("1000.00")
    assert decided.remaining_after == Decimal("4000.00")  # the limit less the spend, as before
    with refused("insufficient_benefit", Kind.CONFLICT):
        ledger.hold("0.01")


def test_a_month_held_in_full_rejects_claims_as_exhausted() -> None:
    ledger = Ledger.with_card()
    ledger.hold("5000.00")
    decided = ledger.claim(claim("100.00")).claim
    assert (decided.decision, decided.reasons) == ("rejected", ("monthly_limit_exhausted",))


def test_a_claim_capturing_its_hold_may_use_the_held_amount_and_closes_it() -> None:
    ledger = Ledger.with_card()
    held = ledger.hold("3000.00")
    ledger.hold("2000.00", prescription_id="rx-other")
    events = ledger.claim_capturing(
        claim("4000.00", prescription_id="rx-held", hold_id=held.hold_id)
    )
    decided, captured = events
    # 3,600 after the copay; the other hold's 2,000 is not the claim's: 3,000 held is all
    assert decided.covered_amount == Decimal("3000.00")  # type: ignore[attr-defined]
    assert isinstance(captured, HoldCaptured)
    assert (captured.amount, captured.used_amount) == (Decimal("3000.00"), Decimal("3000.00"))
    assert held.hold_id not in [h.hold_id for h in ledger.state.open_holds]
    assert len(ledger.state.open_holds) == 1
    with refused("hold_captured", Kind.CONFLICT):
        ledger.void(VoidHold(held.hold_id, T0, PHARMACY))


def test_a_capture_uses_the_free_benefit_beyond_its_hold() -> None:
    ledger = Ledger.with_card()
    held = ledger.hold("100.00")
    decided, captured = ledger.claim_capturing(
        claim("1000.00", prescription_id="rx-held", hold_id=held.hold_id)
    )
    assert decided.covered_amount == Decimal("900.00")  # type: ignore[attr-defined]
    assert captured.used_amount == Decimal("100.00")  # type: ignore[attr-defined]
    assert ledger.state.spent_in("2026-01") == Decimal("900.00")


def test_a_void_gives_the_amount_back() -> None:
    ledger = Ledger.with_card()
    held = ledger.hold("5000.00")
    voided = ledger.void(VoidHold(held.hold_id, T0, PHARMACY, reason="not dispensed"))
    assert (voided.amount, voided.reason) == (Decimal("5000.00"), "not dispensed")
    assert ledger.claim(claim("100.00")).claim.decision == "approved"
    with refused("hold_voided", Kind.CONFLICT):
        ledger.void(VoidHold(held.hold_id, T0, PHARMACY))


def test_an_expired_hold_counts_for_nothing_and_cannot_be_used() -> None:
    ledger = Ledger.with_card()
    held = ledger.hold("5000.00", expires_in_hours=2)
    assert held.expires_at == T0 + timedelta(hours=2)
    just_before = T0 + timedelta(hours=2) - timedelta(microseconds=1)
    assert ledger.claim(claim("10.00", at=just_before)).claim.decision == "rejected"
    at_expiry = T0 + timedelta(hours=2)
    assert ledger.claim(claim("10.00", at=at_expiry)).claim.decision == "approved"
    with refused("hold_expired", Kind.CONFLICT):
        ledger.void(VoidHold(held.hold_id, at_expiry, PHARMACY))
    with refused("hold_expired", Kind.CONFLICT):
        ledger.claim_capturing(
            claim("10.00", prescription_id="rx-held", hold_id=held.hold_id, at=at_expiry)
        )


def test_another_pharmacy_may_neither_void_nor_capture() -> None:
    ledger = Ledger.with_card()
    held = ledger.hold("100.00")
    with refused("hold_of_another_pharmacy", Kind.FORBIDDEN):
        ledger.void(VoidHold(held.hold_id, T0, "pharmacy-2"))
    with refused("hold_of_another_pharmacy", Kind.FORBIDDEN):
        ledger.claim_capturing(
            claim("10.00", prescription_id="rx-held", hold_id=held.hold_id, pharmacy_id="p-2")
        )
    # staff (no acting pharmacy) may void any
    ledger.void(VoidHold(held.hold_id, T0, None))
    assert ledger.state.open_holds == []


def test_a_capture_for_another_prescription_is_refused() -> None:
    ledger = Ledger.with_card()
    held = ledger.hold("100.00")
    with refused("hold_prescription_mismatch", Kind.CONFLICT):
        ledger.claim_capturing(claim("10.00", prescription_id="rx-2", hold_id=held.hold_id))


def test_an_unknown_hold_is_not_found() -> None:
    ledger = Ledger.with_card()
    with refused("hold_not_found", Kind.NOT_FOUND):
        ledger.void(VoidHold(uuid4(), T0, PHARMACY))


def test_holds_refuse_bad_amounts_and_cards_that_cannot_claim() -> None:
    ledger = Ledger.with_card()
    with refused("invalid_amount"):
        ledger.hold("0.00")
    with refused("invalid_amount"):
        ledger.hold("1.001")
    with refused("invalid_expiry"):
        ledger.hold("1.00", expires_in_hours=0)
    ledger.run(SuspendCard(at=T0))
    with refused("card_suspended", Kind.CONFLICT):
        ledger.hold("1.00")


def test_open_holds_are_capped_and_expired_ones_pruned_from_the_state() -> None:
    ledger = Ledger.with_card()
    for n in range(MAX_OPEN_HOLDS):
        ledger.hold("1.00", prescription_id=f"rx-{n}", expires_in_hours=1)
    with refused("too_many_open_holds", Kind.CONFLICT):
        ledger.hold("1.00")
    later = T0 + timedelta(hours=1)
    ledger.hold("1.00", at=later)  # the others expired: the placement drops them
    assert len(ledger.state.open_holds) == 1


def test_the_fold_drops_closed_holds() -> None:
    ledger = Ledger.with_card()
    held = ledger.hold("10.00")
    state = ledger.state
    voided = ledger.void(VoidHold(held.hold_id, T0, PHARMACY))
    assert evolve(state, voided).open_holds == []
