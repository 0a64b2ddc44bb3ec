"""What a card's state keeps of its benefit holds, and what they take from a month's benefit.

Apart from domain/medcard/holds.py (the decisions) so that the state and the claim rule can
use it without importing the decisions, which use them.

A hold is open from its placement until it is captured, voided or reaches `expires_at`.
Expiry is decided from time alone (the command's, or the event's when folding): no job has
to close a hold for the limit to be right.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING
from uuid import UUID

from domain.events import DomainEvent, HoldCaptured, HoldPlaced, HoldVoided
from domain.money import ZERO

if TYPE_CHECKING:  # the state holds these records: imported for the annotation only
    from domain.medcard.state import MedCardState

HOLD_EVENTS = (HoldPlaced, HoldVoided, HoldCaptured)


@dataclass(slots=True)
class HoldRecord:
    """An open (or, until the next placement prunes it, expired) hold; field names are the
    event's."""

    hold_id: UUID
    prescription_id: str
    pharmacy_id: str
    beneficiary_id: UUID
    amount: Decimal
    month: str
    expires_at: datetime

    @classmethod
    def of(cls, event: HoldPlaced) -> HoldRecord:
        return cls(
            hold_id=event.hold_id,
            prescription_id=event.prescription_id,
            pharmacy_id=event.pharmacy_id,
            beneficiary_id=event.beneficiary_id,
            amount=event.amount,
            month=event.month,
            expires_at=event.expires_at,
        )

    def open_at(self, at: datetime) -> bool:
        return at < self.expires_at


def fold_hold(holds: list[HoldRecord], event: DomainEvent) -> None:
    """`holds` after `event`, in place. A placement first drops the holds expired by its
    time: the list then holds only holds open when the last one was placed, which the cap
    on open holds (holds.MAX_OPEN_HOLDS) bounds."""
    if isinstance(event, HoldPlaced):
        holds[:] = [hold for hold in holds if hold.open_at(event.at)]
        holds.append(HoldRecord.of(event))
    elif isinstance(event, HoldVoided | HoldCaptured):
        holds[:] = [hold for hold in holds if hold.hold_id != event.hold_id]


def open_in(
    holds: Iterable[HoldRecord], month: str, at: datetime, except_hold: UUID | None = None
) -> list[HoldRecord]:
    """The holds on `month`'s benefit open at `at`, but `except_hold` (the claim capturing
    it may use it)."""
    return [
        hold
        for hold in holds
        if hold.month == month and hold.open_at(at) and hold.hold_id != except_hold
    ]


def held_in(
    holds: Iterable[HoldRecord], month: str, at: datetime, except_hold: UUID | None = None
) -> Decimal:
    """What those holds reserve."""
    return sum((hold.amount for hold in open_in(holds, month, at, except_hold)), ZERO)


def available_in(
    card: MedCardState, month: str, at: datetime, except_hold: UUID | None = None
) -> Decimal:
    """The month's benefit left for a new claim or hold: the limit less the spend and the
    open holds (but `except_hold`'s, which the claim capturing it may use)."""
    held = held_in(card.open_holds, month, at, except_hold)
    return max(card.remaining_in(month) - held, ZERO)
