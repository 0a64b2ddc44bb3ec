"""Eligibility: would a claim for this beneficiary be covered now, and on what terms.

A point of sale asks before it dispenses. The answer is the claim's own rule
(`coverage_refusal`, domain/medcard/claims.py) on the same card state, and tells the pharmacy
no more than it needs: the terms, what is left of the month's benefit, and who is on the card
by relationship and masked name (no national id, birth date or phone number).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from uuid import UUID

from domain.calendar import benefit_month
from domain.medcard.claims import coverage_refusal
from domain.medcard.hold_records import HoldRecord, available_in, held_in, open_in
from domain.medcard.state import MedCardState


@dataclass(frozen=True, slots=True)
class MaskedBeneficiary:
    beneficiary_id: UUID
    relationship: str
    masked_name: str | None
    primary: bool


@dataclass(frozen=True, slots=True)
class Eligibility:
    card_id: UUID
    beneficiary_id: UUID
    refusal: str | None  # the reason code a claim would be rejected with; None: covered
    copay_percent: Decimal
    month: str
    monthly_limit: Decimal
    month_spent: Decimal
    remaining: Decimal  # less the open holds: what a claim without a hold could be covered
    held: Decimal  # what the open holds reserve of the month
    open_holds: tuple[HoldRecord, ...]
    beneficiaries: tuple[MaskedBeneficiary, ...]
    at: datetime


def masked_name(name: str) -> str:
    """Each word's first letter and a fixed run of stars ("Mona Ali" -> "M*** A***"): enough
    for the counter to tell family members apart, not their names (nor their lengths)."""
    return " ".join(word[0] + "***" for word in name.split())


def eligibility(card: MedCardState, beneficiary_id: UUID | None, at: datetime) -> Eligibility:
    beneficiary = beneficiary_id or card.primary_beneficiary_id
    month = benefit_month(at)
    remaining = available_in(card, month, at)
    holds = tuple(open_in(card.open_holds, month, at))
    return Eligibility(
        card_id=card.card_id,
        beneficiary_id=beneficiary,
        refusal=coverage_refusal(card, beneficiary, at, remaining),
        copay_percent=card.copay_percent,
        month=month,
        monthly_limit=card.monthly_limit,
        month_spent=card.spent_in(month),
        remaining=remaining,
        held=held_in(holds, month, at),
        open_holds=holds,
        beneficiaries=tuple(
            MaskedBeneficiary(
                beneficiary_id=holder_id,
                relationship=holder.relationship,
                masked_name=masked_name(holder.name) if holder.name else None,
                primary=holder_id == card.primary_beneficiary_id,
            )
            for holder_id, holder in card.beneficiaries.items()
        ),
        at=at,
    )
