"""FawryPay's server-to-server notification V2.

The signature, as FawryPay documents it (developer.fawrystaging.com/docs/server-apis/
payment-notifications/server-notification-v2, parameter `messageSignature`): the SHA-256
digest, in hexadecimal, of the concatenation, without separators, of

    fawryRefNumber + merchantRefNumber + paymentAmount (two decimals, "840.00")
    + orderAmount (two decimals) + orderStatus + paymentMethod
    + paymentRefrenceNumber (Fawry's spelling; empty when absent) + the merchant's secure key

A plain digest with the key inside, not an HMAC: that is Fawry's scheme, and it is
checked as such. The order statuses are NEW, PAID, CANCELED, REFUNDED, EXPIRED,
PARTIAL_REFUNDED and FAILED; FawryPay takes a 200 as the notification's acknowledgement.

`paymentTime`, when the customer paid (milliseconds since 1970, as the notification's
samples carry it), becomes the top-up's paid time. The signature does not cover it: it is
the gateway's word for reconciliation (`healthpay payments reconcile`), never a reason to
credit or refuse, and a notification with a time that is no time credits with none.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

from infrastructure.payments import GatewayPayment, signatures_match
from schemas.api.commands import FawryNotificationBody

GATEWAY = "fawry"
PAID = "PAID"
STATUSES = frozenset({"NEW", PAID, "CANCELED", "REFUNDED", "EXPIRED", "PARTIAL_REFUNDED", "FAILED"})
# Fawry takes payments in Egyptian pounds only (the notification names no currency).
CURRENCY = "EGP"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def signature(body: FawryNotificationBody, secure_key: str) -> str:
    signed = "".join(
        (
            body.fawry_ref_number,
            body.merchant_ref_number,
            f"{body.payment_amount:.2f}",
            f"{body.order_amount:.2f}",
            body.order_status,
            body.payment_method,
            body.payment_refrence_number or "",
            secure_key,
        )
    )
    return hashlib.sha256(signed.encode()).hexdigest()


def verified(body: FawryNotificationBody, secure_key: str) -> GatewayPayment | None:
    """The payment the notification reports; None when its signature is not Fawry's."""
    if not signatures_match(signature(body, secure_key), body.message_signature):
        return None
    return GatewayPayment(
        gateway=GATEWAY,
        reference=body.fawry_ref_number,
        merchant_reference=body.merchant_ref_number,
        # What the order was for: paymentAmount adds the fees the customer paid Fawry.
        amount=body.order_amount,
        currency=CURRENCY,
        status=body.order_status,
        completed=body.order_status == PAID,
        paid_at=payment_time(body.payment_time),
    )


def payment_time(milliseconds: int | None) -> datetime | None:
    if milliseconds is None:
        return None
    try:
        return _EPOCH + timedelta(milliseconds=milliseconds)
    except OverflowError:  # past year 9999: not a time Fawry meant
        return None
