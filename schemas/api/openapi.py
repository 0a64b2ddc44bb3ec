"""The public HTTP API as data, and the OpenAPI 3.1 document made from it.

Both services route with plain Starlette routes (docs/design.md §3), which FastAPI's OpenAPI
generator cannot see, so the operations are declared here instead: the command service
documents WRITES, the gateway (which answers /docs at the public URL) READS + WRITES.
Tests hold each service's route table equal to its declarations, so they cannot drift.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal, get_args

from pydantic import BaseModel
from pydantic.json_schema import (
    GenerateJsonSchema,
    JsonSchemaMode,
    JsonSchemaValue,
    models_json_schema,
)
from pydantic_core import core_schema

from schemas.api.commands import (
    CORRELATION_ID,
    IDEMPOTENCY_KEY,
    MAX_BODY_BYTES,
    NO_CONTROL_PATTERN,
    AddBeneficiaryBody,
    Body,
    CardClaimBody,
    CardHoldBody,
    ClaimBody,
    CopayConsentBody,
    DebitBody,
    EligibilityBody,
    FawryNotificationBody,
    HeaderRule,
    HoldBody,
    IssueCardBody,
    OpenWalletBody,
    PaymobCallbackBody,
    RefillOverrideBody,
    RefundBody,
    ReversalBody,
    StatusChangeBody,
    TopUpBody,
    VoidHoldBody,
)
from schemas.api.formats import DOMAIN_RULES, MAX_POSITION, decimal_schema, trimmed_text_pattern
from schemas.api.point_of_sale import EligibilityAnswer
from schemas.api.reads import (
    BeneficiaryList,
    Card,
    ClaimDetails,
    ClaimPage,
    ClaimStatus,
    TransactionPage,
    Wallet,
)

API = "/api/v1"
POSITION_HEADER = "X-Projection-Position"
SECURITY_SCHEME = "bearer"
PROBLEM_MEDIA_TYPE = "application/problem+json"
_REF = "#/components/schemas/{model}"
# (model, mode) -> the {"$ref": ...} pydantic made for it
Refs = dict[tuple[Any, JsonSchemaMode], dict[str, Any]]

# RFC 7807, as infrastructure/http/problems.py writes it.
PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "RFC 7807 problem details; `code` is the stable, machine-readable part.",
    "properties": {
        "type": {"type": "string", "format": "uri"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "code": {"type": "string", "examples": ["card_not_found"]},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "errors": {
            "type": "array",
            "description": "validation failures, one per field",
            "items": {
                "type": "object",
                "properties": {
                    "field": {"type": "string"},
                    "message": {"type": "string"},
                    "type": {"type": "string"},
                },
            },
        },
    },
    "required": ["type", "title", "status", "code", "detail"],
}

# Write answers are made from the answering event (command_service/responses.py); their
# shape depends on the event, so this names only what every answer carries.
COMMAND_ANSWER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": (
        "The event that answered the command, in camelCase, plus where it was stored. Pass"
        " `position` as `minPosition` to a read of the same card or wallet to read your write."
    ),
    "properties": {
        "eventType": {"type": "string", "examples": ["medcard.issued"]},
        "version": {"type": "integer", "description": "the aggregate's version after it"},
        "position": {
            "type": ["integer", "null"],
            "description": "the event's position in the store; null for a claim's quote"
            " (`mode: quote`: nothing was stored)",
        },
        "mode": {
            "type": "string",
            "enum": ["quote"],
            "description": "only on a claim's quote: the answer the claim would get now",
        },
        "ncpdp": {
            "type": "object",
            "description": "only on claims and reversals: the answer in NCPDP D.0's words"
            " (our decision and reasons stay primary). transactionStatus: P paid, R rejected,"
            " D duplicate of a paid claim (an identical retry), C captured hold, A approved"
            " reversal, S duplicate of an approved reversal; rejectCodes: NCPDP 511-FB codes"
            " mapped from the reasons (65, 67, 68, 69, 53, 76, 79; 85 for any other)",
            "properties": {
                "transactionStatus": {"type": "string", "enum": ["P", "R", "D", "C", "A", "S"]},
                "rejectCodes": {"type": "array", "items": {"type": "string"}},
                "totalAmountPaid": {"type": "string", "description": "the plan pays (509-F9)"},
                "patientPayAmount": {"type": "string", "description": "the patient pays (505-F5)"},
                "amountExceedingPeriodicBenefitMaximum": {
                    "type": "string",
                    "description": "of what the patient pays, what the exhausted monthly"
                    " benefit left to them (520-FK)",
                },
                "remainingBenefitAmount": {
                    "type": "string",
                    "description": "the month's benefit left after it (514-FS)",
                },
            },
            "required": ["transactionStatus", "rejectCodes", "remainingBenefitAmount"],
        },
    },
    "required": ["eventType", "version", "position"],
    "additionalProperties": True,
}

SECURITY_SCHEMES: dict[str, Any] = {
    SECURITY_SCHEME: {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
}


@dataclass(frozen=True, slots=True)
class WriteOperation:
    """A command route of the command service (command_service/routes.py)."""

    method: Literal["POST", "PUT", "DELETE"]
    path: str
    operation_id: str  # the route's name
    body: type[BaseModel] | None
    body_required: bool
    summary: str
    created: bool  # 201 when it creates something, else 200
    answers: str  # the event type(s) the answer is made from
    tag: str
    # A query over POST (no side effect, no Idempotency-Key): its answer's model
    response: type[BaseModel] | None = None
    # A payment gateway's callback: the gateway's signature authenticates it, not a token
    signature: str | None = None  # what the signature is, in the gateway's own words
    signature_parameter: str | None = None  # the query parameter carrying it, if not the body


@dataclass(frozen=True, slots=True)
class ReadOperation:
    """A REST read of the gateway (api_gateway/rest.py)."""

    path: str
    operation_id: str
    response: type[BaseModel]
    summary: str
    paged: bool  # takes `limit` and `cursor`
    pharmacy_refused: bool  # 403 for the pharmacy role
    tag: str
    method: Literal["GET"] = "GET"
    # A pharmacy's statement: it takes `from`, `to` and `status`, spans many streams (so no
    # minPosition, no X-Projection-Position) and is refused (403) to whom `forbidden` says
    statement: bool = False
    forbidden: str | None = None


Operation = WriteOperation | ReadOperation


LIFECYCLE_ACTIONS = ("activate", "suspend", "reactivate", "cancel", "renew", "expire")


def _lifecycle(action: str, summary: str, answers: str) -> WriteOperation:
    return WriteOperation(
        "POST",
        f"{API}/medcards/{{card_id}}/{action}",
        f"{action}_card",
        StatusChangeBody,
        False,
        summary,
        False,
        answers,
        "medcards",
    )


# In the command service's route order (the test compares sets, the order is for reading).
WRITES: tuple[WriteOperation, ...] = (
    WriteOperation(
        "POST",
        f"{API}/medcards/{{card_id}}/claims/prescriptions",
        "claim_prescription",
        ClaimBody,
        True,
        "Claim a prescription against a card (pharmacies)",
        True,
        "medcard.claim_adjudicated",
        "claims",
    ),
    WriteOperation(
        "POST",
        f"{API}/claims/prescriptions",
        "claim_by_card_number",
        CardClaimBody,
        True,
        "Claim a prescription against the card with this printed number (pharmacies); the"
        " card-id route's adjudication, answer and replay",
        True,
        "medcard.claim_adjudicated",
        "claims",
    ),
    WriteOperation(
        "POST",
        f"{API}/medcards",
        "issue_card",
        IssueCardBody,
        True,
        "Issue a MedCard",
        True,
        "medcard.issued",
        "medcards",
    ),
    _lifecycle("activate", "Activate a pending card", "medcard.activated"),
    _lifecycle("suspend", "Suspend a card", "medcard.suspended"),
    _lifecycle("reactivate", "Reactivate a suspended card", "medcard.reactivated"),
    _lifecycle("cancel", "Cancel a card", "medcard.cancelled"),
    _lifecycle("renew", "Renew a card's expiry date", "medcard.renewed"),
    _lifecycle("expire", "Expire a card", "medcard.expired"),
    WriteOperation(
        "POST",
        f"{API}/medcards/{{card_id}}/beneficiaries",
        "add_beneficiary",
        AddBeneficiaryBody,
        True,
        "Add a beneficiary to a card",
        True,
        "medcard.beneficiary_added",
        "medcards",
    ),
    WriteOperation(
        "DELETE",
        f"{API}/medcards/{{card_id}}/beneficiaries/{{beneficiary_id}}",
        "remove_beneficiary",
        None,
        False,
        "Remove a beneficiary from a card",
        False,
        "medcard.beneficiary_removed",
        "medcards",
    ),
    WriteOperation(
        "POST",
        f"{API}/medcards/{{card_id}}/claims/{{claim_id}}/reversal",
        "reverse_claim",
        ReversalBody,
        False,
        "Reverse a claim (restores the monthly limit, refunds a wallet copayment)",
        False,
        "medcard.claim_reversed",
        "claims",
    ),
    WriteOperation(
        "POST",
        f"{API}/medcards/{{card_id}}/refill-overrides",
        "grant_refill_override",
        RefillOverrideBody,
        True,
        "Let a beneficiary's refill of a drug through before it is due (ops and admins): for the"
        " next such claim, or every one until `validUntil`",
        True,
        "medcard.refill_override_granted",
        "claims",
    ),
    WriteOperation(
        "POST",
        f"{API}/medcards/{{card_id}}/holds",
        "place_hold",
        HoldBody,
        True,
        "Hold part of the month's benefit for a prescription (pharmacies): it counts against"
        " the monthly limit until a claim naming it (`holdId`) captures it, it is voided or it"
        " expires; no money moves",
        True,
        "medcard.hold_placed",
        "claims",
    ),
    WriteOperation(
        "POST",
        f"{API}/holds",
        "place_hold_by_number",
        CardHoldBody,
        True,
        "Hold part of the month's benefit on the card with this printed number (pharmacies);"
        " the card-id route's hold",
        True,
        "medcard.hold_placed",
        "claims",
    ),
    WriteOperation(
        "POST",
        f"{API}/medcards/{{card_id}}/holds/{{hold_id}}/void",
        "void_hold",
        VoidHoldBody,
        False,
        "Void an open hold (the pharmacy that placed it, or staff): its amount is available again",
        False,
        "medcard.hold_voided",
        "claims",
    ),
    WriteOperation(
        "POST",
        f"{API}/eligibility",
        "check_eligibility",
        EligibilityBody,
        True,
        "Would a claim on this card (by its printed number), for this beneficiary, be covered"
        " now: the terms, the month's remaining benefit, the beneficiaries with masked names"
        " (pharmacies and staff; no side effect)",
        False,
        "eligibility",
        "claims",
        response=EligibilityAnswer,
    ),
    WriteOperation(
        "POST",
        f"{API}/wallets",
        "open_wallet",
        OpenWalletBody,
        True,
        "Open a member's wallet",
        True,
        "wallet.opened",
        "wallets",
    ),
    WriteOperation(
        "POST",
        f"{API}/wallets/{{wallet_id}}/topups",
        "top_up",
        TopUpBody,
        True,
        "Top up a wallet",
        True,
        "wallet.topped_up",
        "wallets",
    ),
    WriteOperation(
        "POST",
        f"{API}/wallets/{{wallet_id}}/debits",
        "debit",
        DebitBody,
        True,
        "Debit a wallet",
        True,
        "wallet.debited",
        "wallets",
    ),
    WriteOperation(
        "POST",
        f"{API}/wallets/{{wallet_id}}/debits/{{debit_id}}/refund",
        "refund_debit",
        RefundBody,
        True,
        "Refund a direct debit of a wallet, in part or whole (admin and ops); the refunds of"
        " a debit never exceed it (409 refund_exceeds_debit). A claim's copayment is refunded"
        " by reversing the claim, and a top-up is no debit: both 422 not_a_direct_debit",
        True,
        "wallet.refunded",
        "wallets",
    ),
    WriteOperation(
        "PUT",
        f"{API}/wallets/{{wallet_id}}/copay-consent",
        "set_copay_consent",
        CopayConsentBody,
        True,
        "Set the member's consent to copayments paid from the wallet (the member, or admin);"
        " claims take a copayment from the wallet only within it, all of it or none",
        False,
        "wallet.copay_consent_set",
        "wallets",
    ),
    WriteOperation(
        "POST",
        f"{API}/payments/fawry/callback",
        "fawry_callback",
        FawryNotificationBody,
        True,
        "FawryPay's server-to-server notification V2: a PAID order credits the wallet its"
        " merchantRefNumber names (`<walletId>:<suffix>`) with orderAmount, once per"
        " fawryRefNumber",
        False,
        "wallet.topped_up",
        "payments",
        signature="messageSignature: SHA-256 (hex) of fawryRefNumber, merchantRefNumber,"
        " paymentAmount and orderAmount (two decimals), orderStatus, paymentMethod,"
        " paymentRefrenceNumber and the merchant's security key (FAWRY_SECURITY_KEY)",
    ),
    WriteOperation(
        "POST",
        f"{API}/payments/paymob/callback",
        "paymob_callback",
        PaymobCallbackBody,
        True,
        "Paymob's transaction processed callback: a successful payment credits the wallet its"
        " order's merchant_order_id names (`<walletId>:<suffix>`) with amount_cents / 100, once"
        " per transaction id",
        False,
        "wallet.topped_up",
        "payments",
        signature="the `hmac` query parameter: HMAC-SHA512 (hex), keyed by the merchant's HMAC"
        " secret (PAYMOB_HMAC_SECRET), of the transaction's fields Paymob lists, in its order",
        signature_parameter="hmac",
    ),
)

READS: tuple[ReadOperation, ...] = (
    ReadOperation(
        f"{API}/medcards/{{card_id}}",
        "get_card",
        Card,
        "A card, this month's spend and its beneficiaries",
        paged=False,
        pharmacy_refused=True,
        tag="medcards",
    ),
    ReadOperation(
        f"{API}/medcards/{{card_id}}/claims",
        "get_card_claims",
        ClaimPage,
        "A card's claims, newest first",
        paged=True,
        pharmacy_refused=True,
        tag="claims",
    ),
    ReadOperation(
        f"{API}/medcards/{{card_id}}/beneficiaries",
        "get_beneficiaries",
        BeneficiaryList,
        "A card's current beneficiaries",
        paged=False,
        pharmacy_refused=True,
        tag="medcards",
    ),
    ReadOperation(
        f"{API}/claims/{{claim_id}}",
        "get_claim",
        ClaimDetails,
        "One claim with its prescription lines",
        paged=False,
        pharmacy_refused=False,
        tag="claims",
    ),
    ReadOperation(
        f"{API}/wallets/{{wallet_id}}",
        "get_wallet",
        Wallet,
        "A wallet and its balance",
        paged=False,
        pharmacy_refused=True,
        tag="wallets",
    ),
    ReadOperation(
        f"{API}/wallets/{{wallet_id}}/transactions",
        "get_wallet_transactions",
        TransactionPage,
        "A wallet's top-ups, debits and refunds, newest first",
        paged=True,
        pharmacy_refused=True,
        tag="wallets",
    ),
    ReadOperation(
        f"{API}/pharmacies/me/claims",
        "get_my_pharmacy_claims",
        ClaimPage,
        "The calling pharmacy's statement: the claims it posted (the pharmacy its token names),"
        " newest first",
        paged=True,
        pharmacy_refused=False,
        tag="claims",
        statement=True,
        forbidden="the caller is not a pharmacy (staff name the pharmacy:"
        " /pharmacies/{pharmacy_id}/claims)",
    ),
    ReadOperation(
        f"{API}/pharmacies/{{pharmacy_id}}/claims",
        "get_pharmacy_claims",
        ClaimPage,
        "A pharmacy's statement (admin and ops; a pharmacy, its own): the claims it posted,"
        " newest first",
        paged=True,
        pharmacy_refused=False,
        tag="claims",
        statement=True,
        forbidden="a member, or a pharmacy naming another pharmacy",
    ),
)

_TAGS = [
    {"name": "medcards", "description": "MedCards, their lifecycle and beneficiaries"},
    {"name": "claims", "description": "Prescription claims"},
    {"name": "wallets", "description": "Member wallets"},
    {
        "name": "payments",
        "description": "The payment gateways' callbacks (no bearer token: the gateway's"
        " signature authenticates them)",
    },
]

# ------------------------------------------------------------------ what answers carry

_UUID: dict[str, Any] = {"type": "string", "format": "uuid"}
# The ids a write's answer carries (command_service/responses.py), which links feed on.
ANSWER_IDS: dict[str, dict[str, Any]] = {
    "issue_card": {"id": _UUID, "cardNumber": {"type": "string", "pattern": "^[0-9]{16}$"}},
    **{f"{a}_card": {"id": _UUID} for a in LIFECYCLE_ACTIONS},
    "add_beneficiary": {"id": _UUID, "medcardId": _UUID},
    "remove_beneficiary": {"id": _UUID, "medcardId": _UUID},
    "claim_prescription": {
        "claimId": _UUID,
        "medcardId": _UUID,
        "beneficiaryId": _UUID,
        "walletId": {"anyOf": [_UUID, {"type": "null"}]},
    },
    "claim_by_card_number": {
        "claimId": _UUID,
        "medcardId": _UUID,
        "beneficiaryId": _UUID,
        "walletId": {"anyOf": [_UUID, {"type": "null"}]},
    },
    "reverse_claim": {"claimId": _UUID, "medcardId": _UUID},
    "grant_refill_override": {"id": _UUID, "medcardId": _UUID, "beneficiaryId": _UUID},
    "place_hold": {"holdId": _UUID, "medcardId": _UUID, "beneficiaryId": _UUID},
    "place_hold_by_number": {"holdId": _UUID, "medcardId": _UUID, "beneficiaryId": _UUID},
    "void_hold": {"holdId": _UUID, "medcardId": _UUID},
    "open_wallet": {"id": _UUID},
    "top_up": {"walletId": _UUID, "transactionId": _UUID},
    "debit": {"walletId": _UUID, "transactionId": _UUID},
    "refund_debit": {"walletId": _UUID, "transactionId": _UUID, "debitId": _UUID},
    "set_copay_consent": {"walletId": _UUID},
}


@dataclass(frozen=True, slots=True)
class Link:
    """A value an answer carries that another operation takes (an OpenAPI link): what a
    client, or a stateful fuzzer, calls next with what it was just given."""

    target: str  # the operationId it feeds
    parameters: dict[str, str]  # "path.card_id" -> a runtime expression


def _body(field: str) -> str:
    return f"$response.body#/{field}"


_POSITION = {"query.minPosition": _body("position")}
_CARD_WRITES = (
    "add_beneficiary",
    "claim_prescription",
    "grant_refill_override",
    *(f"{a}_card" for a in LIFECYCLE_ACTIONS),
)
_CARD_READS = ("get_card", "get_card_claims", "get_beneficiaries")


def _card_links(card: str) -> list[Link]:
    """From an answer naming a card in `card`: every write on it, and its reads once they
    reflect the answer's position."""
    path = {"path.card_id": _body(card)}
    return [Link(op, path) for op in _CARD_WRITES] + [
        Link(op, path | _POSITION) for op in _CARD_READS
    ]


