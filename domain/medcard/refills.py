"""Refill too soon: a claim for a drug the same beneficiary was dispensed too recently.

A booked claim whose items carry `daysSupply` records a *fill* per (beneficiary, drug code):
the Cairo day it was dispensed and the longest days supply of that drug on the claim. A
later claim of the same beneficiary and drug code before `share` of that supply has elapsed
(REFILL_MIN_ELAPSED_SHARE, default 0.75) is rejected `refill_too_soon`, with the first day it
would pass: filled_on + ceil(days_supply x share) days. A reversed claim's fill is dropped (it
dispensed nothing that counts). A claim without a days supply for a drug is still checked
against the drug's last fill and leaves that fill in place: it says nothing new about when the
next one is due.

Ops or an admin may grant an *override* for a (beneficiary, drug): without `valid_until` the
next booked claim of that beneficiary and drug consumes it, whether it was early or not (an
override left unused would let an unrelated early refill through months later); with
`valid_until`, every claim of theirs through that day passes the check and nothing consumes
it. A claim rejected for any reason consumes nothing. A newer override replaces an older one.

Bounded, like the rest of a card's state (domain/medcard/state.py): at most FILLS_KEPT fills
and OVERRIDES_KEPT overrides per card; past that, the oldest (by day, then key, so that a
fold and a snapshot's JSON drop the same one) is dropped. A dropped fill blocks nothing more:
with 32 kept, that takes 32 other (beneficiary, drug) pairs filled since.

Pure: the check is a dict lookup in the card's state, no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeVar
from uuid import UUID

from domain.calendar import cairo_date
from domain.errors import CommandRejected, Kind
from domain.events import ClaimAdjudicated, RefillOverrideGranted
from domain.medcard.velocity import DEFAULT_MAX_AMOUNT_PER_DAY, DEFAULT_MAX_CLAIMS_PER_DAY

if TYPE_CHECKING:  # the state holds a RefillBook: only its type is needed here
    from domain.medcard.state import MedCardState

REFILL_TOO_SOON = "refill_too_soon"  # a reason code: part of the API, never renamed
MAX_DAYS_SUPPLY = 365
DEFAULT_REFILL_MIN_ELAPSED_SHARE = Decimal("0.75")
FILLS_KEPT = 32
OVERRIDES_KEPT = 16


@dataclass(frozen=True, slots=True)
class ClaimRules:
    """The claim rules a deployment sets (infrastructure/settings.py reads them; these are
    the defaults)."""

    refill_min_elapsed_share: Decimal = DEFAULT_REFILL_MIN_ELAPSED_SHARE
    velocity_max_claims_per_day: int = DEFAULT_MAX_CLAIMS_PER_DAY
    velocity_max_amount_per_day: Decimal = DEFAULT_MAX_AMOUNT_PER_DAY


DEFAULT_RULES = ClaimRules()


@dataclass(slots=True)
class Fill:
    claim_id: UUID
    filled_on: date  # Cairo calendar day
    days_supply: int


@dataclass(slots=True)
class Override:
    override_id: UUID
    granted_at: datetime
    valid_until: date | None  # None: the next booked claim only

    def valid_on(self, day: date) -> bool:
        return self.valid_until is None or day <= self.valid_until


@dataclass(slots=True)
class RefillBook:
    """A card's last fill and standing override per (beneficiary, drug): `refill_key`."""

    fills: dict[str, Fill] = field(default_factory=dict)
    overrides: dict[str, Override] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RefillCheck:
    next_available: date | None  # set: refill too soon, the first day the claim would pass
    overrides_used: tuple[UUID, ...] = ()


NOTHING_TO_CHECK = RefillCheck(None)


@dataclass(frozen=True, slots=True)
class GrantRefillOverride:
    override_id: UUID
    drug_code: str
    reason: str
    granted_by: str
    at: datetime
    beneficiary_id: UUID | None = None  # None: the card's primary holder
    valid_until: date | None = None


