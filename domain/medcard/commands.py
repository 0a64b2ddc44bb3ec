"""MedCard commands. Ids and the time are chosen by the caller, so deciding stays pure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from uuid import UUID


@dataclass(frozen=True, slots=True)
class PersonDetails:
    relationship: str
    national_id: str
    name: str
    date_of_birth: date
    phone_number: str


@dataclass(frozen=True, slots=True)
class IssueCard:
    card_id: UUID
    card_number: str
    user_id: str
    card_type: str
    at: datetime
    may_override_terms: bool  # only admins may set a limit or copay other than the type's
    monthly_limit: Decimal | None = None
    copay_percent: Decimal | None = None
    primary_holder: PersonDetails | None = None
    primary_beneficiary_id: UUID | None = None
    insurance_provider: str | None = None
    policy_number: str | None = None
    expiry_date: date | None = None
    activate: bool = True


@dataclass(frozen=True, slots=True)
class ActivateCard:
    at: datetime


@dataclass(frozen=True, slots=True)
class SuspendCard:
    at: datetime
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class ReactivateCard:
    at: datetime


@dataclass(frozen=True, slots=True)
class CancelCard:
    at: datetime
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class RenewCard:
    at: datetime


@dataclass(frozen=True, slots=True)
class ExpireCard:
    at: datetime


@dataclass(frozen=True, slots=True)
class AddBeneficiary:
    beneficiary_id: UUID
    person: PersonDetails
    at: datetime


@dataclass(frozen=True, slots=True)
class RemoveBeneficiary:
    beneficiary_id: UUID
    at: datetime


@dataclass(frozen=True, slots=True)
class ClaimItem:
    item_id: UUID
    drug_code: str
    drug_name: str
    quantity: int
    unit_price: Decimal
    days_supply: int | None = None


@dataclass(frozen=True, slots=True)
class ClaimPrescription:
    claim_id: UUID
    prescription_id: str
    pharmacy_id: str
    total_amount: Decimal
    at: datetime
    beneficiary_id: UUID | None = None
    items: tuple[ClaimItem, ...] = ()
    pay_copayment_from_wallet: bool = False
    hold_id: UUID | None = None  # the benefit hold the claim captures (domain/medcard/holds.py)


@dataclass(frozen=True, slots=True)
class ReverseClaim:
    claim_id: UUID
    at: datetime
    reason: str | None = None


MedCardCommand = (
    IssueCard
    | ActivateCard
    | SuspendCard
    | ReactivateCard
    | CancelCard
    | RenewCard
    | ExpireCard
    | AddBeneficiary
    | RemoveBeneficiary
)