def _wallet_links(wallet: str) -> list[Link]:
    path = {"path.wallet_id": _body(wallet)}
    return [Link(op, path) for op in ("top_up", "debit", "set_copay_consent")] + [
        Link(op, path | _POSITION) for op in ("get_wallet", "get_wallet_transactions")
    ]


def _next_page(operation: str, path_parameter: str) -> list[Link]:
    return [
        Link(
            operation,
            {
                f"path.{path_parameter}": f"$request.path.{path_parameter}",
                "query.cursor": _body("nextCursor"),
            },
        )
    ]


LINKS: dict[str, list[Link]] = {
    "issue_card": _card_links("id"),
    **{f"{a}_card": _card_links("id") for a in LIFECYCLE_ACTIONS},
    "add_beneficiary": [
        Link(
            "remove_beneficiary",
            {"path.card_id": _body("medcardId"), "path.beneficiary_id": _body("id")},
        ),
        *_card_links("medcardId"),
    ],
    "claim_prescription": [
        Link(
            "reverse_claim", {"path.card_id": _body("medcardId"), "path.claim_id": _body("claimId")}
        ),
        Link("get_claim", {"path.claim_id": _body("claimId")} | _POSITION),
        *_card_links("medcardId"),
    ],
    "claim_by_card_number": [
        Link(
            "reverse_claim", {"path.card_id": _body("medcardId"), "path.claim_id": _body("claimId")}
        ),
        Link("get_claim", {"path.claim_id": _body("claimId")} | _POSITION),
        *_card_links("medcardId"),
    ],
    "reverse_claim": [
        Link("get_claim", {"path.claim_id": _body("claimId")} | _POSITION),
        *_card_links("medcardId"),
    ],
    "remove_beneficiary": _card_links("medcardId"),
    **{
        placed: [
            Link(
                "void_hold", {"path.card_id": _body("medcardId"), "path.hold_id": _body("holdId")}
            ),
            *_card_links("medcardId"),
        ]
        for placed in ("place_hold", "place_hold_by_number")
    },
    "void_hold": _card_links("medcardId"),
    "open_wallet": _wallet_links("id"),
    "top_up": _wallet_links("walletId"),
    "debit": [
        Link(
            "refund_debit",
            {"path.wallet_id": _body("walletId"), "path.debit_id": _body("transactionId")},
        ),
        *_wallet_links("walletId"),
    ],
    "refund_debit": [
        Link(
            "refund_debit",
            {"path.wallet_id": _body("walletId"), "path.debit_id": _body("debitId")},
        ),
        *_wallet_links("walletId"),
    ],
    "set_copay_consent": _wallet_links("walletId"),
    "get_card_claims": _next_page("get_card_claims", "card_id"),
    "get_wallet_transactions": _next_page("get_wallet_transactions", "wallet_id"),
    "get_pharmacy_claims": _next_page("get_pharmacy_claims", "pharmacy_id"),
    "get_my_pharmacy_claims": [
        Link("get_my_pharmacy_claims", {"query.cursor": _body("nextCursor")})
    ],
}


