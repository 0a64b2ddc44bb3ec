"""The payment gateways' callbacks: each gateway's signature scheme, and what its callback
says about a payment, in one shape (GatewayPayment) for the command service to act on."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from decimal import Decimal


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


def signatures_match(expected: str, given: str) -> bool:
    """In constant time (the time taken says nothing about how much of `given` was right);
    hex is compared without regard to case."""
    return hmac.compare_digest(expected.lower().encode(), given.lower().encode())
