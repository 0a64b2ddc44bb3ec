"""Prescription claim adjudication and reversal (docs/design.md §6).

copay = total x copay% (half-up to 0.01); covered = min(total - copay, remaining monthly limit);
whatever is not covered is the member's copayment. The benefit month is the Cairo calendar month.
A copayment is paid from the member's wallet only within the member's consent
(domain/wallet/copay.py), and the claim says only whether it was.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from uuid import UUID

from domain.calendar import cairo_date, month_of
from domain.errors import CommandRejected, Kind
from domain.events import (
    ClaimAdjudicated,
    ClaimItemSplit,
    ClaimReversed,
    Decision,
    DomainEvent,
    WalletDebited,
)
from domain.medcard.commands import ClaimItem, ClaimPrescription, ReverseClaim
from domain.medcard.hold_records import available_in
from domain.medcard.refills import (
    DEFAULT_RULES,
    MAX_DAYS_SUPPLY,
    NOTHING_TO_CHECK,
    REFILL_TOO_SOON,
    ClaimRules,
    RefillCheck,
    check_refills,
)
from domain.medcard.state import (
    BEYOND_WINDOW,
    ClaimNeeded,
    ClaimRecord,
    Looked,
    MedCardState,
    PriorChargeNeeded,
)
from domain.medcard.velocity import velocity_flags
from domain.money import ZERO, MoneyError, money, percent_of, split_proportionally
from domain.postings import insurer_account, pharmacy_account, reverse, transfer
from domain.wallet.copay import PayCopay, pay_copay
from domain.wallet.model import Refund, WalletState, refund

MAX_QUANTITY = 100_000

# Reason codes: part of the API, never renamed.
COVERED_WITHIN_LIMIT = "covered_within_monthly_limit"
LIMIT_PARTLY_USED_UP = "monthly_limit_partially_exhausted"
LIMIT_EXHAUSTED = "monthly_limit_exhausted"
CARD_NOT_ACTIVATED = "card_not_activated"
CARD_SUSPENDED = "card_suspended"
CARD_CANCELLED = "card_cancelled"
CARD_EXPIRED = "card_expired"
BENEFICIARY_NOT_ON_CARD = "beneficiary_not_on_card"
COPAY_FROM_WALLET = "copayment_paid_from_wallet"
# Every cause alike (no wallet, no consent, a limit, the balance): the pharmacy must learn
# neither whether the member has a wallet nor what it holds. Claims decided before the consent
# existed may carry wallet_not_found or wallet_insufficient_funds instead.
WALLET_DECLINED = "wallet_payment_declined"

_STATUS_REASONS = {
    "PENDING": CARD_NOT_ACTIVATED,
    "SUSPENDED": CARD_SUSPENDED,
    "CANCELLED": CARD_CANCELLED,
    "EXPIRED": CARD_EXPIRED,
}


@dataclass(frozen=True, slots=True)
class ClaimDecision:
    claim: ClaimAdjudicated
    card_events: list[DomainEvent]
    wallet_events: list[DomainEvent]
    replayed: bool  # an identical earlier submission: nothing new happened


@dataclass(frozen=True, slots=True)
class ReversalDecision:
    reversal: ClaimReversed
    card_events: list[DomainEvent]
    wallet_events: list[DomainEvent]


def fingerprint(command: ClaimPrescription) -> str:
    """What makes two submissions of one prescription 'the same body'."""
    parts = [
        command.prescription_id,
        command.pharmacy_id,
        _canonical(command.total_amount),
        str(command.beneficiary_id or ""),
        "1" if command.pay_copayment_from_wallet else "0",
    ]
    parts += [
        f"{i.drug_code}\x1f{i.drug_name}\x1f{i.quantity}\x1f{_canonical(i.unit_price)}"
        # only when given: a claim without one keeps the fingerprint it always had
        + ("" if i.days_supply is None else f"\x1f{i.days_supply}")
        for i in command.items
    ]
    if command.hold_id is not None:  # after the items: a claim without one keeps its print
        parts.append(f"hold\x1f{command.hold_id}")
    return hashlib.sha256("\x1e".join(parts).encode()).hexdigest()[:32]


def _canonical(amount: Decimal) -> str:
    # 350, 350.0 and 350.00 are one amount: a retry must not become a conflict over notation
    return f"{amount.normalize():f}" if amount.is_finite() else str(amount)


def adjudicate(
    card: MedCardState | None,
    wallet: WalletState | None,
    command: ClaimPrescription,
    prior: Looked[ClaimAdjudicated] | None = None,
    rules: ClaimRules = DEFAULT_RULES,
) -> ClaimDecision:
    """`prior`: the prescription's standing charge as the event store holds it, given when
    the card's state could not say (PriorChargeNeeded). A charge decided without knowing
    is safe: the event store refuses a second hold on the prescription at the append."""
    if card is None:
        raise CommandRejected("card_not_found", "no such card", Kind.NOT_FOUND)
    total, items = _checked_request(command)
    print_ = fingerprint(command)
    earlier = card.charge_of(command.prescription_id) if prior is None else prior.value
    if isinstance(earlier, ClaimRecord | ClaimAdjudicated):
        return _replayed(earlier, command, print_)
    if isinstance(card.claim(command.claim_id), ClaimRecord):
        # A reused id would overwrite the earlier claim's record (and its reversal). Claim
        # ids are minted by the service, so the window is all this check needs.
        raise CommandRejected("claim_exists", "a claim with this id exists", Kind.CONFLICT)

    day = cairo_date(command.at)  # once: the conversion costs ~4 µs
    month = month_of(day)
    beneficiary = command.beneficiary_id or card.primary_beneficiary_id
    remaining = card.remaining_in(month)
    # less the open holds but the one this claim captures (domain/medcard/holds.py)
    available = available_in(card, month, command.at, command.hold_id)
    rejection = coverage_refusal(card, beneficiary, command.at, available)
    refill = NOTHING_TO_CHECK if rejection else _refill(card, beneficiary, command, day, rules)
    if refill.next_available is not None:
        rejection = REFILL_TOO_SOON
    if rejection is not None and earlier is BEYOND_WINDOW:
        # A standing charge would be replayed or refused, not rejected anew.
        raise PriorChargeNeeded(command.prescription_id)
    copay_share = percent_of(total, card.copay_percent)
    covered, reasons, decision = _split(total, copay_share, available, rejection)
    copayment = total - covered
    wallet_events: list[DomainEvent] = []
    paid: WalletDebited | None = None
    if command.pay_copayment_from_wallet and decision != "rejected" and copayment > ZERO:
        if wallet is not None:
            attempt = pay_copay(
                wallet, PayCopay(command.claim_id, copayment, command.pharmacy_id, command.at)
            )
            wallet_events.append(attempt)  # the debit, or the declined attempt for the member
            paid = attempt if isinstance(attempt, WalletDebited) else None
        reasons.append(COPAY_FROM_WALLET if paid is not None else WALLET_DECLINED)
    claim = _claim_event(
        card,
        command,
        _Decided(
            beneficiary, day, month, remaining, print_, decision, reasons, total, covered, items
        ),
        wallet.wallet_id if paid is not None and wallet is not None else None,
        refill,
        rules,
    )
    return ClaimDecision(claim, [claim], wallet_events, replayed=False)


def _refill(
    card: MedCardState,
    beneficiary: UUID,
    command: ClaimPrescription,
    day: date,
    rules: ClaimRules,
) -> RefillCheck:
    """The refill check, for a claim the coverage rules let through."""
    drugs = (item.drug_code for item in command.items)
    return check_refills(card.refills, beneficiary, drugs, day, rules.refill_min_elapsed_share)


@dataclass(frozen=True, slots=True)
class _Decided:
    beneficiary: UUID
    day: date  # Cairo
    month: str
    remaining: Decimal  # the month's benefit before this claim
    fingerprint: str
    decision: Decision
    reasons: list[str]
    total: Decimal
    covered: Decimal
    items: list[CheckedItem]


def _claim_event(
    card: MedCardState,
    command: ClaimPrescription,
    decided: _Decided,
    paid_from: UUID | None,
    refill: RefillCheck,
    rules: ClaimRules,
) -> ClaimAdjudicated:
    """The adjudication's event; `paid_from`: the wallet that paid the copayment, if one did."""
    month = decided.month
    total, covered = decided.total, decided.covered
    copayment = total - covered
    booked = decided.decision != "rejected"
    return ClaimAdjudicated(
        claim_id=command.claim_id,
        prescription_id=command.prescription_id,
        pharmacy_id=command.pharmacy_id,
        beneficiary_id=decided.beneficiary,
        request_fingerprint=decided.fingerprint,
        decision=decided.decision,
        reasons=tuple(decided.reasons),
        total_amount=total,
        covered_amount=covered,
        copayment_amount=copayment,
        copay_percent=card.copay_percent,
        items=_item_splits(decided.items, covered),
        month=month,
        monthly_limit=card.monthly_limit,
        month_spent_after=card.spent_in(month) + covered,
        remaining_after=decided.remaining - covered,
        wallet_id=paid_from,
        copayment_paid_from_wallet=copayment if paid_from is not None else ZERO,
        claimed_at=command.at,
        postings=transfer(
            covered, insurer_account(card.insurance_provider), pharmacy_account(command.pharmacy_id)
        ),
        next_available_fill_date=refill.next_available,
        refill_overrides_used=refill.overrides_used,
        flags=_flags(card, decided, rules) if booked else (),
    )