# ---------------------------------------------------------------------- the document


class _WireSchema(GenerateJsonSchema):
    """pydantic's JSON Schema, made to say what the code enforces on the wire."""

    def decimal_schema(self, schema: core_schema.DecimalSchema) -> JsonSchemaValue:
        return decimal_schema(dict(schema))

    def str_schema(self, schema: core_schema.StringSchema) -> JsonSchemaValue:
        json_schema = super().str_schema(schema)
        if not schema.get("strip_whitespace"):
            return json_schema
        # The body's lengths and pattern judge the text once trimmed; the document describes
        # the text as sent, padding included.
        if schema.get("pattern") != NO_CONTROL_PATTERN or schema.get("min_length") != 1:
            raise ValueError(f"no document for the trimmed text {schema}")
        longest = int(schema["max_length"])
        return {
            "type": "string",
            "pattern": trimmed_text_pattern(longest),
            "description": f"1 to {longest} characters once the white space around them is"
            " trimmed, no control characters (U+0000-U+001F, U+007F-U+009F)",
        }


def _request_models() -> set[str]:
    names: set[str] = set()
    pending: list[type[Body]] = [Body]
    while pending:
        model = pending.pop()
        names.add(model.__name__)
        pending += model.__subclasses__()
    return names


def _with_domain_rules(schemas: dict[str, Any]) -> None:
    """Adds what the domain requires of a body's fields (schemas/api/formats.py)."""
    for name in _request_models() & set(schemas):
        for prop, schema in schemas[name].get("properties", {}).items():
            rule = DOMAIN_RULES.get(prop)
            if rule is None:
                continue
            described = {k: v for k, v in rule.items() if k in ("description", "examples")}
            schema.update(described)
            target = next((s for s in schema.get("anyOf", []) if s.get("type") == "string"), schema)
            target.update({k: v for k, v in rule.items() if k not in described})
            if "enum" in rule:
                for key in ("minLength", "maxLength", "pattern"):
                    target.pop(key, None)


