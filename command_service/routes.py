"""The write API under /api/v1: one table of routes, one way of handling them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from command_service import (
    claim_commands,
    hold_commands,
    medcard_commands,
    payment_callbacks,
    point_of_sale,
    refill_commands,
    wallet_commands,
)
from command_service.execution import Outcome
from command_service.http_endpoints import (
    WriteSide,
    authenticate,
    execute,
    guarded,
    parse_body,
    path_id,
)
from schemas.api.commands import (
    AddBeneficiaryBody,
    CardClaimBody,
    CardHoldBody,
    ClaimBody,
    CopayConsentBody,
    DebitBody,
    HoldBody,
    IssueCardBody,
    OpenWalletBody,
    RefillOverrideBody,
    RefundBody,
    ReversalBody,
    StatusChangeBody,
    TopUpBody,
    VoidHoldBody,
)

PREFIX = "/api/v1"
# Path parameter -> the problem code when it names nothing.
MISSING = {
    "card_id": "card_not_found",
    "beneficiary_id": "beneficiary_not_found",
    "claim_id": "claim_not_found",
    "wallet_id": "wallet_not_found",
    "debit_id": "debit_not_found",
    "hold_id": "hold_not_found",
}
Handler = Callable[..., Awaitable[Outcome]]


def command_route(
    path: str,
    handler: Handler,
    body_model: type[BaseModel] | None,
    *,
    method: str = "POST",
    optional_body: bool = False,
    name: str,
) -> Route:
    """A route that authenticates, reads path ids and body, and runs `handler` as a command:
    handler(executor, principal, *path ids in order, body, ctx)."""
    id_names = [part[1:-1] for part in path.split("/") if part.startswith("{")]

    async def endpoint(request: Request) -> Response:
        side: WriteSide = request.app.state.write_side
        principal = authenticate(side, request)
        ids = [path_id(request, id_name, MISSING[id_name]) for id_name in id_names]
        body: Any = None
        raw = b""
        if body_model is not None:
            body, raw = await parse_body(request, body_model, optional=optional_body)
        return await execute(
            side,
            request,
            principal,
            raw,
            lambda ctx: handler(side.executor, principal, *ids, body, ctx),
        )

    endpoint.__name__ = name
    return Route(PREFIX + path, guarded(endpoint), methods=[method], name=name)


def _lifecycle(action: str) -> Route:
    return command_route(
        f"/medcards/{{card_id}}/{action}",
        partial(_status_change, action),
        StatusChangeBody,
        optional_body=True,
        name=f"{action}_card",
    )


async def _status_change(
    action: str, executor: Any, principal: Any, card_id: Any, body: Any, ctx: Any
) -> Outcome:
    return await medcard_commands.change_status(executor, principal, card_id, action, body, ctx)


# The hot routes: the app calls them with no router or middleware layers around them
# (infrastructure/http/fast_routes.py), and they come first for the router too.
CLAIM_ROUTES = (
    command_route(
        "/medcards/{card_id}/claims/prescriptions",
        claim_commands.claim_prescription,
        ClaimBody,
        name="claim_prescription",
    ),
    command_route(
        "/claims/prescriptions",
        claim_commands.claim_by_card_number,
        CardClaimBody,
        name="claim_by_card_number",
    ),
)
ROUTES: list[Route] = [
    *CLAIM_ROUTES,
    command_route("/medcards", medcard_commands.issue_card, IssueCardBody, name="issue_card"),
    *(_lifecycle(action) for action in medcard_commands.LIFECYCLE),
    command_route(
        "/medcards/{card_id}/beneficiaries",
        medcard_commands.add_beneficiary,
        AddBeneficiaryBody,
        name="add_beneficiary",
    ),
    command_route(
        "/medcards/{card_id}/beneficiaries/{beneficiary_id}",
        medcard_commands.remove_beneficiary,
        None,
        method="DELETE",
        name="remove_beneficiary",
    ),
    command_route(
        "/medcards/{card_id}/claims/{claim_id}/reversal",
        claim_commands.reverse_prescription_claim,
        ReversalBody,
        optional_body=True,
        name="reverse_claim",
    ),
    command_route(
        "/medcards/{card_id}/refill-overrides",
        refill_commands.grant_refill_override,
        RefillOverrideBody,
        name="grant_refill_override",
    ),
    command_route(
        "/medcards/{card_id}/holds",
        hold_commands.place_hold_on_card,
        HoldBody,
        name="place_hold",
    ),
    command_route(
        "/holds", hold_commands.place_hold_by_card_number, CardHoldBody, name="place_hold_by_number"
    ),
    command_route(
        "/medcards/{card_id}/holds/{hold_id}/void",
        hold_commands.void,
        VoidHoldBody,
        optional_body=True,
        name="void_hold",
    ),
    # A query over POST (no side effect, no Idempotency-Key): not a command_route.
    Route(
        PREFIX + "/eligibility",
        guarded(point_of_sale.check_eligibility),
        methods=["POST"],
        name="check_eligibility",
    ),
    command_route("/wallets", wallet_commands.open_wallet, OpenWalletBody, name="open_wallet"),
    command_route("/wallets/{wallet_id}/topups", wallet_commands.top_up, TopUpBody, name="top_up"),
    command_route("/wallets/{wallet_id}/debits", wallet_commands.debit, DebitBody, name="debit"),
    command_route(
        "/wallets/{wallet_id}/debits/{debit_id}/refund",
        wallet_commands.refund_debit,
        RefundBody,
        name="refund_debit",
    ),
    command_route(
        "/wallets/{wallet_id}/copay-consent",
        wallet_commands.set_copay_consent,
        CopayConsentBody,
        method="PUT",
        name="set_copay_consent",
    ),
    # The gateways' callbacks: no bearer token, the gateway's signature authenticates them
    # (command_service/payment_callbacks.py); no Idempotency-Key, the gateway's payment
    # reference makes a repeat harmless.
    Route(
        PREFIX + "/payments/fawry/callback",
        guarded(payment_callbacks.fawry_callback),
        methods=["POST"],
        name="fawry_callback",
    ),
    Route(
        PREFIX + "/payments/paymob/callback",
        guarded(payment_callbacks.paymob_callback),
        methods=["POST"],
        name="paymob_callback",
    ),
]