def _flags(card: MedCardState, decided: _Decided, rules: ClaimRules) -> tuple[str, ...]:
    return velocity_flags(
        card.day_tallies,
        decided.beneficiary,
        decided.day,
        decided.total,
        rules.velocity_max_claims_per_day,
        rules.velocity_max_amount_per_day,
    )


CheckedItem = tuple[ClaimItem, int, Decimal]


def _replayed(
    earlier: ClaimRecord | ClaimAdjudicated, command: ClaimPrescription, print_: str
) -> ClaimDecision:
    """A prescription charged already: the same request replays its answer, another is 409."""
    if earlier.request_fingerprint != print_:
        raise CommandRejected(
            "duplicate_prescription",
            "this prescription was already charged on this card with a different request",
            Kind.CONFLICT,
        )
    if isinstance(earlier, ClaimRecord):
        raise PriorChargeNeeded(command.prescription_id)  # to answer with its event
    return ClaimDecision(earlier, [], [], replayed=True)


def _checked_request(command: ClaimPrescription) -> tuple[Decimal, list[CheckedItem]]:
    """The claim's total and items, once each is valid and the items sum to the total."""
    total = _amount(command.total_amount, "totalAmount")
    items = [_checked_item(item) for item in command.items]
    if items and sum((q * p for _, q, p in items), ZERO) != total:
        raise CommandRejected(
            "items_total_mismatch", "the items' quantity x unitPrice do not sum to totalAmount"
        )
    if not command.prescription_id.strip() or len(command.prescription_id) > 100:
        raise CommandRejected(
            "invalid_prescription_id", "prescriptionId must be 1 to 100 characters"
        )
    return total, items


