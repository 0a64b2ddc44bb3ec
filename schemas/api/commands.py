"""Request bodies of the write API (camelCase on the wire, unknown fields refused)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from pydantic.alias_generators import to_camel

# DECIMAL(12,2) in the read models: at most 9,999,999,999.99.
Amount = Annotated[Decimal, Field(gt=0, max_digits=12, decimal_places=2, allow_inf_nan=False)]
# A limit the member sets: 0 (none) up to the same bound as an amount.
Limit = Annotated[Decimal, Field(ge=0, max_digits=12, decimal_places=2, allow_inf_nan=False)]
Percent = Annotated[Decimal, Field(ge=0, le=100, max_digits=5, decimal_places=2)]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
Reference = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Code = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=50)]


class Body(BaseModel):
    model_config = ConfigDict(
        extra="forbid", alias_generator=to_camel, populate_by_name=False, frozen=True
    )


class Person(Body):
    relationship: Annotated[str, StringConstraints(min_length=1, max_length=20)] = "self"
    national_id: Annotated[str, StringConstraints(min_length=1, max_length=14)]
    name: Text
    date_of_birth: date
    phone_number: Annotated[str, StringConstraints(min_length=1, max_length=20)]


class IssueCardBody(Body):
    user_id: Text
    card_type: Annotated[str, StringConstraints(min_length=1, max_length=20)]
    monthly_limit: Amount | None = None
    copayment_percentage: Percent | None = None
    primary_holder: Person | None = None
    insurance_provider: Text | None = None
    policy_number: Annotated[str, StringConstraints(min_length=1, max_length=50)] | None = None
    expiry_date: date | None = None
    status: Annotated[str, StringConstraints(pattern="^(ACTIVE|PENDING)$")] = "ACTIVE"


class StatusChangeBody(Body):
    reason: Reason | None = None


class AddBeneficiaryBody(Person):
    relationship: Annotated[str, StringConstraints(min_length=1, max_length=20)]


class ClaimItemBody(Body):
    drug_code: Code
    drug_name: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)
    ]
    quantity: Annotated[int, Field(strict=True, ge=1, le=100_000)]
    unit_price: Amount


class ClaimBody(Body):
    prescription_id: Text
    total_amount: Amount
    beneficiary_id: UUID | None = None
    items: Annotated[list[ClaimItemBody], Field(max_length=200)] = []
    pay_copayment_from_wallet: Annotated[bool, Field(strict=True)] = False


class ReversalBody(Body):
    reason: Reason | None = None


class OpenWalletBody(Body):
    user_id: Text


class TopUpBody(Body):
    gateway: Annotated[str, StringConstraints(min_length=1, max_length=20)]
    gateway_reference: Reference
    amount: Amount


class DebitBody(Body):
    amount: Amount
    reference: Reference
    purpose: Code = "purchase"


class CopayConsentBody(Body):
    """The member's consent to claims' copayments paid from the wallet; 0 and 0 withdraws it."""

    per_claim_limit: Limit = Field(description="the most one claim's copayment may be")
    monthly_limit: Limit = Field(
        description="the most all claims may take in a calendar month (Africa/Cairo)"
    )
