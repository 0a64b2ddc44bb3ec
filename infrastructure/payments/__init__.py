"""The payment gateways' callbacks: each gateway's signature scheme, and what its callback
says about a payment, in one shape (GatewayPayment) for the command service to act on."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from domain.calendar import CAIRO


@dataclass(frozen=True, slots=True)
class GatewayPayment:
    """A payment as a verified callback reports it."""

    gateway: str  # as domain/wallet/model.py GATEWAYS names it
    reference: str  # the gateway's id of the payment: it credits one wallet, once, ever
    merchant_reference: str | None  # our order's reference, naming the wallet
    amount: Decimal
    currency: str
    status: str  # the gateway's word for it, for the answer
    completed: bool  # money was taken: only this credits the wallet
    # When the gateway says the member paid (UTC), if its callback tells it; None: not told.
    paid_at: datetime | None = None


def gateway_time(text: str) -> datetime | None:
    """A gateway's time of day as it writes it (ISO 8601, `T` or a space, optional fraction),
    in UTC; None when it is not one. Without an offset it is Cairo's local time: the Egyptian
    gateways write their merchants' times without one (Paymob's `created_at`, the portals'
    exports), and Egypt is where they keep time. The one rule for the callbacks and the
    settlement files (settlement_files.py) alike."""
    try:
        at = datetime.fromisoformat(text.strip())
        return (at if at.tzinfo is not None else at.replace(tzinfo=CAIRO)).astimezone(UTC)
    except (ValueError, OverflowError):  # OverflowError: in UTC it falls before year 1
        return None


def signatures_match(expected: str, given: str) -> bool:
    """In constant time (the time taken says nothing about how much of `given` was right);
    hex is compared without regard to case."""
    return hmac.compare_digest(expected.lower().encode(), given.lower().encode())
