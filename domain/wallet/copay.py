"""A claim's copayment from the member's wallet, within the member's consent: all of it or none.

The claim (domain/medcard/claims.py) asks; the answer is a debit, or a declined attempt that
records why for the member (docs/architecture.md, "Copayments from the wallet").
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from uuid import UUID

from domain.calendar import benefit_month
from domain.errors import CommandRejected, Kind
from domain.events import CopayDeclineReason, WalletCopayDeclined, WalletDebited
from domain.money import ZERO
from domain.postings import pharmacy_account
from domain.wallet.model import COPAY_PURPOSE, Debit, WalletState, debit


@dataclass(frozen=True, slots=True)
class PayCopay:
    """Not a command of its own: part of a claim (domain/medcard/claims.py)."""

    claim_id: UUID
    amount: Decimal
    pharmacy_id: str
    at: datetime


def pay_copay(state: WalletState, command: PayCopay) -> WalletDebited | WalletCopayDeclined:
    """All or nothing: the whole copayment is debited if the member's consent and the balance
    allow it, else nothing is and the refusal is recorded on the wallet for the member."""
    amount = command.amount
    month = benefit_month(command.at)
    reason = copay_refusal(state, amount, month)
    if reason is not None:
        return WalletCopayDeclined(
            claim_id=command.claim_id,
            pharmacy_id=command.pharmacy_id,
            amount=amount,
            reason=reason,
            month=month,
            balance=state.balance,
            at=command.at,
        )
    debited = debit(
        state,
        Debit(
            debit_id=command.claim_id,
            amount=amount,
            purpose=COPAY_PURPOSE,
            reference=str(command.claim_id),
            at=command.at,
            counterparty_account=pharmacy_account(command.pharmacy_id),
        ),
    )
    if debited is None:  # claim ids are new per claim: a second debit means a reused id
        raise CommandRejected("claim_exists", "a claim with this id exists", Kind.CONFLICT)
    return debited


def copay_refusal(state: WalletState, amount: Decimal, month: str) -> CopayDeclineReason | None:
    """Why the wallet may not pay `amount` of a claim's copayment in `month`, or None.
    Consent first: a wallet the member never opened to claims says nothing else."""
    if state.copay_per_claim_limit <= ZERO or state.copay_monthly_limit <= ZERO:
        return "no_consent"
    if amount > state.copay_per_claim_limit:
        return "over_claim_limit"
    if state.copay_used_in(month) + amount > state.copay_monthly_limit:
        return "over_monthly_limit"
    if amount > state.balance:
        return "insufficient_funds"
    return None
