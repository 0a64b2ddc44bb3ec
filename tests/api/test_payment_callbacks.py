"""The payment gateways' callbacks, on both stores: a genuine one credits the wallet its order
names, once; a repeat credits nothing and answers the same; a forged or tampered one is 401
and stores nothing.

The callbacks are signed here as Fawry's and Paymob's documentation says (tests/api/
gateways.py), independently of the service's code.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import httpx
import pytest
from jsonschema import Draft202012Validator  # type: ignore[import-untyped]
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from domain.uniqueness import gateway_reference_key
from domain.wallet.gateway_orders import order_reference
from tests.api.gateways import (
    FAWRY_CALLBACK,
    PAYMOB_CALLBACK,
    fawry_notification,
    fawry_signature,
    paymob_transaction,
    paymob_url,
)
from tests.api.support import Api, Tokens, open_wallet, refused, running_api


def order_reference_for(wallet_id: str, suffix: str) -> str:
    return order_reference(UUID(wallet_id), suffix)


async def _wallet(api: Api, tokens: Tokens, user: str = "member-pay") -> str:
    wallet_id: str = (await open_wallet(api, tokens.ops(), user))["id"]
    return wallet_id


async def _balance(api: Api, wallet_id: str) -> Decimal:
    """The wallet's balance as its stored events say (the last one's balance_after)."""
    events = await api.stream(wallet_id)
    balances = [e.data["balance_after"] for e in events if "balance_after" in e.data]
    return Decimal(balances[-1]) if balances else Decimal("0.00")


async def _top_ups(api: Api, wallet_id: str) -> list[dict[str, Any]]:
    return [dict(e.data) for e in await api.stream(wallet_id) if e.event_type == "wallet.topped_up"]


def _fawry(api: Api, body: dict[str, Any]) -> Any:
    return api.client.post(FAWRY_CALLBACK, json=body)


def _paymob(api: Api, body: dict[str, Any], url: str | None = None) -> Any:
    return api.client.post(url or paymob_url(body), json=body)


def _credited(response: httpx.Response, wallet_id: str, amount: str) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    assert answer["credited"] is True
    assert answer["eventType"] == "wallet.topped_up"
    assert answer["walletId"] == wallet_id
    assert answer["amount"] == amount
    return answer


# ------------------------------------------------------------------------------- Fawry


async def test_fawry_genuine_credits_once_replay_and_forgery_credit_nothing(
    api: Api, tokens: Tokens
) -> None:
    wallet_id = await _wallet(api, tokens)
    body = fawry_notification(order_reference_for(wallet_id, "t1"), "FWR-9001", "150.00")

    first = await _fawry(api, body)
    answer = _credited(first, wallet_id, "150.00")
    assert "idempotent-replayed" not in first.headers
    assert await _balance(api, wallet_id) == Decimal("150.00")
    [stored] = await _top_ups(api, wallet_id)
    assert (stored["gateway"], stored["gateway_reference"]) == ("fawry", "FWR-9001")
    assert stored["amount"] == "150.00"  # orderAmount; paymentAmount adds Fawry's fees
    holder = await api.store.reserved_by(*gateway_reference_key("fawry", "FWR-9001"))
    assert holder is not None
    assert str(holder.aggregate_id) == wallet_id
    [event] = [e for e in await api.stream(wallet_id) if e.event_type == "wallet.topped_up"]
    assert event.metadata["actor"] == {"role": "gateway", "sub": "fawry"}

    before = await api.events()
    replay = await _fawry(api, body)
    assert replay.status_code == 200, replay.text
    assert replay.json() == answer
    assert replay.headers["idempotent-replayed"] == "true"
    assert await api.events() == before

    forged = {**body, "messageSignature": fawry_signature(body, key="not-the-merchants-key")}
    await refused(api, _fawry(api, forged), 401, "invalid_signature")
    assert await _balance(api, wallet_id) == Decimal("150.00")
    assert len(await _top_ups(api, wallet_id)) == 1


@pytest.mark.parametrize(
    ("field", "value"),
    [
        pytest.param("orderAmount", 1500.0, id="order_amount"),
        pytest.param("paymentAmount", 1502.5, id="payment_amount"),
        pytest.param("orderStatus", "PAID ", id="status"),
        pytest.param("fawryRefNumber", "FWR-9002", id="fawry_reference"),
        pytest.param("paymentRefrenceNumber", None, id="payment_reference_dropped"),
    ],
)
async def test_fawry_a_tampered_field_fails_the_signature(
    api: Api, tokens: Tokens, field: str, value: Any
) -> None:
    wallet_id = await _wallet(api, tokens)
    body = fawry_notification(order_reference_for(wallet_id, "t2"), "FWR-9003")
    tampered = {**body, field: value}
    if value is None:
        del tampered[field]
    await refused(api, _fawry(api, tampered), 401, "invalid_signature")


async def test_fawry_tampered_wallet_fails_the_signature(api: Api, tokens: Tokens) -> None:
    """merchantRefNumber is signed: a payment cannot be moved to another wallet."""
    mine = await _wallet(api, tokens, "member-pay")
    theirs = await _wallet(api, tokens, "member-other")
    body = fawry_notification(order_reference_for(mine, "t3"), "FWR-9004")
    moved = {**body, "merchantRefNumber": order_reference_for(theirs, "t3")}
    await refused(api, _fawry(api, moved), 401, "invalid_signature")


@pytest.mark.parametrize("status", ["NEW", "UNPAID", "EXPIRED", "CANCELED", "REFUNDED", "FAILED"])
async def test_fawry_a_status_other_than_paid_is_acknowledged_and_stores_nothing(
    api: Api, tokens: Tokens, status: str
) -> None:
    wallet_id = await _wallet(api, tokens)
    before = await api.events()
    body = fawry_notification(order_reference_for(wallet_id, "t4"), "FWR-9005", status=status)
    response = await _fawry(api, body)
    assert response.status_code == 200, response.text
    assert response.json() == {
        "credited": False,
        "gateway": "fawry",
        "gatewayReference": "FWR-9005",
        "status": status,
    }
    assert await api.events() == before


@pytest.mark.parametrize(
    "reference",
    [
        pytest.param("order-77", id="not_ours"),
        pytest.param("9e1b4f3a-6f1e-4f59-9d51-1f1f2f3f4f5f:t5", id="unknown_wallet"),
        pytest.param("{wallet}", id="no_suffix"),
        pytest.param("{wallet}:", id="empty_suffix"),
        pytest.param("{wallet}:a b", id="space_in_suffix"),
        pytest.param("{upper}:t5", id="wallet_upper_case"),
    ],
)
async def test_fawry_a_reference_naming_no_wallet_is_422(
    api: Api, tokens: Tokens, reference: str
) -> None:
    wallet_id = await _wallet(api, tokens)
    merchant = reference.format(wallet=wallet_id, upper=wallet_id.upper())
    body = fawry_notification(merchant, "FWR-9006")
    await refused(api, _fawry(api, body), 422, "unknown_merchant_reference")


async def test_fawry_one_reference_credits_one_wallet(api: Api, tokens: Tokens) -> None:
    """Signed twice by the merchant's key for two wallets (as a bug or a leaked key could):
    the second is refused, as a top-up by ops with that reference would be."""
    first = await _wallet(api, tokens, "member-pay")
    second = await _wallet(api, tokens, "member-other")
    _credited(
        await _fawry(api, fawry_notification(order_reference_for(first, "t6"), "FWR-9007")),
        first,
        "150.00",
    )
    again = fawry_notification(order_reference_for(second, "t6"), "FWR-9007")
    await refused(api, _fawry(api, again), 409, "gateway_reference_taken")
    other_amount = fawry_notification(order_reference_for(first, "t7"), "FWR-9007", "99.00")
    await refused(api, _fawry(api, other_amount), 409, "duplicate_gateway_reference")
    assert await _balance(api, second) == Decimal("0.00")


async def test_fawry_amount_as_a_string_with_two_places_is_signed_as_sent(
    api: Api, tokens: Tokens
) -> None:
    wallet_id = await _wallet(api, tokens)
    body = fawry_notification(order_reference_for(wallet_id, "t8"), "FWR-9008", "80.10")
    body |= {"paymentAmount": "82.60", "orderAmount": "80.10"}
    body["messageSignature"] = fawry_signature(body).upper()  # hex in either case
    _credited(await _fawry(api, body), wallet_id, "80.10")


# ------------------------------------------------------------------------------ Paymob


async def test_paymob_genuine_credits_once_replay_and_forgery_credit_nothing(
    api: Api, tokens: Tokens
) -> None:
    wallet_id = await _wallet(api, tokens)
    body = paymob_transaction(order_reference_for(wallet_id, "p1"), 192036465, 25050)

    first = await _paymob(api, body)
    answer = _credited(first, wallet_id, "250.50")
    assert await _balance(api, wallet_id) == Decimal("250.50")
    [stored] = await _top_ups(api, wallet_id)
    assert (stored["gateway"], stored["gateway_reference"]) == ("paymob", "192036465")
    assert stored["amount"] == "250.50"

    before = await api.events()
    replay = await _paymob(api, body)
    assert replay.status_code == 200, replay.text
    assert replay.json() == answer
    assert replay.headers["idempotent-replayed"] == "true"
    assert await api.events() == before

    await refused(
        api, _paymob(api, body, paymob_url(body, secret="not-the-secret")), 401, "invalid_signature"
    )
    await refused(api, _paymob(api, body, PAYMOB_CALLBACK), 401, "invalid_signature")  # no hmac
    assert await _balance(api, wallet_id) == Decimal("250.50")
    assert len(await _top_ups(api, wallet_id)) == 1


@pytest.mark.parametrize(
    ("field", "value"),
    [
        pytest.param("amount_cents", 2505000, id="amount"),
        pytest.param("id", 192036466, id="transaction_id"),
        pytest.param("success", False, id="success"),
        pytest.param("currency", "USD", id="currency"),
        pytest.param("owner", 1, id="owner"),
    ],
)
async def test_paymob_a_tampered_field_fails_the_hmac(
    api: Api, tokens: Tokens, field: str, value: Any
) -> None:
    wallet_id = await _wallet(api, tokens)
    body = paymob_transaction(order_reference_for(wallet_id, "p2"), 192036470)
    url = paymob_url(body)
    tampered = {**body, "obj": {**body["obj"], field: value}}
    await refused(api, _paymob(api, tampered, url), 401, "invalid_signature")


async def test_paymob_a_copy_moved_to_another_wallet_is_refused(api: Api, tokens: Tokens) -> None:
    """merchant_order_id is outside Paymob's HMAC; the signed transaction id still credits
    one wallet, once: a copy naming another wallet after the genuine one is refused."""
    mine = await _wallet(api, tokens, "member-pay")
    theirs = await _wallet(api, tokens, "member-other")
    body = paymob_transaction(order_reference_for(mine, "p3"), 192036471)
    url = paymob_url(body)
    _credited(await _paymob(api, body, url), mine, "250.50")
    moved = {**body, "obj": {**body["obj"], "order": dict(body["obj"]["order"])}}
    moved["obj"]["order"]["merchant_order_id"] = order_reference_for(theirs, "p3")
    await refused(api, _paymob(api, moved, url), 409, "gateway_reference_taken")
    assert await _balance(api, theirs) == Decimal("0.00")


@pytest.mark.parametrize(
    ("changes", "status"),
    [
        pytest.param({"success": False}, "declined", id="declined"),
        pytest.param({"pending": True, "success": False}, "pending", id="pending"),
        pytest.param({"is_voided": True}, "voided", id="voided"),
        pytest.param({"is_refunded": True}, "refunded", id="refunded"),
        pytest.param({"is_auth": True}, "authorized", id="authorisation"),
        pytest.param({"has_parent_transaction": True}, "not_a_payment", id="refund_transaction"),
        pytest.param({"error_occured": True}, "not_a_payment", id="error"),
    ],
)
async def test_paymob_a_transaction_that_took_no_money_is_acknowledged_and_stores_nothing(
    api: Api, tokens: Tokens, changes: dict[str, bool], status: str
) -> None:
    wallet_id = await _wallet(api, tokens)
    body = paymob_transaction(order_reference_for(wallet_id, "p4"), 192036472)
    body["obj"].update(changes)
    before = await api.events()
    response = await _paymob(api, body)
    assert response.status_code == 200, response.text
    assert response.json() == {
        "credited": False,
        "gateway": "paymob",
        "gatewayReference": "192036472",
        "status": status,
    }
    assert await api.events() == before


async def test_paymob_a_capture_credits(api: Api, tokens: Tokens) -> None:
    """The capture of an authorisation is a transaction of its own, with a parent: it is the
    one that took the money."""
    wallet_id = await _wallet(api, tokens)
    body = paymob_transaction(
        order_reference_for(wallet_id, "p5"),
        192036473,
        has_parent_transaction=True,
        is_capture=True,
    )
    _credited(await _paymob(api, body), wallet_id, "250.50")


async def test_paymob_unknown_reference_and_other_currency_are_422(
    api: Api, tokens: Tokens
) -> None:
    wallet_id = await _wallet(api, tokens)
    unknown = paymob_transaction("order-77", 192036474)
    await refused(api, _paymob(api, unknown), 422, "unknown_merchant_reference")
    dollars = paymob_transaction(order_reference_for(wallet_id, "p6"), 192036475, currency="USD")
    await refused(api, _paymob(api, dollars), 422, "unsupported_currency")


# ------------------------------------------------------------ the gateway's time of payment


def _paid_at(top_up: dict[str, Any]) -> datetime | None:
    text = top_up["paid_at"]
    return None if text is None else datetime.fromisoformat(text)


@pytest.mark.parametrize(
    ("payment_time", "paid_at"),
    [
        # 1764841995123 ms after 1970-01-01T00:00Z, worked out by hand: 20426 days and 35595.123 s
        pytest.param(1764841995123, datetime(2025, 12, 4, 9, 53, 15, 123000, UTC), id="told"),
        pytest.param(None, None, id="not_told"),
        pytest.param(10**18, None, id="no_time"),  # past year 9999: credited, without a time
    ],
)
async def test_fawry_payment_time_is_the_top_ups_paid_time(
    api: Api, tokens: Tokens, payment_time: int | None, paid_at: datetime | None
) -> None:
    wallet_id = await _wallet(api, tokens)
    body = fawry_notification(
        order_reference_for(wallet_id, "pt"), "FWR-9300", "80.00", payment_time=payment_time
    )
    answer = _credited(await _fawry(api, body), wallet_id, "80.00")
    [stored] = await _top_ups(api, wallet_id)
    assert _paid_at(stored) == paid_at
    assert answer["paidAt"] == (None if paid_at is None else paid_at.isoformat())


@pytest.mark.parametrize(
    ("created_at", "paid_at"),
    [
        # no offset: Cairo's time, UTC+2 in December
        pytest.param(
            "2026-12-04T11:33:44.592345",
            datetime(2026, 12, 4, 9, 33, 44, 592345, UTC),
            id="cairo_winter",
        ),
        # Egypt keeps summer time (UTC+3) from the last Friday of April
        pytest.param("2026-07-01T10:00:00", datetime(2026, 7, 1, 7, 0, tzinfo=UTC), id="summer"),
        pytest.param(
            "2026-12-04T11:33:44+00:00", datetime(2026, 12, 4, 11, 33, 44, tzinfo=UTC), id="utc"
        ),
        pytest.param("yesterday", None, id="no_time"),  # signed as sent: credited, no time
        pytest.param("0001-01-01T00:00:00", None, id="before_year_1_in_utc"),
    ],
)
async def test_paymob_created_at_is_the_top_ups_paid_time(
    api: Api, tokens: Tokens, created_at: str, paid_at: datetime | None
) -> None:
    wallet_id = await _wallet(api, tokens)
    body = paymob_transaction(
        order_reference_for(wallet_id, "pt"), 192036600, 8000, created_at=created_at
    )
    _credited(await _paymob(api, body), wallet_id, "80.00")
    [stored] = await _top_ups(api, wallet_id)
    assert _paid_at(stored) == paid_at


# ---------------------------------------------------------------------- the document


async def test_the_answers_are_the_documented_ones(api: Api, tokens: Tokens) -> None:
    document = (await api.client.get("/openapi.json")).json()
    uri = "urn:healthpay:command-openapi"
    registry: Registry[Any] = Registry().with_resource(
        uri, Resource.from_contents(document, default_specification=DRAFT202012)
    )
    wallet_id = await _wallet(api, tokens)
    reference = order_reference_for(wallet_id, "d1")
    fawry_paid = fawry_notification(reference, "FWR-9100")
    paymob_paid = paymob_transaction(reference, 192036500)
    paymob_declined = paymob_transaction(reference, 192036501, success=False)
    answers = [
        (FAWRY_CALLBACK, await _fawry(api, fawry_paid)),
        (FAWRY_CALLBACK, await _fawry(api, fawry_paid)),
        (
            FAWRY_CALLBACK,
            await _fawry(api, fawry_notification(reference, "FWR-9101", status="NEW")),
        ),
        (PAYMOB_CALLBACK, await _paymob(api, paymob_paid)),
        (PAYMOB_CALLBACK, await _paymob(api, paymob_declined)),
    ]
    for path, answer in answers:
        assert answer.status_code == 200, answer.text
        escaped = path.replace("/", "~1")
        schema = {
            "$ref": f"{uri}#/paths/{escaped}/post/responses/200/content/application~1json/schema"
        }
        Draft202012Validator(schema, registry=registry).validate(answer.json())


# ------------------------------------------------------------------------ configuration


@pytest.mark.parametrize(
    ("path", "setting"),
    [
        pytest.param(FAWRY_CALLBACK, "fawry_security_key", id="fawry"),
        pytest.param(PAYMOB_CALLBACK, "paymob_hmac_secret", id="paymob"),
    ],
)
async def test_a_gateway_without_its_key_is_503_and_stores_nothing(path: str, setting: str) -> None:
    async with running_api("memory", **{setting: None}) as api:
        body = fawry_notification("x", "FWR-1") if "fawry" in path else paymob_transaction("x", 1)
        response = await refused(
            api, api.client.post(path, json=body), 503, "gateway_not_configured"
        )
        assert setting.upper() in response["detail"]
