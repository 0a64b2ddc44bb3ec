"""The payment gateways' callbacks: a verified payment credits the wallet its order names.

No bearer token: the gateway's signature is the authentication (infrastructure/payments/).
In this order, each step storing nothing when it refuses:

1. the gateway's key unset: 503 gateway_not_configured;
2. the body (400, 413, 415, 422 as on every write);
3. the signature: not the gateway's, 401 invalid_signature (a tampered field, an amount
   above all, fails it);
4. a payment that took no money (Fawry: any status but PAID; Paymob: declined, pending,
   voided, refunded, an authorisation): 200, acknowledged, nothing stored;
5. the order's merchant reference (domain/wallet/gateway_orders.py) names no wallet, or the
   payment is not in the wallet's currency: 422;
6. the wallet is credited with the gateway's amount, once per gateway reference: a repeat
   of the callback answers 200 with that first credit (Idempotent-Replayed: true). The same
   reference with another amount, or naming another wallet, is 409. The credit keeps the
   gateway's time of payment when the callback tells it (the top-up's `paid_at`).

Both gateways take a 200 as the callback's acknowledgement and retry anything else.
"""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
from pydantic import SecretStr
from starlette.requests import Request
from starlette.responses import Response

from command_service import wallet_commands
from command_service.execution import CommandContext
from command_service.http_endpoints import WriteSide, correlation_id, parse_body
from command_service.ids import new_id
from command_service.responses import render
from domain.errors import CommandRejected
from domain.money import CURRENCY
from domain.wallet.gateway_orders import wallet_of_order
from domain.wallet.model import TopUp
from infrastructure.http.problems import Problem
from infrastructure.payments import GatewayPayment, fawry, paymob
from schemas.api.commands import FawryNotificationBody, PaymobCallbackBody

ACKNOWLEDGED = 200


async def fawry_callback(request: Request) -> Response:
    side: WriteSide = request.app.state.write_side
    key = _configured(side.fawry_security_key, "FAWRY_SECURITY_KEY")
    body, _ = await parse_body(request, FawryNotificationBody)
    payment = fawry.verified(body, key)
    if payment is None:
        raise Problem(
            401, "invalid_signature", "messageSignature is not FawryPay's signature of this body"
        )
    return await _settle(side, request, payment)


async def paymob_callback(request: Request) -> Response:
    side: WriteSide = request.app.state.write_side
    secret = _configured(side.paymob_hmac_secret, "PAYMOB_HMAC_SECRET")
    body, _ = await parse_body(request, PaymobCallbackBody)
    payment = paymob.verified(body.obj, request.query_params.get("hmac", ""), secret)
    if payment is None:
        raise Problem(
            401, "invalid_signature", "the hmac query parameter is not Paymob's HMAC of this body"
        )
    return await _settle(side, request, payment)


def _configured(secret: SecretStr | None, variable: str) -> str:
    if secret is None:
        raise Problem(
            503, "gateway_not_configured", f"this gateway's callbacks need {variable} to be set"
        )
    return secret.get_secret_value()


async def _settle(side: WriteSide, request: Request, payment: GatewayPayment) -> Response:
    if not payment.completed:
        return _json(
            {
                "credited": False,
                "gateway": payment.gateway,
                "gatewayReference": payment.reference,
                "status": payment.status,
            }
        )
    wallet_id = wallet_of_order(payment.merchant_reference or "")
    if wallet_id is None:
        raise _unknown_reference()
    if payment.currency != CURRENCY:
        raise Problem(
            422, "unsupported_currency", f"wallets hold {CURRENCY}, not {payment.currency}"
        )
    ctx = CommandContext(
        at=datetime.now(UTC),
        metadata={
            "correlation_id": correlation_id(request),
            "actor": {"role": "gateway", "sub": payment.gateway},
        },
    )
    command = TopUp(
        topup_id=new_id(),
        gateway=payment.gateway,
        gateway_reference=payment.reference,
        amount=payment.amount,
        at=ctx.at,
        paid_at=payment.paid_at,
    )
    try:
        outcome = await wallet_commands.credit(side.executor, None, wallet_id, command, ctx)
    except CommandRejected as exc:
        if exc.code == "wallet_not_found":
            raise _unknown_reference() from exc
        raise Problem(int(exc.kind), exc.code, exc.detail) from exc
    headers = None if outcome.created else {"Idempotent-Replayed": "true"}
    return _json(render(outcome) | {"credited": True}, headers)


def _unknown_reference() -> Problem:
    return Problem(
        422,
        "unknown_merchant_reference",
        "the order's merchant reference names no wallet (it is `<walletId>:<suffix>`)",
    )


def _json(body: dict[str, object], headers: dict[str, str] | None = None) -> Response:
    return Response(
        orjson.dumps(body),
        status_code=ACKNOWLEDGED,
        media_type="application/json",
        headers=headers,
    )