def _without_titles(schema: Any) -> None:
    """pydantic's property titles ("Userid") say nothing the property names do not."""
    if isinstance(schema, dict):
        props = schema.get("properties")
        if isinstance(props, dict):
            for prop in props.values():
                if isinstance(prop, dict):
                    prop.pop("title", None)
        for value in schema.values():
            _without_titles(value)
    elif isinstance(schema, list):
        for value in schema:
            _without_titles(value)


def build_openapi(
    operations: Iterable[Operation], *, title: str, version: str, description: str = ""
) -> dict[str, Any]:
    """An OpenAPI 3.1 document for `operations`, its schemas under components."""
    ops = list(operations)
    models: list[tuple[type[BaseModel], JsonSchemaMode]] = []
    for op in ops:
        if isinstance(op, WriteOperation) and op.body is not None:
            models.append((op.body, "validation"))
        if op.response is not None:  # a read's answer, or a query's over POST
            models.append((op.response, "serialization"))
    refs, defs = models_json_schema(
        models, by_alias=True, ref_template=_REF, schema_generator=_WireSchema
    )
    schemas: dict[str, Any] = dict(defs.get("$defs", {}))
    _with_domain_rules(schemas)
    _without_titles(schemas)
    schemas["Problem"] = PROBLEM_SCHEMA
    if any(isinstance(op, WriteOperation) for op in ops):
        schemas["CommandAnswer"] = COMMAND_ANSWER_SCHEMA

    present = {op.operation_id for op in ops}
    paths: dict[str, dict[str, Any]] = {}
    for op in ops:
        operation = _write(op, refs) if isinstance(op, WriteOperation) else _read(op, refs)
        links = _links(op, present)
        for status, answer in operation["responses"].items():
            if links and status.startswith("2"):
                answer["links"] = links
        paths.setdefault(op.path, {})[op.method.lower()] = operation

    used_tags = {op.tag for op in ops}
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version, "description": description},
        "tags": [tag for tag in _TAGS if tag["name"] in used_tags],
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": dict(sorted(schemas.items())),
            "securitySchemes": SECURITY_SCHEMES,
        },
    }