def refill_key(beneficiary: UUID, drug_code: str) -> str:
    # A string: the map survives a snapshot's JSON as it is.
    return f"{beneficiary}/{drug_code}"


def next_fill_date(fill: Fill, share: Decimal) -> date:
    return fill.filled_on + timedelta(days=math.ceil(fill.days_supply * share))


def check_refills(
    book: RefillBook, beneficiary: UUID, drug_codes: Iterable[str], day: date, share: Decimal
) -> RefillCheck:
    """Whether a claim of `beneficiary` for `drug_codes` on `day` is a refill too soon."""
    if not book.fills and not book.overrides:
        return NOTHING_TO_CHECK  # most cards: nothing to look up
    due: date | None = None
    used: list[UUID] = []
    for drug_code in dict.fromkeys(drug_codes):
        key = refill_key(beneficiary, drug_code)
        override = book.overrides.get(key)
        if override is not None and override.valid_on(day):
            used.append(override.override_id)
            continue
        fill = book.fills.get(key)
        if fill is not None:
            next_fill = next_fill_date(fill, share)
            if day < next_fill and (due is None or next_fill > due):
                due = next_fill
    if due is not None:
        return RefillCheck(due)  # rejected: consumes no override
    return RefillCheck(None, tuple(used)) if used else NOTHING_TO_CHECK


def grant_override(
    card: MedCardState | None, command: GrantRefillOverride
) -> RefillOverrideGranted:
    if card is None:
        raise CommandRejected("card_not_found", "no such card", Kind.NOT_FOUND)
    if card.status == "CANCELLED":
        raise CommandRejected("card_cancelled", "the card is cancelled", Kind.CONFLICT)
    beneficiary = command.beneficiary_id or card.primary_beneficiary_id
    if beneficiary not in card.beneficiaries:
        raise CommandRejected("beneficiary_not_on_card", "beneficiaryId is not on this card")
    if command.valid_until is not None and command.valid_until < cairo_date(command.at):
        raise CommandRejected("invalid_valid_until", "validUntil must not be in the past")
    return RefillOverrideGranted(
        override_id=command.override_id,
        beneficiary_id=beneficiary,
        drug_code=command.drug_code,
        reason=command.reason,
        valid_until=command.valid_until,
        granted_by=command.granted_by,
        at=command.at,
    )


# ---- the fold (domain/medcard/state.py's evolve)


def record_claim(book: RefillBook, event: ClaimAdjudicated) -> None:
    if event.refill_overrides_used:
        used = set(event.refill_overrides_used)
        for key, override in list(book.overrides.items()):
            if override.override_id in used and override.valid_until is None:
                del book.overrides[key]
    if event.decision == "rejected":
        return
    supplies: dict[str, int] = {}
    for item in event.items:
        if item.days_supply is not None:
            supplies[item.drug_code] = max(item.days_supply, supplies.get(item.drug_code, 0))
    if not supplies:
        return
    filled_on = cairo_date(event.claimed_at)
    for drug_code, days in supplies.items():
        book.fills[refill_key(event.beneficiary_id, drug_code)] = Fill(
            event.claim_id, filled_on, days
        )
    _bound(book.fills, FILLS_KEPT, lambda fill: fill.filled_on)


def forget_claim(book: RefillBook, claim_id: UUID) -> None:
    """A reversed claim's fills no longer count."""
    for key in [k for k, fill in book.fills.items() if fill.claim_id == claim_id]:
        del book.fills[key]


def record_override(book: RefillBook, event: RefillOverrideGranted) -> None:
    book.overrides[refill_key(event.beneficiary_id, event.drug_code)] = Override(
        event.override_id, event.at, event.valid_until
    )
    _bound(book.overrides, OVERRIDES_KEPT, lambda override: override.granted_at)


V = TypeVar("V")


def _bound(entries: dict[str, V], cap: int, age: Callable[[V], Any]) -> None:
    while len(entries) > cap:
        oldest = min(entries.items(), key=lambda entry: (age(entry[1]), entry[0]))[0]
        del entries[oldest]
