"""Answers of the REST reads (api_gateway/rest.py), as the gateway puts them on the wire.

These models describe, they do not build: api_gateway/read_models.py writes its JSON by
hand (it is on the read hot path), and tests/gateway/test_openapi.py holds real answers
against the schemas made from these models. Hence `extra="forbid"` (a field the gateway
adds without documenting it fails that test) and every always-sent field is required, even
when it may be null.

Wire conventions shared with the write API: camelCase, money as a string with exactly two
decimals ("315.00", never a JSON number: floats would round it), ISO 8601 timestamps.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel
from pydantic.json_schema import SkipJsonSchema

from domain.medcard.card_types import CARD_TYPES
from domain.medcard.decider import RELATIONSHIPS
from schemas.api.formats import MAX_POSITION

Money = Annotated[
    str,
    Field(
        pattern=r"^[0-9]+\.[0-9]{2}$",
        description="an amount with two decimals, as a string",
        examples=["315.00"],
    ),
]
Month = Annotated[
    str,
    Field(pattern=r"^[0-9]{4}-[0-9]{2}$", description="a benefit month (Africa/Cairo)"),
]
Position = Annotated[int, Field(ge=0, le=MAX_POSITION, description="a position in the event store")]
CardType = Annotated[str, Field(json_schema_extra={"enum": sorted(CARD_TYPES)})]
Relationship = Annotated[str, Field(json_schema_extra={"enum": sorted(RELATIONSHIPS)})]
# As stored: normalised to E.164 on the way in (domain/identity.py: normalize_mobile).
Mobile = Annotated[str, Field(pattern=r"^\+201[0125][0-9]{8}$", examples=["+201012345678"])]
NationalId = Annotated[str, Field(pattern=r"^[23][0-9]{13}$")]
CardStatus = Literal["PENDING", "ACTIVE", "SUSPENDED", "EXPIRED", "CANCELLED"]
Decision = Literal["approved", "partially_approved", "rejected"]
# a claim's status: its decision, or "reversed" once reversed (a statement filters on it)
ClaimStatus = Literal["approved", "partially_approved", "rejected", "reversed"]


class Answer(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=False, frozen=True, extra="forbid"
    )


class Holder(Answer):
    """A card's primary holder as issued; personal details may have been left out."""

    id: UUID = Field(description="the holder's beneficiary id")
    relationship: Relationship
    national_id: NationalId | None
    name: str | None
    date_of_birth: date | None
    phone_number: Mobile | None


class Beneficiary(Answer):
    """Someone a card covers (the primary holder too, with isPrimary); removed ones are not
    listed."""

    id: UUID
    relationship: Relationship
    national_id: NationalId | None
    name: str | None
    date_of_birth: date | None
    phone_number: Mobile | None
    is_primary: bool
    added_at: datetime


class BeneficiaryList(Answer):
    items: list[Beneficiary]


class OpenHold(Answer):
    """A benefit hold open now: part of the month's benefit no other claim may use."""

    hold_id: UUID
    prescription_id: str
    pharmacy_id: str
    beneficiary_id: UUID
    amount: Money
    expires_at: datetime
    placed_at: datetime


class Card(Answer):
    """A MedCard with this benefit month's spend (read at request time: in a month with no
    claim yet, nothing is spent) and its current beneficiaries."""

    id: UUID
    card_number: str
    user_id: str
    card_type: CardType
    status: CardStatus
    monthly_limit: Money
    copayment_percentage: Money
    max_beneficiaries: int
    currency: str = Field(examples=["EGP"])
    primary_holder: Holder
    insurance_provider: str | None
    policy_number: str | None
    issued_at: datetime
    expiry_date: date
    updated_at: datetime
    current_month: Month
    current_month_spent: Money
    held_this_month: Money = Field(description="what the open holds reserve of the month")
    remaining_this_month: Money = Field(
        description="the monthly limit less the month's spend and its open holds"
    )
    open_holds: list[OpenHold] = Field(description="the month's open holds, oldest first")
    version: int = Field(description="the card's aggregate version this answer reflects")
    beneficiaries: list[Beneficiary]