def _links(op: Operation, present: set[str]) -> dict[str, Any]:
    return {
        f"{link.target}_from_{op.operation_id}": {
            "operationId": link.target,
            "parameters": link.parameters,
        }
        for link in LINKS.get(op.operation_id, [])
        if link.target in present
    }


def _problem(description: str, *, retry_after: bool = False) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "description": description,
        "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": _REF.format(model="Problem")}}},
    }
    if retry_after:
        answer["headers"] = {
            "Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}}
        }
    return answer


# Path ids that are not this API's UUIDs: a pharmacy's id is the opaque text its token carries
_TEXT_IDS: dict[str, dict[str, Any]] = {
    "pharmacy_id": {
        "description": "a pharmacy's id, as its token carries it (one that posted nothing has"
        " an empty statement); a URL path segment cannot carry a '/', nor be '.' or '..', and"
        " 'me' is the caller (/pharmacies/me/claims)",
        "schema": {"type": "string", "pattern": r"^(?!(\.\.?|me)$)[^/]+$"},
    }
}


def _path_parameters(path: str) -> list[dict[str, Any]]:
    names = [part[1:-1] for part in path.split("/") if part.startswith("{")]
    issued = {
        "description": "an id this API issued (another string names nothing: 404)",
        "schema": _UUID,
    }
    return [
        {"name": name, "in": "path", "required": True}
        | {k: copy.deepcopy(v) for k, v in _TEXT_IDS.get(name, issued).items()}
        for name in names
    ]


