"""Which messages an event asks for, and what the notifier learns from it about who gets
them. Pure: no store, no clock; the worker resolves recipients and stores the rows.

- medcard.claim_adjudicated (approved or partly): a receipt to the beneficiary who claimed
  (the primary holder if that beneficiary has no phone); to the primary holder, 80 % or
  100 % of the month's benefit when this claim crossed it (only the higher one if it crossed
  both). The event carries the limit and the month's spend after it, so no card state is
  needed: spent before = spent after - covered.
- wallet.debited: the low-balance message when it took the balance from at least
  SMS_LOW_WALLET_BALANCE to below it.
- wallet.topped_up: a receipt to the wallet's owner.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from uuid import UUID

from domain.events import (
    BeneficiaryAdded,
    BeneficiaryRemoved,
    ClaimAdjudicated,
    DomainEvent,
    Holder,
    MedCardIssued,
    WalletDebited,
    WalletOpened,
    WalletToppedUp,
)
from projection_service.notifier.templates import Kind

RELEVANT = frozenset(
    cls.event_type
    for cls in (
        MedCardIssued,
        BeneficiaryAdded,
        BeneficiaryRemoved,
        ClaimAdjudicated,
        WalletOpened,
        WalletDebited,
        WalletToppedUp,
    )
)
NEAR_LIMIT = Decimal("0.8")


@dataclass(frozen=True, slots=True)
class Contact:
    beneficiary_id: UUID
    card_id: UUID
    user_id: str | None  # on the primary holder only
    phone_number: str | None
    is_primary: bool


@dataclass(frozen=True, slots=True)
class ToBeneficiary:
    card_id: UUID
    beneficiary_id: UUID


@dataclass(frozen=True, slots=True)
class ToHolder:
    card_id: UUID


@dataclass(frozen=True, slots=True)
class ToWalletOwner:
    wallet_id: UUID


Recipient = ToBeneficiary | ToHolder | ToWalletOwner


@dataclass(frozen=True, slots=True)
class Intent:
    kind: Kind
    to: Recipient
    amounts: dict[str, Decimal]
    # At most one message per key ever (the benefit thresholds: per card and month).
    once_key: str | None = None


@dataclass(slots=True)
class Derived:
    contacts: list[Contact] = field(default_factory=list)
    removed: list[UUID] = field(default_factory=list)
    wallet_owner: tuple[UUID, str] | None = None
    intents: list[Intent] = field(default_factory=list)


def derive(aggregate_id: UUID, event: DomainEvent, low_balance: Decimal) -> Derived:
    out = Derived()
    match event:
        case MedCardIssued():
            out.contacts.append(_contact(aggregate_id, event.primary_holder, event.user_id))
        case BeneficiaryAdded():
            out.contacts.append(_contact(aggregate_id, event.beneficiary, None))
        case BeneficiaryRemoved():
            out.removed.append(event.beneficiary_id)
        case ClaimAdjudicated() if event.decision != "rejected":
            out.intents.extend(_claim_intents(aggregate_id, event))
        case WalletOpened():
            out.wallet_owner = (event.wallet_id, event.owner_user_id)
        case WalletDebited():
            before = event.balance_after + event.amount
            if before >= low_balance > event.balance_after:
                out.intents.append(
                    Intent(
                        "wallet_low", ToWalletOwner(aggregate_id), {"balance": event.balance_after}
                    )
                )
        case WalletToppedUp():
            amounts = {"amount": event.amount, "balance": event.balance_after}
            out.intents.append(Intent("topup", ToWalletOwner(aggregate_id), amounts))
    return out


def _contact(card_id: UUID, holder: Holder, user_id: str | None) -> Contact:
    return Contact(
        holder.beneficiary_id, card_id, user_id, holder.phone_number, user_id is not None
    )


def _claim_intents(card_id: UUID, claim: ClaimAdjudicated) -> list[Intent]:
    receipt = Intent(
        "claim_receipt",
        ToBeneficiary(card_id, claim.beneficiary_id),
        {
            "covered": claim.covered_amount,
            "copay": claim.copayment_amount,
            "remaining": claim.remaining_after,
        },
    )
    intents = [receipt]
    kind = threshold_crossed(claim.monthly_limit, claim.month_spent_after, claim.covered_amount)
    if kind is not None:
        amounts = {"spent": claim.month_spent_after, "limit": claim.monthly_limit}
        once = f"{card_id}:{claim.month}:{kind}"
        intents.append(Intent(kind, ToHolder(card_id), amounts, once))
    return intents


def threshold_crossed(limit: Decimal, spent_after: Decimal, covered: Decimal) -> Kind | None:
    """The highest benefit threshold this claim's covered amount took the month across."""
    if limit <= 0 or covered <= 0:
        return None
    before = spent_after - covered
    if before < limit <= spent_after:
        return "benefit_100"
    if before < limit * NEAR_LIMIT <= spent_after:
        return "benefit_80"
    return None
