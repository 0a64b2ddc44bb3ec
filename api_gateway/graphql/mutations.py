"""GraphQL mutations, each forwarded to the command service's write API (the only writer).

The command service decides everything: who may do what, input validation, idempotency.
The caller's own bearer token goes with each write, so a mutation can do exactly what the
same REST write could do, nothing more. Its refusal (problem+json) becomes a GraphQL error
whose `code` is the queries' category (NOT_FOUND, FORBIDDEN, BAD_USER_INPUT, CONFLICT, ...),
with the problem's own code in `problem`, the HTTP `status` and, for invalid fields, `errors`.

Each payload carries the write's `position`: pass it as `minPosition` to a later read to see
the write there. Money stays a two-decimal string, as in the REST answers.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import strawberry
from graphql import GraphQLError
from starlette.requests import Request
from strawberry.types import Info

from api_gateway.commands_client import Answer, CommandUnavailable
from api_gateway.graphql.consent import CopayConsent
from api_gateway.graphql.context import Context, error
from api_gateway.graphql.people import AddedBeneficiary
from api_gateway.graphql.scalars import Long
from infrastructure.http.problems import Problem

API = "/api/v1"
MAX_IDEMPOTENCY_KEY = 255  # the command service's own bound


@strawberry.input(description="A person to add to a card (validated by the command service).")
class BeneficiaryInput:
    relationship: str
    national_id: str = strawberry.field(description="14-digit Egyptian national id.")
    name: str
    date_of_birth: str = strawberry.field(description="ISO date, YYYY-MM-DD.")
    phone_number: str


@strawberry.input(description="Money received by a payment gateway for a wallet.")
class TopUpInput:
    gateway: str
    gateway_reference: str = strawberry.field(
        description="The gateway's own reference; a repeat with the same one is not re-booked."
    )
    amount: str = strawberry.field(description='A positive amount, at most two decimals: "100.00".')


@strawberry.input(description="A payment from the member's own wallet.")
class PaymentInput:
    amount: str = strawberry.field(description='A positive amount, at most two decimals: "25.00".')
    reference: str = strawberry.field(
        description="The merchant's reference; a repeat with the same one is not paid twice."
    )
    purpose: str = "purchase"


@strawberry.input(
    description="The member's consent to claims' copayments paid from the wallet; 0 and 0"
    " withdraws it."
)
class CopayConsentInput:
    per_claim_limit: str = strawberry.field(
        description='The most one claim\'s copayment may be, at most two decimals: "100.00".'
    )
    monthly_limit: str = strawberry.field(
        description="The most claims may take in a calendar month (Africa/Cairo)."
    )


@strawberry.interface(description="What every write answers with.")
class WriteResult:
    position: Long = strawberry.field(description="The event's position: a read's minPosition.")
    version: int = strawberry.field(description="The stream's version after the write.")
    event_type: str
    replayed: bool = strawberry.field(
        description="True when an identical earlier write was answered again (nothing new)."
    )


@strawberry.type
class AddBeneficiaryPayload(WriteResult):
    medcard_id: strawberry.ID
    beneficiary: AddedBeneficiary


@strawberry.type
class RemoveBeneficiaryPayload(WriteResult):
    medcard_id: strawberry.ID
    beneficiary_id: strawberry.ID
    removed: bool


@strawberry.type
class OpenWalletPayload(WriteResult):
    wallet_id: strawberry.ID
    owner_user_id: str
    currency: str
    balance: str
    opened_at: str


@strawberry.type
class TopUpWalletPayload(WriteResult):
    wallet_id: strawberry.ID
    transaction_id: strawberry.ID
    type: str
    amount: str
    balance: str = strawberry.field(description="The wallet's balance after the top-up.")
    at: str
    gateway: str
    gateway_reference: str


@strawberry.type
class WalletPaymentPayload(WriteResult):
    wallet_id: strawberry.ID
    transaction_id: strawberry.ID
    type: str
    amount: str
    balance: str = strawberry.field(description="The wallet's balance after the payment.")
    at: str
    purpose: str
    reference: str


@strawberry.type
class SetCopayConsentPayload(WriteResult):
    wallet_id: strawberry.ID
    copay_consent: CopayConsent


@strawberry.type
class SuspendMedcardPayload(WriteResult):
    medcard_id: strawberry.ID
    status: str


def _wallet_entry(b: dict[str, Any]) -> dict[str, Any]:
    """The fields every wallet movement answers with (top-up, payment)."""
    return {
        "wallet_id": strawberry.ID(b["walletId"]),
        "transaction_id": strawberry.ID(b["transactionId"]),
        "type": b["type"],
        "amount": b["amount"],
        "balance": b["balance"],
        "at": b["at"],
    }


def _written(answer: Answer) -> dict[str, Any]:
    body = answer.body
    return {
        "position": body["position"],
        "version": body["version"],
        "event_type": body["eventType"],
        "replayed": answer.replayed,
    }


# The queries' category codes; the command service's own problem code stays in `problem`
# (and its HTTP status in `status`), so an app can switch on the kind or on the exact refusal.
_CATEGORY = {
    400: "BAD_USER_INPUT",
    401: "UNAUTHENTICATED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    409: "CONFLICT",
    413: "BAD_USER_INPUT",
    415: "BAD_USER_INPUT",
    422: "BAD_USER_INPUT",
}


def _refused(
    status: int, problem: str, detail: str, errors: list[dict[str, Any]] | None = None
) -> GraphQLError:
    category = _CATEGORY.get(status, "UNAVAILABLE" if status >= 500 else "BAD_REQUEST")
    extensions: dict[str, Any] = {"code": category, "problem": problem, "status": status}
    if errors:  # a 422's per-field errors: what the app needs to mark its form
        extensions["errors"] = errors
    return GraphQLError(detail, extensions=extensions)


def _path_id(value: strawberry.ID, missing_code: str, what: str) -> str:
    """A UUID, checked here so no id can bend the forwarded path; anything else is refused as
    the command service refuses an unknown id."""
    try:
        return str(UUID(str(value)))
    except ValueError:
        raise _refused(404, missing_code, f"no such {what}") from None


def _key(value: str | None) -> str | None:
    # Checked here: a control character would fail in the HTTP client, not as a clear refusal.
    if value is not None and not (
        0 < len(value) <= MAX_IDEMPOTENCY_KEY and value.isascii() and value.isprintable()
    ):
        raise _refused(
            400,
            "invalid_idempotency_key",
            f"idempotencyKey must be 1 to {MAX_IDEMPOTENCY_KEY} printable ASCII characters",
        )
    return value


async def _send(
    info: Info[Context, None],
    method: str,
    path: str,
    body: dict[str, Any] | None,
    idempotency_key: str | None,
) -> Answer:
    ctx = info.context
    ctx.principal  # noqa: B018  # raises UNAUTHENTICATED when there is no caller
    if ctx.commands is None or ctx.authorization is None:
        raise error("UNAVAILABLE", "writes are not available on this gateway")
    request = ctx.request
    tracing = dict(request.headers) if isinstance(request, Request) else None
    try:
        return await ctx.commands.send(
            method,
            API + path,
            authorization=ctx.authorization,
            body=body,
            idempotency_key=_key(idempotency_key),
            tracing=tracing,
        )
    except Problem as exc:  # the command service refused: the same refusal, in GraphQL
        raise _refused(exc.status, exc.code, exc.detail, exc.errors) from exc
    except CommandUnavailable as exc:
        raise error("UNAVAILABLE", f"{exc}; retry with the same idempotencyKey") from exc


async def _add_beneficiary(
    info: Info[Context, None],
    medcard_id: strawberry.ID,
    input: BeneficiaryInput,
    idempotency_key: str | None = None,
) -> AddBeneficiaryPayload | None:
    card = _path_id(medcard_id, "card_not_found", "card")
    answer = await _send(
        info,
        "POST",
        f"/medcards/{card}/beneficiaries",
        {
            "relationship": input.relationship,
            "nationalId": input.national_id,
            "name": input.name,
            "dateOfBirth": input.date_of_birth,
            "phoneNumber": input.phone_number,
        },
        idempotency_key,
    )
    b = answer.body
    return AddBeneficiaryPayload(
        medcard_id=strawberry.ID(b["medcardId"]),
        beneficiary=AddedBeneficiary(
            id=strawberry.ID(b["id"]),
            relationship=b["relationship"],
            national_id=b["nationalId"],
            name=b["name"],
            date_of_birth=b["dateOfBirth"],
            phone_number=b["phoneNumber"],
        ),
        **_written(answer),
    )


async def _remove_beneficiary(
    info: Info[Context, None],
    medcard_id: strawberry.ID,
    beneficiary_id: strawberry.ID,
    idempotency_key: str | None = None,
) -> RemoveBeneficiaryPayload | None:
    card = _path_id(medcard_id, "card_not_found", "card")
    beneficiary = _path_id(beneficiary_id, "beneficiary_not_found", "beneficiary")
    answer = await _send(
        info, "DELETE", f"/medcards/{card}/beneficiaries/{beneficiary}", None, idempotency_key
    )
    b = answer.body
    return RemoveBeneficiaryPayload(
        medcard_id=strawberry.ID(b["medcardId"]),
        beneficiary_id=strawberry.ID(b["id"]),
        removed=b["removed"],
        **_written(answer),
    )


async def _open_wallet(
    info: Info[Context, None], user_id: str, idempotency_key: str | None = None
) -> OpenWalletPayload | None:
    answer = await _send(info, "POST", "/wallets", {"userId": user_id}, idempotency_key)
    b = answer.body
    return OpenWalletPayload(
        wallet_id=strawberry.ID(b["id"]),
        owner_user_id=b["ownerUserId"],
        currency=b["currency"],
        balance=b["balance"],
        opened_at=b["openedAt"],
        **_written(answer),
    )


async def _top_up_wallet(
    info: Info[Context, None],
    wallet_id: strawberry.ID,
    input: TopUpInput,
    idempotency_key: str | None = None,
) -> TopUpWalletPayload | None:
    wallet = _path_id(wallet_id, "wallet_not_found", "wallet")
    answer = await _send(
        info,
        "POST",
        f"/wallets/{wallet}/topups",
        {
            "gateway": input.gateway,
            "gatewayReference": input.gateway_reference,
            "amount": input.amount,
        },
        idempotency_key,
    )
    b = answer.body
    return TopUpWalletPayload(
        gateway=b["gateway"],
        gateway_reference=b["gatewayReference"],
        **_wallet_entry(b),
        **_written(answer),
    )


async def _pay_from_wallet(
    info: Info[Context, None],
    wallet_id: strawberry.ID,
    input: PaymentInput,
    idempotency_key: str | None = None,
) -> WalletPaymentPayload | None:
    wallet = _path_id(wallet_id, "wallet_not_found", "wallet")
    body = {"amount": input.amount, "reference": input.reference, "purpose": input.purpose}
    answer = await _send(info, "POST", f"/wallets/{wallet}/debits", body, idempotency_key)
    b = answer.body
    return WalletPaymentPayload(
        purpose=b["purpose"], reference=b["reference"], **_wallet_entry(b), **_written(answer)
    )


async def _set_copay_consent(
    info: Info[Context, None],
    wallet_id: strawberry.ID,
    input: CopayConsentInput,
    idempotency_key: str | None = None,
) -> SetCopayConsentPayload | None:
    wallet = _path_id(wallet_id, "wallet_not_found", "wallet")
    body = {"perClaimLimit": input.per_claim_limit, "monthlyLimit": input.monthly_limit}
    answer = await _send(info, "PUT", f"/wallets/{wallet}/copay-consent", body, idempotency_key)
    b = answer.body
    return SetCopayConsentPayload(
        wallet_id=strawberry.ID(b["walletId"]),
        copay_consent=CopayConsent.from_body(b["copayConsent"]),
        **_written(answer),
    )


async def _suspend_medcard(
    info: Info[Context, None],
    medcard_id: strawberry.ID,
    reason: str | None = None,
    idempotency_key: str | None = None,
) -> SuspendMedcardPayload | None:
    card = _path_id(medcard_id, "card_not_found", "card")
    body = None if reason is None else {"reason": reason}
    answer = await _send(info, "POST", f"/medcards/{card}/suspend", body, idempotency_key)
    b = answer.body
    return SuspendMedcardPayload(
        medcard_id=strawberry.ID(b["id"]), status=b["status"], **_written(answer)
    )


@strawberry.type
class Mutation:
    add_beneficiary: AddBeneficiaryPayload | None = strawberry.mutation(
        resolver=_add_beneficiary,
        description="Adds a beneficiary to a card (its member, or staff).",
    )
    remove_beneficiary: RemoveBeneficiaryPayload | None = strawberry.mutation(
        resolver=_remove_beneficiary,
        description="Removes a beneficiary from a card (its member, or staff).",
    )
    open_wallet: OpenWalletPayload | None = strawberry.mutation(
        resolver=_open_wallet, description="Opens the wallet of a user (a member: only their own)."
    )
    top_up_wallet: TopUpWalletPayload | None = strawberry.mutation(
        resolver=_top_up_wallet,
        description="Books money a payment gateway received into a wallet (staff: a payment"
        " gateway's callback, never the member's app).",
    )
    pay_from_wallet: WalletPaymentPayload | None = strawberry.mutation(
        resolver=_pay_from_wallet,
        description="Pays from a wallet (its member, or staff); never below zero.",
    )
    set_copay_consent: SetCopayConsentPayload | None = strawberry.mutation(
        resolver=_set_copay_consent,
        description="Sets how much claims may take from the wallet for their copayments, per"
        " claim and per month (the wallet's member, or admin); until then they take nothing.",
    )
    suspend_medcard: SuspendMedcardPayload | None = strawberry.mutation(
        resolver=_suspend_medcard,
        description="Suspends a card, e.g. reported lost (its member, or staff); claims on it"
        " are then rejected until staff reactivate it.",
    )