_INSTANT = {
    "anyOf": [{"type": "string", "format": "date"}, {"type": "string", "format": "date-time"}]
}


def _statement_parameters() -> list[dict[str, Any]]:
    def bound(name: str, which: str) -> dict[str, Any]:
        return {
            "name": name,
            "in": "query",
            "required": False,
            "description": f"the {which} claimedAt listed, inclusive: a date (the whole day in"
            " Africa/Cairo) or an RFC 3339 date-time with an offset (that instant)",
            "schema": copy.deepcopy(_INSTANT),
        }

    return [
        bound("from", "earliest"),
        bound("to", "latest"),
        {
            "name": "status",
            "in": "query",
            "required": False,
            "description": "only claims with this status (the decision, or reversed)",
            "schema": {"type": "string", "enum": list(get_args(ClaimStatus))},
        },
    ]


def _ref(refs: Refs, model: type[BaseModel], mode: JsonSchemaMode) -> dict[str, Any]:
    return refs[(model, mode)]


def _answer_schema(op: WriteOperation) -> dict[str, Any]:
    ids = ANSWER_IDS[op.operation_id]
    return {
        "allOf": [
            {"$ref": _REF.format(model="CommandAnswer")},
            {"type": "object", "properties": ids, "required": sorted(ids)},
        ]
    }


def _header(rule: HeaderRule, description: str) -> dict[str, Any]:
    return {
        "name": rule.name,
        "in": "header",
        "required": False,
        "description": f"{description}; 1 to {rule.max_length} printable ASCII characters"
        " (spaces inside)",
        "schema": {"type": "string", "pattern": rule.wire_pattern},
    }


