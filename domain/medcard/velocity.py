"""Velocity: many claims, or much money, for one beneficiary in one Cairo day. A flag, never
a refusal: the claim is decided as ever and carries the flags in its own event
(`ClaimAdjudicated.flags`), which the projection writes into the `fraud_flags` read model.

Flags on the claim event rather than a `medcard.claim_flagged` event of their own: the claim
event is the fact already being appended (v2 for the days supply anyway), so a flag costs no
second event, row or Kafka message, and a flag can never be seen without its claim.

Counted: claims booked (approved or partly), and their total amounts; a rejection charged
nothing and counts for nothing, a reversal does not uncount (the flag is about what was tried).
A claim is flagged when, with it, the day's count passes VELOCITY_MAX_CLAIMS_PER_DAY or the
day's total passes VELOCITY_MAX_AMOUNT_PER_DAY. Bounded: one tally per beneficiary (the day of
their latest claim), at most TALLIES_KEPT per card, the oldest day dropped first.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from uuid import UUID

from domain.calendar import cairo_date
from domain.events import ClaimAdjudicated

# Flag codes: part of the API and of the read model, never renamed.
CLAIMS_PER_DAY = "velocity_claims_per_day"
AMOUNT_PER_DAY = "velocity_amount_per_day"
DEFAULT_MAX_CLAIMS_PER_DAY = 5
DEFAULT_MAX_AMOUNT_PER_DAY = Decimal("5000.00")
TALLIES_KEPT = 16


@dataclass(slots=True)
class DayTally:
    day: date
    claims: int
    amount: Decimal


def velocity_flags(
    tallies: dict[UUID, DayTally],
    beneficiary: UUID,
    day: date,
    amount: Decimal,
    max_claims: int,
    max_amount: Decimal,
) -> tuple[str, ...]:
    """The flags a booked claim of `amount` for `beneficiary` on `day` would carry."""
    tally = tallies.get(beneficiary)
    claims, total = (
        (tally.claims, tally.amount) if tally is not None and tally.day == day else (0, 0)
    )
    flags = []
    if claims + 1 > max_claims:
        flags.append(CLAIMS_PER_DAY)
    if total + amount > max_amount:
        flags.append(AMOUNT_PER_DAY)
    return tuple(flags)


def record_day(tallies: dict[UUID, DayTally], event: ClaimAdjudicated) -> None:
    if event.decision == "rejected":
        return
    day = cairo_date(event.claimed_at)
    tally = tallies.get(event.beneficiary_id)
    if tally is not None and tally.day == day:
        tally.claims += 1
        tally.amount += event.total_amount
        return
    tallies[event.beneficiary_id] = DayTally(day, 1, event.total_amount)
    while len(tallies) > TALLIES_KEPT:
        del tallies[min(tallies.items(), key=lambda entry: (entry[1].day, entry[0].int))[0]]
