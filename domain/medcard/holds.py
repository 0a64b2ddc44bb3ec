"""Benefit holds: a pharmacy reserves part of a card's monthly benefit before it dispenses.

A hold counts against its benefit month's limit from its placement until it is captured (by
the claim that names it), voided (by the pharmacy that placed it, or staff) or expires
(`expires_at` reached by the command's time). Every claim and every hold is decided on the
month's benefit less the open holds (`available_in`), so spend plus open holds never exceed
the monthly limit. A claim capturing a hold may use that hold's amount too; whatever else it
needs is adjudicated as usual, and the hold is closed by a `medcard.hold_captured` event
appended with the claim's adjudication (the claim event itself is unchanged).

A hold moves no money: its events carry no postings, and the month's spend (the claims')
is unchanged by them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Literal
from uuid import UUID

from domain.calendar import benefit_month
from domain.errors import CommandRejected, Kind
from domain.events import (
    ClaimAdjudicated,
    DomainEvent,
    HoldCaptured,
    HoldPlaced,
    HoldVoided,
)
from domain.medcard.claims import BENEFICIARY_NOT_ON_CARD, LIMIT_EXHAUSTED, coverage_refusal
from domain.medcard.commands import ClaimPrescription
from domain.medcard.hold_records import HoldRecord, available_in
from domain.medcard.state import BeyondWindow, Looked, MedCardState
from domain.money import ZERO, MoneyError, money

# Open holds one card may have at once: keeps its state (and so the cache) bounded.
MAX_OPEN_HOLDS = 16
DEFAULT_HOLD_TTL_HOURS = 72
MAX_HOLD_HOURS = 720  # 30 days: a hold past that is a standing reservation, not a dispense


@dataclass(frozen=True, slots=True)
class PlaceHold:
    hold_id: UUID
    prescription_id: str
    pharmacy_id: str
    amount: Decimal
    expires_in_hours: int
    at: datetime
    beneficiary_id: UUID | None = None


@dataclass(frozen=True, slots=True)
class VoidHold:
    hold_id: UUID
    at: datetime
    pharmacy_id: str | None  # the acting pharmacy; None: staff, who may void any hold
    reason: str | None = None


# "open": open by its events though not in the state, which is then behind the store
Fate = Literal["captured", "voided", "expired", "open"]


@dataclass(frozen=True, slots=True)
class HoldHistory:
    """A hold no longer in the card's state, as its events in the store tell it."""

    pharmacy_id: str
    fate: Fate


class HoldNeeded(BeyondWindow):
    """The hold is not open in the card's state: the caller looks up its history."""

    def __init__(self, hold_id: UUID) -> None:
        super().__init__(f"hold {hold_id}")
        self.hold_id = hold_id


def place_hold(card: MedCardState | None, command: PlaceHold) -> HoldPlaced:
    if card is None:
        raise CommandRejected("card_not_found", "no such card", Kind.NOT_FOUND)
    amount = _amount(command.amount)
    if not command.prescription_id.strip() or len(command.prescription_id) > 100:
        raise CommandRejected(
            "invalid_prescription_id", "prescriptionId must be 1 to 100 characters"
        )
    if not 1 <= command.expires_in_hours <= MAX_HOLD_HOURS:
        raise CommandRejected("invalid_expiry", f"expiresInHours must be 1 to {MAX_HOLD_HOURS}")
    month = benefit_month(command.at)
    beneficiary = command.beneficiary_id or card.primary_beneficiary_id
    available = available_in(card, month, command.at)
    refusal = coverage_refusal(card, beneficiary, command.at, available)
    if refusal is not None and refusal != LIMIT_EXHAUSTED:
        kind = Kind.INVALID if refusal == BENEFICIARY_NOT_ON_CARD else Kind.CONFLICT
        raise CommandRejected(refusal, f"no hold can be placed: {refusal}", kind)
    if amount > available:
        raise CommandRejected(
            "insufficient_benefit",
            f"amount exceeds the benefit left this month ({available:.2f})",
            Kind.CONFLICT,
        )
    if sum(1 for hold in card.open_holds if hold.open_at(command.at)) >= MAX_OPEN_HOLDS:
        raise CommandRejected(
            "too_many_open_holds",
            f"a card may have at most {MAX_OPEN_HOLDS} open holds; capture or void one first",
            Kind.CONFLICT,
        )
    return HoldPlaced(
        hold_id=command.hold_id,
        prescription_id=command.prescription_id,
        pharmacy_id=command.pharmacy_id,
        beneficiary_id=beneficiary,
        amount=amount,
        month=month,
        expires_at=command.at + timedelta(hours=command.expires_in_hours),
        at=command.at,
    )