def _query(op: WriteOperation, refs: Refs) -> dict[str, Any]:
    """A query sent as a POST: its body, its answer, and no write's headers or outcomes."""
    assert op.response is not None
    assert op.body is not None
    responses = {
        "200": {
            "description": f"the answer ({op.answers}); nothing is stored",
            "content": {"application/json": {"schema": _ref(refs, op.response, "serialization")}},
        },
        "400": _problem("malformed JSON"),
        "401": _problem("no or an invalid bearer token"),
        "403": _problem("the caller's role may not do this"),
        "404": _problem("no card has this number"),
        "413": _problem(f"the body is over {MAX_BODY_BYTES // 1024} KiB"),
        "415": _problem("the body is not application/json"),
        "422": _problem("an invalid body, or a beneficiary not on the card"),
    }
    return {
        "tags": [op.tag],
        "operationId": op.operation_id,
        "summary": op.summary,
        "security": [{SECURITY_SCHEME: []}],
        # every operation lists its parameters, none here (no path id, no write's headers)
        "parameters": _path_parameters(op.path),
        "responses": dict(sorted(responses.items())),
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": _ref(refs, op.body, "validation")}},
        },
    }


def _callback(op: WriteOperation, refs: Refs) -> dict[str, Any]:
    """A gateway's callback: its signature instead of a token, its reference instead of an
    Idempotency-Key, and a 200 for everything the gateway should not send again."""
    assert op.body is not None
    assert op.signature is not None
    parameters = []
    if op.signature_parameter is not None:
        parameters.append(
            {
                "name": op.signature_parameter,
                "in": "query",
                "required": True,
                "description": "the gateway's signature of the body (hexadecimal)",
                "schema": {"type": "string"},
            }
        )
    credited = {
        "allOf": [
            {"$ref": _REF.format(model="CommandAnswer")},
            {
                "type": "object",
                "properties": {"credited": {"const": True}, **ANSWER_IDS["top_up"]},
                "required": ["credited", *sorted(ANSWER_IDS["top_up"])],
            },
        ]
    }
    text = {"type": "string"}
    acknowledged = {
        "type": "object",
        "properties": {
            "credited": {"const": False},
            "gateway": text,
            "gatewayReference": text,
            "status": {"type": "string", "description": "the gateway's word for the payment"},
        },
        "required": ["credited", "gateway", "gatewayReference", "status"],
        "additionalProperties": False,
    }
    answer = {"oneOf": [credited, acknowledged]}
    responses = {
        "200": {
            "description": "acknowledged: the wallet credited (from the wallet.topped_up event,"
            " `credited: true`), a repeat answered with that first credit (Idempotent-Replayed:"
            " true), or a payment that took no money (`credited: false`, nothing stored)",
            "content": {"application/json": {"schema": answer}},
        },
        "400": _problem(
            "malformed JSON, or an X-Correlation-Id not 1 to"
            f" {CORRELATION_ID.max_length} printable ASCII characters"
        ),
        "401": _problem(f"invalid_signature: the signature is not the gateway's ({op.signature})"),
        "409": _problem(
            "this gateway reference already credited another wallet, or this one"
            " with another amount"
        ),
        "413": _problem(f"the body is over {MAX_BODY_BYTES // 1024} KiB"),
        "415": _problem("the body is not application/json"),
        "422": _problem(
            "an invalid body, a merchant reference that names no wallet"
            " (unknown_merchant_reference), or a currency wallets do not hold"
        ),
        "503": _problem(
            "gateway_not_configured (its key is not set), or the event store did not confirm"
            " the write; the gateway sends the callback again",
            retry_after=True,
        ),
    }
    return {
        "tags": [op.tag],
        "operationId": op.operation_id,
        "summary": op.summary,
        "security": [],
        "parameters": parameters,
        "responses": dict(sorted(responses.items())),
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": _ref(refs, op.body, "validation")}},
        },
    }


