"""Paymob's transaction processed callback (a POST of `{"type": "TRANSACTION", "obj": {...}}`).

The HMAC, as Paymob documents it (developers.paymob.com/paymob-docs/developers/
webhook-callbacks-and-hmac/hmac/hmac-transaction-callback): HMAC-SHA512, keyed by the
merchant's HMAC secret, over the concatenation, without separators, of these `obj` fields in
this order, sent in hexadecimal as the callback URL's `hmac` query parameter:

    amount_cents, created_at, currency, error_occured, has_parent_transaction, id,
    integration_id, is_3d_secure, is_auth, is_capture, is_refunded, is_standalone_payment,
    is_voided, order.id, owner, pending, source_data.pan, source_data.sub_type,
    source_data.type, success

(booleans as `true` / `false`). `order.merchant_order_id`, which names the wallet, is not
among them, and the payer sees the signed fields with their HMAC (the transaction response
callback redirects their browser with them): a copy with another merchant reference
verifies. What bounds that: the transaction id is signed, and one id credits one wallet,
once, ever (the gateway reference's reservation), so a copy after Paymob's own callback is
refused, and one before it can only move the payer's own money to another wallet. Binding
the wallet to the signed `order.id` when the order is created would close it.

`created_at`, the transaction's time (signed, ISO 8601 without an offset in Paymob's samples:
Cairo's local time, infrastructure/payments/gateway_time), becomes the top-up's paid time; one
that does not read as a time credits with none rather than refusing a genuine payment.
"""

from __future__ import annotations

import hashlib
import hmac
from decimal import Decimal

from domain.money import CENT
from infrastructure.payments import GatewayPayment, gateway_time, signatures_match
from schemas.api.commands import PaymobTransaction

GATEWAY = "paymob"
# The words _status gives a transaction (and a settlement file's `status` column holds).
SUCCESS = "success"
STATUSES = frozenset(
    {SUCCESS, "pending", "voided", "refunded", "authorized", "declined", "not_a_payment"}
)


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def signed_text(tx: PaymobTransaction) -> str:
    source = tx.source_data
    values = (
        tx.amount_cents,
        tx.created_at,
        tx.currency,
        tx.error_occured,
        tx.has_parent_transaction,
        tx.id,
        tx.integration_id,
        tx.is_3d_secure,
        tx.is_auth,
        tx.is_capture,
        tx.is_refunded,
        tx.is_standalone_payment,
        tx.is_voided,
        tx.order.id,
        tx.owner,
        tx.pending,
        source.pan,
        source.sub_type,
        source.type,
        tx.success,
    )
    return "".join(_text(value) for value in values)


def signature(tx: PaymobTransaction, hmac_secret: str) -> str:
    return hmac.new(hmac_secret.encode(), signed_text(tx).encode(), hashlib.sha512).hexdigest()


def _completed(tx: PaymobTransaction) -> bool:
    """Money was taken. An authorisation is not (its capture is, a transaction of its own);
    a transaction with a parent is otherwise a refund or a void of it, which takes none."""
    if not tx.success or tx.pending or tx.error_occured:
        return False
    if tx.is_voided or tx.is_refunded or tx.is_auth:
        return False
    return tx.is_capture or not tx.has_parent_transaction


def _status(tx: PaymobTransaction) -> str:
    for flag, word in (
        (tx.pending, "pending"),
        (tx.is_voided, "voided"),
        (tx.is_refunded, "refunded"),
        (tx.is_auth, "authorized"),
        (not tx.success, "declined"),
    ):
        if flag:
            return word
    return SUCCESS if _completed(tx) else "not_a_payment"


def verified(tx: PaymobTransaction, given: str, hmac_secret: str) -> GatewayPayment | None:
    """The payment the callback reports; None when `given` is not its HMAC."""
    if not signatures_match(signature(tx, hmac_secret), given):
        return None
    return GatewayPayment(
        gateway=GATEWAY,
        reference=str(tx.id),
        merchant_reference=tx.order.merchant_order_id,
        amount=(Decimal(tx.amount_cents) / 100).quantize(CENT),
        currency=tx.currency,
        status=_status(tx),
        completed=_completed(tx),
        paid_at=gateway_time(tx.created_at),
    )
