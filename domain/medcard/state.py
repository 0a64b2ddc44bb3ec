"""A MedCard as the decider sees it, rebuilt by folding its events with `evolve`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import Decimal
from uuid import UUID

from domain.events import (
    BeneficiaryAdded,
    BeneficiaryRemoved,
    ClaimAdjudicated,
    ClaimReversed,
    DomainEvent,
    Holder,
    MedCardActivated,
    MedCardCancelled,
    MedCardExpired,
    MedCardIssued,
    MedCardReactivated,
    MedCardRenewed,
    MedCardSuspended,
)
from domain.money import ZERO


@dataclass(frozen=True, slots=True)
class ClaimRecord:
    adjudication: ClaimAdjudicated
    reversed: bool = False


@dataclass(slots=True)
class MedCardState:
    """Mutable on purpose: `evolve` updates the state it folds into, in place.

    Copying the claim maps on every claim made the claim path O(claims on the card) in CPU
    and garbage. The fold owns its accumulator: `decide` only reads a state, and the command
    service advances a cached state only after its events have committed.
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
    month_spent: dict[str, Decimal] = field(default_factory=dict)
    claims: dict[UUID, ClaimRecord] = field(default_factory=dict)
    # the latest claim per prescription: "one charge per prescription id per card"
    by_prescription: dict[str, UUID] = field(default_factory=dict)

    def spent_in(self, month: str) -> Decimal:
        return self.month_spent.get(month, ZERO)

    def remaining_in(self, month: str) -> Decimal:
        return max(self.monthly_limit - self.spent_in(month), ZERO)


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
            state.claims[event.claim_id] = ClaimRecord(event)
            state.by_prescription[event.prescription_id] = event.claim_id
        case ClaimReversed():
            state.month_spent[event.month] = event.month_spent_after
            state.claims[event.claim_id] = replace(state.claims[event.claim_id], reversed=True)
        case _:
            raise ValueError(f"not a medcard event: {event.event_type}")
    return state
