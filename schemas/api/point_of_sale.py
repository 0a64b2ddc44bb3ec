"""Answers of the point-of-sale queries of the write API (command_service/point_of_sale.py).

A query over POST (the card number is in the body, not in a URL that logs and caches keep):
decided on the write side's state, with no side effect. The models describe the wire form
and build it, so the document and the answer cannot drift.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import Field

from schemas.api.reads import Answer, Money, Month, Relationship


class EligibleBeneficiary(Answer):
    id: UUID = Field(description="the beneficiary id a claim names (`beneficiaryId`)")
    relationship: Relationship
    name: str | None = Field(
        description='masked: each word\'s first letter and three stars ("M*** A***")'
    )
    primary: bool = Field(description="the card's primary holder, a claim's default")


class EligibleHold(Answer):
    hold_id: UUID
    pharmacy_id: str = Field(description="the pharmacy that placed it: only it may capture it")
    amount: Money
    expires_at: datetime


class EligibilityAnswer(Answer):
    medcard_id: UUID
    beneficiary_id: UUID = Field(description="whom the check was for (default: the primary)")
    covered: bool = Field(description="whether a claim for this beneficiary is covered now")
    reason: str | None = Field(
        description="why not: the reason code the claim would be rejected with (card_suspended,"
        " card_expired, beneficiary_not_on_card, monthly_limit_exhausted, ...); null if covered"
    )
    copayment_percentage: Money = Field(description="the card's copay share, percent")
    month: Month
    monthly_limit: Money
    month_spent: Money
    held_amount: Money = Field(description="what the month's open benefit holds reserve")
    remaining_monthly_limit: Money = Field(
        description="what a claim without a hold could be covered: the limit less the month's"
        " spend and its open holds"
    )
    open_holds: list[EligibleHold] = Field(description="the month's open holds, oldest first")
    beneficiaries: list[EligibleBeneficiary]
    checked_at: datetime
    version: int = Field(ge=1, description="the card's version the answer was decided on")
