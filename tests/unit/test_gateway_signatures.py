"""The gateways' signature schemes against their documentation, and the order-reference rule."""

from __future__ import annotations

import hashlib
import hmac
from uuid import UUID, uuid4

import pytest

from domain.wallet.gateway_orders import order_reference, wallet_of_order
from infrastructure.payments import fawry, paymob, signatures_match
from schemas.api.commands import FawryNotificationBody, PaymobTransaction
from tests.api.gateways import PAYMOB_SAMPLE

# Paymob's sample transaction processed callback, and the concatenated string its HMAC page
# gives for it (developers.paymob.com, "HMAC Transaction Callback", step 2).
PAYMOB_SAMPLE_TEXT = (
    "1000002024-06-13T11:33:44.592345EGPfalsefalse1920364654097558truefalsefalsefalsetrue"
    "false217503754302852false2346MasterCardcardtrue"
)


def test_paymob_signs_the_documented_fields_in_the_documented_order() -> None:
    tx = PaymobTransaction.model_validate(PAYMOB_SAMPLE)
    assert paymob.signed_text(tx) == PAYMOB_SAMPLE_TEXT
    expected = hmac.new(b"s3cret", PAYMOB_SAMPLE_TEXT.encode(), hashlib.sha512).hexdigest()
    assert paymob.signature(tx, "s3cret") == expected
    payment = paymob.verified(tx, expected, "s3cret")
    assert payment is not None
    assert (payment.reference, str(payment.amount), payment.completed) == (
        "192036465",
        "1000.00",
        True,
    )
    assert paymob.verified(tx, expected, "other") is None
    assert paymob.verified(tx, "", "s3cret") is None


def test_fawry_signs_the_documented_fields_in_the_documented_order() -> None:
    body = FawryNotificationBody.model_validate(
        {
            "fawryRefNumber": "970177",
            "merchantRefNumber": "9708f1cea8b5426cb57922df51b7f790",
            "paymentAmount": 152,
            "orderAmount": "150.5",
            "orderStatus": "NEW",
            "paymentMethod": "PAYATFAWRY",
            "messageSignature": "",
        }
    )
    # No paymentRefrenceNumber: it is left out of the text, not spelt "None".
    text = "9701779708f1cea8b5426cb57922df51b7f790152.00150.50NEWPAYATFAWRYkey"
    assert fawry.signature(body, "key") == hashlib.sha256(text.encode()).hexdigest()


@pytest.mark.parametrize(
    ("expected", "given", "matches"),
    [
        ("ab12", "ab12", True),
        ("ab12", "AB12", True),
        ("ab12", "ab13", False),
        ("ab12", "ab1", False),
        ("ab12", "\u00e912", False),  # not ASCII: refused, not an error
    ],
)
def test_signatures_match(expected: str, given: str, matches: bool) -> None:
    assert signatures_match(expected, given) is matches


def test_an_order_reference_names_its_wallet() -> None:
    wallet_id = uuid4()
    reference = order_reference(wallet_id, "topup-0007")
    assert reference == f"{wallet_id}:topup-0007"
    assert wallet_of_order(reference) == wallet_id


@pytest.mark.parametrize(
    "reference",
    [
        "",
        "order-77",
        "9e1b4f3a-6f1e-4f59-9d51-1f1f2f3f4f5f",
        "9e1b4f3a-6f1e-4f59-9d51-1f1f2f3f4f5f:",
        "9E1B4F3A-6F1E-4F59-9D51-1F1F2F3F4F5F:x",
        "9e1b4f3a6f1e4f599d511f1f2f3f4f5f:x",
        "9e1b4f3a-6f1e-4f59-9d51-1f1f2f3f4f5f:a:b",
        "9e1b4f3a-6f1e-4f59-9d51-1f1f2f3f4f5f:" + "x" * 65,
        " 9e1b4f3a-6f1e-4f59-9d51-1f1f2f3f4f5f:x",
    ],
)
def test_anything_else_names_no_wallet(reference: str) -> None:
    assert wallet_of_order(reference) is None


def test_an_order_suffix_the_rule_refuses_is_an_error() -> None:
    with pytest.raises(ValueError, match="suffix"):
        order_reference(UUID("9e1b4f3a-6f1e-4f59-9d51-1f1f2f3f4f5f"), "a b")


def test_paymob_integers_as_json_writes_them_sign_alike() -> None:
    """JSON (and the public document's `integer`) calls 1000.0 an integer: it reads as 1000 and
    signs as Paymob's text does; 1000.5 and "1000" are refused."""
    as_floats = {**PAYMOB_SAMPLE, "amount_cents": float(PAYMOB_SAMPLE["amount_cents"])}
    as_floats["order"] = {**PAYMOB_SAMPLE["order"], "id": float(PAYMOB_SAMPLE["order"]["id"])}
    tx = PaymobTransaction.model_validate(as_floats)
    assert paymob.signed_text(tx) == PAYMOB_SAMPLE_TEXT
    for bad in (PAYMOB_SAMPLE["amount_cents"] + 0.5, str(PAYMOB_SAMPLE["amount_cents"]), True):
        with pytest.raises(ValueError, match="whole number"):
            PaymobTransaction.model_validate({**PAYMOB_SAMPLE, "amount_cents": bad})