def void_hold(
    card: MedCardState | None, command: VoidHold, history: Looked[HoldHistory] | None = None
) -> HoldVoided:
    """`history`: the hold's past from the event store, after a HoldNeeded."""
    hold = _open_hold(card, command.hold_id, command.at, command.pharmacy_id, history)
    return HoldVoided(
        hold_id=hold.hold_id,
        pharmacy_id=hold.pharmacy_id,
        amount=hold.amount,
        month=hold.month,
        reason=command.reason,
        at=command.at,
    )


def capture(
    card: MedCardState | None,
    command: ClaimPrescription,
    claim: ClaimAdjudicated,
    history: Looked[HoldHistory] | None = None,
) -> list[DomainEvent]:
    """What a newly adjudicated claim naming a hold appends after itself: the capture, or
    nothing when the claim names none or was rejected (it charged nothing, so the hold
    stays open). A hold that is not the pharmacy's, not open or for another prescription
    refuses the claim."""
    if command.hold_id is None:
        return []
    hold = _open_hold(card, command.hold_id, command.at, command.pharmacy_id, history)
    if hold.prescription_id != command.prescription_id:
        raise CommandRejected(
            "hold_prescription_mismatch",
            "the hold was placed for another prescription",
            Kind.CONFLICT,
        )
    if claim.decision == "rejected":
        return []
    used = min(hold.amount, claim.covered_amount) if hold.month == claim.month else ZERO
    return [
        HoldCaptured(
            hold_id=hold.hold_id,
            claim_id=claim.claim_id,
            pharmacy_id=hold.pharmacy_id,
            amount=hold.amount,
            used_amount=used,
            month=hold.month,
            at=command.at,
        )
    ]


def hold_history(events: list[DomainEvent], at: datetime) -> HoldHistory | None:
    """A hold's past from its own events (placement, then a capture or void), or None when
    the card never had it."""
    placed = next((e for e in events if isinstance(e, HoldPlaced)), None)
    if placed is None:
        return None
    fate: Fate = "expired"
    for event in events:
        if isinstance(event, HoldCaptured):
            fate = "captured"
        elif isinstance(event, HoldVoided):
            fate = "voided"
    if fate == "expired" and at < placed.expires_at:
        fate = "open"
    return HoldHistory(placed.pharmacy_id, fate)


def _open_hold(
    card: MedCardState | None,
    hold_id: UUID,
    at: datetime,
    pharmacy_id: str | None,
    history: Looked[HoldHistory] | None,
) -> HoldRecord:
    if card is None:
        raise CommandRejected("card_not_found", "no such card", Kind.NOT_FOUND)
    hold = next((h for h in card.open_holds if h.hold_id == hold_id), None)
    owner: str
    fate: Fate | None = None
    if hold is not None:
        owner, fate = hold.pharmacy_id, None if hold.open_at(at) else "expired"
    elif history is None:
        raise HoldNeeded(hold_id)
    elif history.value is None:
        raise CommandRejected("hold_not_found", "no such hold on this card", Kind.NOT_FOUND)
    else:
        owner, fate = history.value.pharmacy_id, history.value.fate
    if pharmacy_id is not None and owner != pharmacy_id:
        raise CommandRejected(
            "hold_of_another_pharmacy",
            "only the pharmacy that placed a hold may void or capture it",
            Kind.FORBIDDEN,
        )
    if fate == "open":
        # Refused, so the executor decides again on the store's state, which has the hold.
        raise CommandRejected("hold_not_open", "the hold is not open on this card", Kind.CONFLICT)
    if hold is None or fate is not None:
        raise CommandRejected(f"hold_{fate}", f"the hold is {fate}, no longer open", Kind.CONFLICT)
    return hold


def _amount(value: Decimal) -> Decimal:
    try:
        amount = money(value)
    except MoneyError as exc:
        raise CommandRejected("invalid_amount", f"amount: {exc}") from exc
    if amount <= ZERO:
        raise CommandRejected("invalid_amount", "amount must be greater than zero")
    return amount