def _split(
    total: Decimal, copay_share: Decimal, remaining: Decimal, rejection: str | None
) -> tuple[Decimal, list[str], Decision]:
    """covered = min(total - copay, remaining monthly limit): the amount, reasons, decision."""
    if rejection is not None:
        return ZERO, [rejection], "rejected"
    covered = min(total - copay_share, remaining)
    if covered == total - copay_share:
        return covered, [COVERED_WITHIN_LIMIT], "approved"
    return covered, [LIMIT_PARTLY_USED_UP], "partially_approved"


def _item_splits(items: list[CheckedItem], covered: Decimal) -> tuple[ClaimItemSplit, ...]:
    """The covered amount shared over the items in proportion to their prices."""
    if not items:
        return ()
    splits = split_proportionally(covered, [q * p for _, q, p in items])
    return tuple(
        ClaimItemSplit(
            item_id=item.item_id,
            drug_code=item.drug_code,
            drug_name=item.drug_name,
            quantity=quantity,
            unit_price=price,
            total_price=quantity * price,
            covered_amount=share,
            copayment_amount=quantity * price - share,
            days_supply=item.days_supply,
        )
        for (item, quantity, price), share in zip(items, splits, strict=True)
    )


def reverse_claim(
    card: MedCardState | None,
    wallet: WalletState | None,
    command: ReverseClaim,
    looked_up: Looked[ClaimRecord] | None = None,
) -> ReversalDecision:
    """`looked_up`: the claim as the event store holds it, after a ClaimNeeded."""
    if card is None:
        raise CommandRejected("card_not_found", "no such card", Kind.NOT_FOUND)
    record = card.claim(command.claim_id) if looked_up is None else looked_up.value
    if record is BEYOND_WINDOW:
        raise ClaimNeeded(command.claim_id)
    if record is None:
        raise CommandRejected("claim_not_found", "no such claim on this card", Kind.NOT_FOUND)
    claim = record
    if record.reversed:
        raise CommandRejected("claim_already_reversed", "this claim was reversed", Kind.CONFLICT)
    if claim.decision == "rejected":
        raise CommandRejected(
            "claim_not_reversible", "a rejected claim charged nothing to reverse", Kind.CONFLICT
        )
    wallet_events: list[DomainEvent] = []
    if claim.copayment_paid_from_wallet > ZERO:
        if wallet is None:
            raise CommandRejected(
                "wallet_not_found", "the claim's wallet is missing", Kind.CONFLICT
            )
        wallet_events.append(
            refund(
                wallet,
                Refund(
                    refund_id=command.claim_id,
                    debit_id=command.claim_id,
                    at=command.at,
                    reason="claim_reversed",
                ),
            )
        )
    spent_after = card.spent_in(claim.month) - claim.covered_amount
    reversal = ClaimReversed(
        claim_id=claim.claim_id,
        prescription_id=claim.prescription_id,
        pharmacy_id=claim.pharmacy_id,
        month=claim.month,
        restored_amount=claim.covered_amount,
        month_spent_after=spent_after,
        remaining_after=max(card.monthly_limit - spent_after, ZERO),
        wallet_refund=claim.copayment_paid_from_wallet,
        reason=command.reason,
        at=command.at,
        postings=reverse(claim.postings),
    )
    return ReversalDecision(reversal, [reversal], wallet_events)


