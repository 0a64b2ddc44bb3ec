"""Callbacks as FawryPay and Paymob send them, signed as their documentation says.

The signatures are computed here from the documented recipes, not with the service's own
code (infrastructure/payments/), so a recipe the service gets wrong fails these tests.
"""

from __future__ import annotations

import hashlib
import hmac
from decimal import Decimal
from typing import Any
from uuid import uuid4

from tests.api.support import FAWRY_SECURITY_KEY, PAYMOB_HMAC_SECRET

# Paymob's published transaction sample (its documented HMAC text is built from it).
PAYMOB_SAMPLE: dict[str, Any] = {
    "amount_cents": 100000,
    "created_at": "2024-06-13T11:33:44.592345",
    "currency": "EGP",
    "error_occured": False,
    "has_parent_transaction": False,
    "id": 192036465,
    "integration_id": 4097558,
    "is_3d_secure": True,
    "is_auth": False,
    "is_capture": False,
    "is_refunded": False,
    "is_standalone_payment": True,
    "is_voided": False,
    "order": {"id": 217503754, "merchant_order_id": "anything"},
    "owner": 302852,
    "pending": False,
    "source_data": {"pan": "2346", "sub_type": "MasterCard", "type": "card"},
    "success": True,
}

FAWRY_CALLBACK = "/api/v1/payments/fawry/callback"
PAYMOB_CALLBACK = "/api/v1/payments/paymob/callback"

# Paymob's documented order of the fields its HMAC covers ("order.id": obj["order"]["id"]).
PAYMOB_SIGNED = [
    "amount_cents",
    "created_at",
    "currency",
    "error_occured",
    "has_parent_transaction",
    "id",
    "integration_id",
    "is_3d_secure",
    "is_auth",
    "is_capture",
    "is_refunded",
    "is_standalone_payment",
    "is_voided",
    "order.id",
    "owner",
    "pending",
    "source_data.pan",
    "source_data.sub_type",
    "source_data.type",
    "success",
]


def fawry_signature(body: dict[str, Any], key: str = FAWRY_SECURITY_KEY) -> str:
    def two_places(value: Any) -> str:
        return f"{Decimal(str(value)):.2f}"

    text = (
        body["fawryRefNumber"]
        + body["merchantRefNumber"]
        + two_places(body["paymentAmount"])
        + two_places(body["orderAmount"])
        + body["orderStatus"]
        + body["paymentMethod"]
        + (body.get("paymentRefrenceNumber") or "")
        + key
    )
    return hashlib.sha256(text.encode()).hexdigest()


def fawry_notification(
    merchant_reference: str,
    fawry_reference: str,
    order_amount: str = "150.00",
    status: str = "PAID",
    *,
    fees: str = "2.50",
    key: str = FAWRY_SECURITY_KEY,
    payment_time: int | None = 1733300000000,
) -> dict[str, Any]:
    """A V2 notification with everything FawryPay sends, amounts as JSON numbers as it does
    (`payment_time` None: a notification without `paymentTime`)."""
    paid = Decimal(order_amount) + Decimal(fees)
    body: dict[str, Any] = {
        "requestId": uuid4().hex,
        "fawryRefNumber": fawry_reference,
        "merchantRefNumber": merchant_reference,
        "customerName": "Omar Ali",
        "customerMobile": "01012345678",
        "customerMail": "omar@example.com",
        "customerMerchantId": "member-a",
        "paymentAmount": float(paid),
        "orderAmount": float(order_amount),
        "fawryFees": float(fees),
        "shippingFees": "",
        "orderStatus": status,
        "paymentMethod": "PAYATFAWRY",
        "paymentTime": 1733300000000,
        "authNumber": "8912",
        "paymentRefrenceNumber": "24480",
        "orderExpiryDate": 1733400000000,
        "orderItems": [{"itemCode": "topup", "price": float(order_amount), "quantity": 1}],
    }
    if payment_time is None:
        del body["paymentTime"]
    else:
        body["paymentTime"] = payment_time
    body["messageSignature"] = fawry_signature(body, key)
    return body


def _paymob_text(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def paymob_hmac(body: dict[str, Any], secret: str = PAYMOB_HMAC_SECRET) -> str:
    def field(path: str) -> Any:
        value: Any = body["obj"]
        for part in path.split("."):
            value = value[part]
        return value

    text = "".join(_paymob_text(field(path)) for path in PAYMOB_SIGNED)
    return hmac.new(secret.encode(), text.encode(), hashlib.sha512).hexdigest()


def paymob_transaction(
    merchant_reference: str,
    transaction_id: int,
    amount_cents: int = 25050,
    *,
    success: bool = True,
    pending: bool = False,
    currency: str = "EGP",
    created_at: str = "2026-12-04T11:33:44.592345",
    **flags: bool,
) -> dict[str, Any]:
    """A transaction processed callback's body, with the fields Paymob sends besides the signed
    ones (a sample of them)."""
    obj: dict[str, Any] = {
        "id": transaction_id,
        "pending": pending,
        "amount_cents": amount_cents,
        "success": success,
        "is_auth": False,
        "is_capture": False,
        "is_standalone_payment": True,
        "is_voided": False,
        "is_refunded": False,
        "is_3d_secure": True,
        "integration_id": 4097558,
        "profile_id": 302852,
        "has_parent_transaction": False,
        "order": {
            "id": 217500000 + transaction_id % 1000,
            "created_at": "2026-12-04T11:33:20.000000",
            "merchant": {"id": 302852, "company_name": "HealthPay"},
            "amount_cents": amount_cents,
            "merchant_order_id": merchant_reference,
            "currency": currency,
            "items": [],
        },
        "created_at": created_at,
        "currency": currency,
        "source_data": {"pan": "2346", "type": "card", "sub_type": "MasterCard"},
        "error_occured": False,
        "refunded_amount_cents": 0,
        "captured_amount": 0,
        "owner": 302852,
        "parent_transaction": None,
        "data": {"message": "Approved", "txn_response_code": "APPROVED", "amount": 25050.5},
        **flags,
    }
    return {"type": "TRANSACTION", "obj": obj}


def paymob_url(body: dict[str, Any], secret: str = PAYMOB_HMAC_SECRET) -> str:
    return f"{PAYMOB_CALLBACK}?hmac={paymob_hmac(body, secret)}"
