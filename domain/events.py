"""Domain events: facts with stable dotted names and a schema version.

Each event class has `event_type` (never a Python class path) and `schema_version`, the
version it is written as; older stored versions are read through domain/upcasting.py. Payloads
serialise to JSON with money as strings ("350.00"), so no float ever touches an amount.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any, ClassVar, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict


class DomainEvent(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    event_type: ClassVar[str]
    schema_version: ClassVar[int] = 1

    def payload(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


class Posting(BaseModel):
    """One leg of a double-entry posting; the legs of one event sum to zero."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    account: str
    amount: Decimal


class Holder(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    beneficiary_id: UUID
    relationship: str
    national_id: str | None = None
    name: str | None = None
    date_of_birth: date | None = None
    phone_number: str | None = None


# ---- MedCard ---------------------------------------------------------------------------------


class MedCardIssued(DomainEvent):
    event_type: ClassVar[str] = "medcard.issued"
    card_id: UUID
    card_number: str
    user_id: str
    card_type: str
    status: Literal["PENDING", "ACTIVE"]
    monthly_limit: Decimal
    copay_percent: Decimal
    max_beneficiaries: int
    currency: str
    primary_holder: Holder
    insurance_provider: str | None
    policy_number: str | None
    issued_at: datetime
    expiry_date: date


class MedCardActivated(DomainEvent):
    event_type: ClassVar[str] = "medcard.activated"
    at: datetime


class MedCardSuspended(DomainEvent):
    event_type: ClassVar[str] = "medcard.suspended"
    reason: str | None
    at: datetime


class MedCardReactivated(DomainEvent):
    event_type: ClassVar[str] = "medcard.reactivated"
    at: datetime


class MedCardCancelled(DomainEvent):
    event_type: ClassVar[str] = "medcard.cancelled"
    reason: str | None
    at: datetime


class MedCardRenewed(DomainEvent):
    event_type: ClassVar[str] = "medcard.renewed"
    previous_expiry_date: date
    expiry_date: date
    at: datetime


class MedCardExpired(DomainEvent):
    event_type: ClassVar[str] = "medcard.expired"
    at: datetime


class BeneficiaryAdded(DomainEvent):
    event_type: ClassVar[str] = "medcard.beneficiary_added"
    beneficiary: Holder
    at: datetime


class BeneficiaryRemoved(DomainEvent):
    event_type: ClassVar[str] = "medcard.beneficiary_removed"
    beneficiary_id: UUID
    at: datetime


class ClaimItemSplit(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    item_id: UUID
    drug_code: str
    drug_name: str
    quantity: int
    unit_price: Decimal
    total_price: Decimal
    covered_amount: Decimal
    copayment_amount: Decimal
    days_supply: int | None = None  # v2; how many days the dispensed quantity lasts


Decision = Literal["approved", "partially_approved", "rejected"]


class ClaimAdjudicated(DomainEvent):
    """Every adjudication is recorded, rejections too, so the card's history explains itself.

    v2 (domain/upcasting.py reads v1 as v2): each item's `days_supply`, the
    `next_available_fill_date` of a refill_too_soon rejection, the refill overrides the claim
    used and its velocity `flags` (domain/medcard/refills.py, domain/medcard/velocity.py)."""

    event_type: ClassVar[str] = "medcard.claim_adjudicated"
    schema_version: ClassVar[int] = 2
    claim_id: UUID
    prescription_id: str
    pharmacy_id: str
    beneficiary_id: UUID
    request_fingerprint: str
    decision: Decision
    reasons: tuple[str, ...]
    total_amount: Decimal
    covered_amount: Decimal
    copayment_amount: Decimal
    copay_percent: Decimal
    items: tuple[ClaimItemSplit, ...]
    month: str
    monthly_limit: Decimal
    month_spent_after: Decimal
    remaining_after: Decimal
    wallet_id: UUID | None
    copayment_paid_from_wallet: Decimal
    claimed_at: datetime
    postings: tuple[Posting, ...]
    next_available_fill_date: date | None = None
    refill_overrides_used: tuple[UUID, ...] = ()
    flags: tuple[str, ...] = ()


class RefillOverrideGranted(DomainEvent):
    """Ops or an admin lets a refill of `drug_code` for `beneficiary_id` through before it is
    due (domain/medcard/refills.py): for the next claim only (`valid_until` null) or for every
    claim until that date."""

    event_type: ClassVar[str] = "medcard.refill_override_granted"
    override_id: UUID
    beneficiary_id: UUID
    drug_code: str
    reason: str
    valid_until: date | None
    granted_by: str
    at: datetime


class ClaimReversed(DomainEvent):
    event_type: ClassVar[str] = "medcard.claim_reversed"
    claim_id: UUID
    prescription_id: str
    pharmacy_id: str
    month: str
    restored_amount: Decimal
    month_spent_after: Decimal
    remaining_after: Decimal
    wallet_refund: Decimal
    reason: str | None
    at: datetime
    postings: tuple[Posting, ...]


class HoldPlaced(DomainEvent):
    """A pharmacy reserved `amount` of the card's benefit for `month` until `expires_at`
    (domain/medcard/holds.py). Not spending: no postings, the month's spend is unchanged."""

    event_type: ClassVar[str] = "medcard.hold_placed"
    hold_id: UUID
    prescription_id: str
    pharmacy_id: str
    beneficiary_id: UUID
    amount: Decimal
    month: str
    expires_at: datetime
    at: datetime


class HoldVoided(DomainEvent):
    event_type: ClassVar[str] = "medcard.hold_voided"
    hold_id: UUID
    pharmacy_id: str  # the pharmacy that placed it
    amount: Decimal  # what the void gave back to the month's benefit
    month: str
    reason: str | None
    at: datetime


class HoldCaptured(DomainEvent):
    """A claim naming the hold closed it, appended right after that claim's adjudication:
    `used_amount` of the held amount went into the claim's covered amount."""

    event_type: ClassVar[str] = "medcard.hold_captured"
    hold_id: UUID
    claim_id: UUID
    pharmacy_id: str
    amount: Decimal  # the amount held
    used_amount: Decimal  # min(held, the claim's covered amount)
    month: str
    at: datetime


# ---- Wallet ----------------------------------------------------------------------------------


class WalletOpened(DomainEvent):
    event_type: ClassVar[str] = "wallet.opened"
    wallet_id: UUID
    owner_user_id: str
    currency: str
    at: datetime


class WalletToppedUp(DomainEvent):
    """v2 (v1 had no `paid_at`; domain/upcasting.py reads v1 as v2 with it null)."""

    event_type: ClassVar[str] = "wallet.topped_up"
    schema_version: ClassVar[int] = 2
    topup_id: UUID
    gateway: str
    gateway_reference: str
    amount: Decimal
    balance_after: Decimal
    at: datetime
    # When the gateway says the member paid, as its callback tells it; null: not told. Not
    # `at` (when the ledger recorded the top-up): a late or retried callback differs from it.
    paid_at: datetime | None
    postings: tuple[Posting, ...]


class WalletDebited(DomainEvent):
    event_type: ClassVar[str] = "wallet.debited"
    debit_id: UUID
    amount: Decimal
    purpose: str
    reference: str
    balance_after: Decimal
    at: datetime
    postings: tuple[Posting, ...]


class WalletRefunded(DomainEvent):
    event_type: ClassVar[str] = "wallet.refunded"
    refund_id: UUID
    debit_id: UUID
    amount: Decimal
    reason: str | None
    balance_after: Decimal
    at: datetime
    postings: tuple[Posting, ...]


class WalletCopayConsentSet(DomainEvent):
    """The member's standing consent to claims' copayments paid from the wallet: at most
    `per_claim_limit` per claim and `monthly_limit` per Cairo calendar month (0 and 0: none).
    Moves no money, so it carries no postings and no balance."""

    event_type: ClassVar[str] = "wallet.copay_consent_set"
    per_claim_limit: Decimal
    monthly_limit: Decimal
    at: datetime


CopayDeclineReason = Literal[
    "no_consent", "over_claim_limit", "over_monthly_limit", "insufficient_funds"
]


class WalletCopayDeclined(DomainEvent):
    """A claim asked the wallet for its copayment and got none of it. The reason is for the
    member's eyes: the pharmacy's answer says only `wallet_payment_declined`, whatever it was.
    `balance` is the unchanged balance, so the member's statement can show it."""

    event_type: ClassVar[str] = "wallet.copay_declined"
    claim_id: UUID
    pharmacy_id: str
    amount: Decimal
    reason: CopayDeclineReason
    month: str
    balance: Decimal
    at: datetime


MEDCARD_EVENTS: tuple[type[DomainEvent], ...] = (
    MedCardIssued,
    MedCardActivated,
    MedCardSuspended,
    MedCardReactivated,
    MedCardCancelled,
    MedCardRenewed,
    MedCardExpired,
    BeneficiaryAdded,
    BeneficiaryRemoved,
    ClaimAdjudicated,
    ClaimReversed,
    RefillOverrideGranted,
    HoldPlaced,
    HoldVoided,
    HoldCaptured,
)
WALLET_EVENTS: tuple[type[DomainEvent], ...] = (
    WalletOpened,
    WalletToppedUp,
    WalletDebited,
    WalletRefunded,
    WalletCopayConsentSet,
    WalletCopayDeclined,
)
EVENT_TYPES: dict[str, type[DomainEvent]] = {
    cls.event_type: cls for cls in (*MEDCARD_EVENTS, *WALLET_EVENTS)
}


class UnknownEventType(LookupError):
    """A stored event this release cannot read: unknown type, or a schema version it has no
    way to (domain/upcasting.py)."""
