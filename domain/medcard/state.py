"""A MedCard as the decider sees it, rebuilt by folding its events with `evolve`."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import Decimal
from enum import Enum
from typing import Generic, TypeVar
from uuid import UUID

from domain.events import (
    BeneficiaryAdded,
    BeneficiaryRemoved,
    ClaimAdjudicated,
    ClaimReversed,
    Decision,
    DomainEvent,
    HoldCaptured,
    Holder,
    HoldPlaced,
    HoldVoided,
    MedCardActivated,
    MedCardCancelled,
    MedCardExpired,
    MedCardIssued,
    MedCardReactivated,
    MedCardRenewed,
    MedCardSuspended,
    Posting,
    RefillOverrideGranted,
)
from domain.medcard.hold_records import HoldRecord, fold_hold
from domain.medcard.refills import RefillBook, forget_claim, record_claim, record_override
from domain.medcard.velocity import DayTally, record_day
from domain.money import ZERO

# How many of its latest claims a card's state keeps. Older ones are in the event store;
# a decision about one of them raises BeyondWindow, and the caller looks it up there.
CLAIM_WINDOW = 32


@dataclass(slots=True)
class ClaimRecord:
    """What later decisions need of a claim: the replay check and the reversal, not its items
    (a claim event is ~5 KB, ~370 KB with 200 items). Field names are the event's; ~1 KB.

    Treated as immutable (a reversal replaces the record); not frozen, because a frozen
    dataclass takes ~6 µs longer to build, once per claim on the hot path.
    """

    claim_id: UUID
    prescription_id: str
    pharmacy_id: str
    decision: Decision
    request_fingerprint: str
    month: str
    covered_amount: Decimal
    copayment_paid_from_wallet: Decimal
    wallet_id: UUID | None
    legs: tuple[tuple[str, Decimal], ...]  # the postings as (account, amount): a third the size
    reversed: bool = False

    def __post_init__(self) -> None:
        # Shared by many claims: one copy each, also when a snapshot's JSON made one per claim.
        self.pharmacy_id = sys.intern(self.pharmacy_id)
        self.month = sys.intern(self.month)

    @classmethod
    def of(cls, event: ClaimAdjudicated) -> ClaimRecord:
        return cls(
            claim_id=event.claim_id,
            prescription_id=event.prescription_id,
            pharmacy_id=event.pharmacy_id,
            decision=event.decision,
            request_fingerprint=event.request_fingerprint,
            month=event.month,
            covered_amount=event.covered_amount,
            copayment_paid_from_wallet=event.copayment_paid_from_wallet,
            wallet_id=event.wallet_id,
            legs=tuple([(sys.intern(p.account), p.amount) for p in event.postings]),
        )

    @property
    def postings(self) -> tuple[Posting, ...]:
        return tuple(Posting(account=account, amount=amount) for account, amount in self.legs)

    @property
    def charged(self) -> bool:
        """Whether it holds its prescription: a rejection charged nothing, a reversal undid it."""
        return self.decision != "rejected" and not self.reversed


class Beyond(Enum):
    WINDOW = "beyond the window"


# "The state cannot say": the claim in question may be older than the card's window.
BEYOND_WINDOW = Beyond.WINDOW


T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Looked(Generic[T]):
    """What the event store holds (None: nothing), looked up after a BeyondWindow."""

    value: T | None


class BeyondWindow(Exception):
    """A decision needs a claim the card's state no longer holds. The caller looks it up in
    the event store and decides again with it; the domain does no I/O."""


class PriorChargeNeeded(BeyondWindow):
    def __init__(self, prescription_id: str) -> None:
        super().__init__(f"the standing charge of prescription {prescription_id!r}")
        self.prescription_id = prescription_id


class ClaimNeeded(BeyondWindow):
    def __init__(self, claim_id: UUID) -> None:
        super().__init__(f"claim {claim_id}")
        self.claim_id = claim_id


@dataclass(slots=True)
class MedCardState:
    """Mutable on purpose: `evolve` updates the state it folds into, in place.

    Copying the claim maps on every claim made the claim path O(claims on the card) in CPU
    and garbage. The fold owns its accumulator: `decide` only reads a state, and the command
    service advances a cached state only after its events have committed.

    Bounded: the latest CLAIM_WINDOW claims (slim records), the beneficiaries on the card
    (at most the type's maximum), one spend per benefit month the card claimed in, and the
    capped maps of last fills and overrides (domain/medcard/refills.py) and of day tallies
    (domain/medcard/velocity.py).
    """

    card_id: UUID
    card_number: str
    user_id: str
    card_type: str
    status: str
    monthly_limit: Decimal
    copay_percent: Decimal
    max_beneficiaries: int
    currency: str
    insurance_provider: str | None
    primary_beneficiary_id: UUID
    expiry_date: date
    beneficiaries: dict[UUID, Holder] = field(default_factory=dict)
    # every month's spend: a reversal restores the month of its claim, however old
    month_spent: dict[str, Decimal] = field(default_factory=dict)
    # the latest claims, oldest first (a list: its order survives a jsonb snapshot); short
    # enough that scanning it costs less than keeping an index in step
    recent_claims: list[ClaimRecord] = field(default_factory=list)
    claims_forgotten: int = 0  # claims older than the window; 0: the state holds them all
    refills: RefillBook = field(default_factory=RefillBook)
    day_tallies: dict[UUID, DayTally] = field(default_factory=dict)
    # benefit holds not captured or voided (domain/medcard/hold_records.py), at most
    # holds.MAX_OPEN_HOLDS; a snapshot from before holds existed has none, rightly
    open_holds: list[HoldRecord] = field(default_factory=list)

    def spent_in(self, month: str) -> Decimal:
        return self.month_spent.get(month, ZERO)

    def remaining_in(self, month: str) -> Decimal:
        return max(self.monthly_limit - self.spent_in(month), ZERO)

    def beneficiary_with_national_id(self, national_id: str) -> UUID | None:
        """The beneficiary on the card with this national id (a point of sale may know the
        person, not our id); None when nobody on the card has it."""
        for beneficiary_id, holder in self.beneficiaries.items():
            if holder.national_id is not None and holder.national_id == national_id:
                return beneficiary_id
        return None

    def claim(self, claim_id: UUID) -> ClaimRecord | Beyond | None:
        wanted = claim_id.int  # UUID.__eq__ is Python code: ~8 µs over a full window
        for record in self.recent_claims:
            if record.claim_id.int == wanted:
                return record
        return BEYOND_WINDOW if self.claims_forgotten else None

    def charge_of(self, prescription_id: str) -> ClaimRecord | Beyond | None:
        """The claim that charged this prescription and stands (not reversed)."""
        for record in self.recent_claims:
            if record.prescription_id == prescription_id and record.charged:
                return record
        return BEYOND_WINDOW if self.claims_forgotten else None


def claim_record(events: Iterable[DomainEvent]) -> ClaimRecord | None:
    """One claim's record from its own events (its adjudication, then any reversal), as
    looked up in the event store for a claim older than the window."""
    record: ClaimRecord | None = None
    for event in events:
        if isinstance(event, ClaimAdjudicated):
            record = ClaimRecord.of(event)
        elif isinstance(event, ClaimReversed) and record is not None:
            record = replace(record, reversed=True)
    return record


# The status a lifecycle event leaves a card in, whatever it was (a renewal depends on the
# status before it, so it is not here). The write answers and the read model use it too.
STATUS_AFTER: Mapping[type[DomainEvent], str] = {
    MedCardActivated: "ACTIVE",
    MedCardReactivated: "ACTIVE",
    MedCardSuspended: "SUSPENDED",
    MedCardCancelled: "CANCELLED",
    MedCardExpired: "EXPIRED",
}


def evolve(state: MedCardState | None, event: DomainEvent) -> MedCardState:
    if isinstance(event, MedCardIssued):
        holder = event.primary_holder
        return MedCardState(
            card_id=event.card_id,
            card_number=event.card_number,
            user_id=event.user_id,
            card_type=event.card_type,
            status=event.status,
            monthly_limit=event.monthly_limit,
            copay_percent=event.copay_percent,
            max_beneficiaries=event.max_beneficiaries,
            currency=event.currency,
            insurance_provider=event.insurance_provider,
            primary_beneficiary_id=holder.beneficiary_id,
            expiry_date=event.expiry_date,
            beneficiaries={holder.beneficiary_id: holder},
        )
    if state is None:
        raise ValueError(f"{event.event_type} before medcard.issued")
    status = STATUS_AFTER.get(type(event))
    if status is not None:
        state.status = status
        return state
    match event:
        case MedCardRenewed():
            if state.status == "EXPIRED":
                state.status = "ACTIVE"
            state.expiry_date = event.expiry_date
        case BeneficiaryAdded():
            state.beneficiaries[event.beneficiary.beneficiary_id] = event.beneficiary
        case BeneficiaryRemoved():
            state.beneficiaries.pop(event.beneficiary_id, None)
        case ClaimAdjudicated():
            state.month_spent[event.month] = event.month_spent_after
            state.recent_claims.append(ClaimRecord.of(event))
            while len(state.recent_claims) > CLAIM_WINDOW:
                del state.recent_claims[0]
                state.claims_forgotten += 1
            record_claim(state.refills, event)
            record_day(state.day_tallies, event)
        case ClaimReversed():
            state.month_spent[event.month] = event.month_spent_after
            forget_claim(state.refills, event.claim_id)
            # A claim older than the window is not in the state: nothing else to mark.
            for index, record in enumerate(state.recent_claims):
                if record.claim_id == event.claim_id:
                    state.recent_claims[index] = replace(record, reversed=True)
                    break
        case RefillOverrideGranted():
            record_override(state.refills, event)
        case HoldPlaced() | HoldVoided() | HoldCaptured():
            fold_hold(state.open_holds, event)
        case _:
            raise ValueError(f"not a medcard event: {event.event_type}")
    return state