def coverage_refusal(
    card: MedCardState, beneficiary: object, at: datetime, remaining: Decimal
) -> str | None:
    """Why a claim for `beneficiary` at `at` would be rejected (its reason code), or None when
    it would be covered, `remaining` being the benefit month's: the one rule a claim, a quote
    and an eligibility check share."""
    status_reason = _STATUS_REASONS.get(card.status)
    if status_reason is not None:
        return status_reason
    if cairo_date(at) > card.expiry_date:
        return CARD_EXPIRED
    if beneficiary not in card.beneficiaries:
        return BENEFICIARY_NOT_ON_CARD
    if remaining <= ZERO:
        return LIMIT_EXHAUSTED
    return None


def _amount(value: Decimal, field: str) -> Decimal:
    try:
        amount = money(value)
    except MoneyError as exc:
        raise CommandRejected("invalid_amount", f"{field}: {exc}") from exc
    if amount <= ZERO:
        raise CommandRejected("invalid_amount", f"{field} must be greater than zero")
    return amount


def _checked_item(item: ClaimItem) -> CheckedItem:
    if not 1 <= item.quantity <= MAX_QUANTITY:
        raise CommandRejected("invalid_quantity", f"quantity must be 1 to {MAX_QUANTITY}")
    if item.days_supply is not None and not 1 <= item.days_supply <= MAX_DAYS_SUPPLY:
        raise CommandRejected("invalid_days_supply", f"daysSupply must be 1 to {MAX_DAYS_SUPPLY}")
    if not item.drug_code.strip() or not item.drug_name.strip():
        raise CommandRejected("invalid_item", "drugCode and drugName must not be blank")
    return item, item.quantity, _amount(item.unit_price, "unitPrice")