class Claim(Answer):
    """A prescription claim as adjudicated (rejections too); status becomes "reversed" once
    reversed, while decision keeps what was decided."""

    claim_id: UUID
    medcard_id: UUID
    prescription_id: str
    pharmacy_id: str
    beneficiary_id: UUID
    decision: Decision
    status: ClaimStatus
    reasons: list[str]
    total_amount: Money
    covered_amount: Money
    copayment_amount: Money
    copayment_percentage: Money
    copayment_paid_from_wallet: Money
    wallet_id: UUID | None = Field(description="the wallet that paid the copayment, if one did")
    month: Month
    monthly_limit: Money
    month_spent: Money = Field(description="spent in the claim's month after this claim")
    remaining_monthly_limit: Money
    claimed_at: datetime
    reversed_at: datetime | None
    reversal_reason: str | None
    position: Position = Field(description="the adjudication's position")


class ClaimItem(Answer):
    drug_code: str
    drug_name: str
    quantity: int
    unit_price: Money
    total_price: Money
    covered_amount: Money
    copayment_amount: Money


class ClaimDetails(Claim):
    """One claim with its prescription lines, in prescription order."""

    items: list[ClaimItem]


class ClaimPage(Answer):
    """Claims (a card's, or a pharmacy's statement), newest first."""

    items: list[Claim]
    next_cursor: str | None = Field(description="pass as `cursor` for the next page; null: last")


class CopayConsent(Answer):
    """How much claims may take from the wallet for their copayments (0 and 0: nothing, the
    default). A claim's copayment is paid from the wallet whole or not at all."""

    per_claim_limit: Money = Field(description="the most one claim's copayment may be")
    monthly_limit: Money = Field(description="the most claims may take in a month (Cairo)")
    set_at: datetime | None = Field(description="when the member last set it; null: never")


class Wallet(Answer):
    id: UUID
    owner_user_id: str
    currency: str = Field(examples=["EGP"])
    balance: Money
    opened_at: datetime
    updated_at: datetime
    version: int = Field(description="the wallet's aggregate version this answer reflects")
    copay_consent: CopayConsent


# The type-dependent fields are absent on other types; `str | SkipJsonSchema[None]` documents
# "absent or a string" (a plain `str | None = None` would also allow an explicit null).
class Transaction(Answer):
    """One wallet movement: a top-up, a debit or a refund of a debit; or a claim's copayment
    the wallet declined (`declined`: nothing moved, `amount` is what the claim asked)."""

    wallet_id: UUID
    transaction_id: UUID
    type: Literal["topup", "debit", "refund", "declined"]
    amount: Money
    balance: Money = Field(description="the wallet's balance after this movement")
    at: datetime
    position: Position
    gateway: str | SkipJsonSchema[None] = Field(default=None, description="topup only")
    gateway_reference: str | SkipJsonSchema[None] = Field(default=None, description="topup only")
    paid_at: datetime | None = Field(
        default=None,
        description="topup only: when the gateway says the member paid; null: it did not say"
        " (every top-up recorded before the ledger asked)",
    )
    purpose: str | SkipJsonSchema[None] = Field(
        default=None, description='debit only: e.g. "purchase", "claim_copayment"'
    )
    reference: str | SkipJsonSchema[None] = Field(
        default=None,
        description="debit: the caller's reference (a claim's copayment: the claim id);"
        " declined: the claim id",
    )
    debit_id: UUID | SkipJsonSchema[None] = Field(
        default=None, description="refund only: the refunded debit's id"
    )
    reason: str | None = Field(
        default=None,
        description="refund: its reason, may be null; declined: no_consent, over_claim_limit,"
        " over_monthly_limit or insufficient_funds",
    )


class TransactionPage(Answer):
    """A wallet's movements, newest first."""

    items: list[Transaction]
    next_cursor: str | None = Field(description="pass as `cursor` for the next page; null: last")