def _write(op: WriteOperation, refs: Refs) -> dict[str, Any]:
    if op.response is not None:
        return _query(op, refs)
    if op.signature is not None:
        return _callback(op, refs)
    answer = {"content": {"application/json": {"schema": _answer_schema(op)}}}
    responses: dict[str, Any] = {}
    if op.created:
        responses["201"] = {
            "description": f"done: made from the {op.answers} event (a request repeated with"
            " its Idempotency-Key gets the same answer again, with Idempotent-Replayed: true)"
        } | answer
        replayed = (
            "already done by an earlier command (nothing new was written);"
            " header Idempotent-Replayed: true"
        )
        if op.answers == "medcard.claim_adjudicated":
            replayed += "; or, with `mode: quote`, the answer the claim would get (nothing stored)"
        responses["200"] = {"description": replayed} | answer
    else:
        responses["200"] = {
            "description": f"done: made from the {op.answers} event (or an identical earlier"
            " request's answer, replayed, with header Idempotent-Replayed: true)"
        } | answer
    responses |= {
        "400": _problem(
            f"malformed JSON, an Idempotency-Key not 1 to {IDEMPOTENCY_KEY.max_length} printable"
            f" ASCII characters, or an X-Correlation-Id not 1 to {CORRELATION_ID.max_length}"
        ),
        "401": _problem("no or an invalid bearer token"),
        "403": _problem("the caller's role may not do this"),
        "404": _problem(
            "the card, beneficiary, claim, wallet or debit does not exist (for this caller)"
        ),
        "409": _problem("conflicts with the current state, or the Idempotency-Key is in use"),
        "422": _problem(
            "an invalid body, refused by a business rule, or the Idempotency-Key was used"
            " with another request"
        ),
        "500": _problem(
            "write_not_storable: the event store refused this request's data (nothing of it was"
            " stored; sent again unchanged it fails the same way)"
        ),
        "503": _problem(
            "the card or wallet kept changing under the command, the event store did not"
            " confirm the write, or too many writes are waiting for it (write_queue_full);"
            " retry (with the same Idempotency-Key)",
            retry_after=True,
        ),
    }
    if op.body is not None:
        responses["413"] = _problem(f"the body is over {MAX_BODY_BYTES // 1024} KiB")
        responses["415"] = _problem("the body is not application/json")
    if op.operation_id == "add_beneficiary":
        # the one write a path-routing Ingress sends through the gateway (docs/edge.md)
        responses["502"] = _problem(
            "through the gateway: the command service did not answer; retry with the same"
            " Idempotency-Key",
            retry_after=True,
        )
    operation: dict[str, Any] = {
        "tags": [op.tag],
        "operationId": op.operation_id,
        "summary": op.summary,
        "security": [{SECURITY_SCHEME: []}],
        "parameters": [
            *_path_parameters(op.path),
            _header(
                IDEMPOTENCY_KEY,
                "a repeat by the same caller (role, sub, pharmacy) with the same key and body gets"
                " the first answer (kept at least 7 days by default)",
            ),
            _header(
                CORRELATION_ID,
                "the client's id for this request, stored in the metadata of the events it"
                " writes (by default, or when empty, a new UUID)",
            ),
        ],
        "responses": dict(sorted(responses.items())),
    }
    if op.body is not None:
        operation["requestBody"] = {
            "required": op.body_required,
            "content": {"application/json": {"schema": _ref(refs, op.body, "validation")}},
        }
    return operation


def _position_parameter(name: str, where: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": where,
        "required": False,
        "description": description,
        "schema": {"type": "integer", "minimum": 0, "maximum": MAX_POSITION},
    }


_FRESH = (
    "wait until the read model reflects this position of the same card's or wallet's stream"
    " (the `position` a write answered); 504 if it does not in time"
)


def _read(op: ReadOperation, refs: Refs) -> dict[str, Any]:
    parameters = _path_parameters(op.path)
    if op.statement:
        parameters += _statement_parameters()
    else:
        parameters += [
            _position_parameter("minPosition", "query", _FRESH),
            _position_parameter(
                "X-Min-Position", "header", "as minPosition (the larger wins if both are sent)"
            ),
        ]
    if op.paged:
        parameters += [
            {
                "name": "limit",
                "in": "query",
                "required": False,
                "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 20},
            },
            {
                "name": "cursor",
                "in": "query",
                "required": False,
                "description": "the previous page's nextCursor, as it was given (opaque: any"
                " other value is 400 invalid_cursor)",
                "schema": {"type": "string", "pattern": "^[A-Za-z0-9_-]*$"},
            },
        ]
    if op.statement:
        return _operation(op, parameters, _statement_responses(op, refs))
    responses: dict[str, Any] = {
        "200": {
            "description": "the read model's answer",
            "headers": {
                POSITION_HEADER: {
                    "description": "the stream position this answer reflects",
                    "schema": {"type": "integer", "minimum": 0},
                }
            },
            "content": {"application/json": {"schema": _ref(refs, op.response, "serialization")}},
        },
        "400": _problem("invalid minPosition" + (", limit or cursor" if op.paged else "")),
        "401": _problem("no or an invalid bearer token"),
    }
    if op.pharmacy_refused:
        responses["403"] = _problem("the pharmacy role may not read cards or wallets")
    responses |= {
        "404": _problem(
            "no such object, or not the caller's (with minPosition: after the same wait)"
        ),
        "503": _problem("the read store is busy; retry"),
        "504": _problem(
            "the object exists but its read model did not reach minPosition in time; retry later",
            retry_after=True,
        ),
    }
    return _operation(op, parameters, responses)


def _statement_responses(op: ReadOperation, refs: Refs) -> dict[str, Any]:
    return {
        "200": {
            "description": "the claims, newest first (a statement spans many cards: it has no"
            " one position, so no X-Projection-Position; read a claim just posted by id with"
            " minPosition)",
            "content": {"application/json": {"schema": _ref(refs, op.response, "serialization")}},
        },
        "400": _problem(
            "a from, to, status, limit or cursor that is not what it must be (the code names"
            " it: invalid_from, invalid_to, invalid_status, invalid_limit, invalid_cursor), from"
            " after to (invalid_range), or a minPosition (invalid_min_position)"
        ),
        "401": _problem("no or an invalid bearer token"),
        "403": _problem(op.forbidden or "the caller may not read this statement"),
        "503": _problem("the read store is busy; retry"),
    }


def _operation(
    op: ReadOperation, parameters: list[dict[str, Any]], responses: dict[str, Any]
) -> dict[str, Any]:
    return {
        "tags": [op.tag],
        "operationId": op.operation_id,
        "summary": op.summary,
        "security": [{SECURITY_SCHEME: []}],
        "parameters": parameters,
        "responses": responses,
    }
