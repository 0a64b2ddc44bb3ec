"""Double-entry postings. A positive amount credits the account, a negative one debits it."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from uuid import UUID

from domain.events import Posting
from domain.money import ZERO


def insurer_account(provider: str | None) -> str:
    return f"insurer:{provider or 'healthpay'}"


def pharmacy_account(pharmacy_id: str) -> str:
    return f"pharmacy:{pharmacy_id}"


def wallet_account(wallet_id: UUID) -> str:
    return f"member_wallet:{wallet_id}"


def gateway_account(gateway: str) -> str:
    return f"gateway_clearing:{gateway}"


def transfer(amount: Decimal, from_account: str, to_account: str) -> tuple[Posting, ...]:
    if amount == ZERO:
        return ()
    return (
        Posting(account=from_account, amount=-amount),
        Posting(account=to_account, amount=amount),
    )


def reverse(postings: Iterable[Posting]) -> tuple[Posting, ...]:
    return tuple(Posting(account=p.account, amount=-p.amount) for p in postings)


def balance_of(postings: Iterable[Posting]) -> Decimal:
    return sum((p.amount for p in postings), ZERO)
