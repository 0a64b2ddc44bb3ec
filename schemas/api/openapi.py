"""The public HTTP API as data, and the OpenAPI 3.1 document made from it.

Both services route with plain Starlette routes (docs/design.md §3), which FastAPI's OpenAPI
generator cannot see, so the operations are declared here instead: the command service
documents WRITES, the gateway (which answers /docs at the public URL) READS + WRITES.
Tests hold each service's route table equal to its declarations, so they cannot drift.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from schemas.api.commands import (
    AddBeneficiaryBody,
    ClaimBody,
    CopayConsentBody,
    DebitBody,
    IssueCardBody,
    OpenWalletBody,
    ReversalBody,
    StatusChangeBody,
    TopUpBody,
)
from schemas.api.reads import (
    BeneficiaryList,
    Card,
    ClaimDetails,
    ClaimPage,
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
        "position": {"type": "integer", "description": "the event's position in the store"},
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


Operation = WriteOperation | ReadOperation


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
)

_TAGS = [
    {"name": "medcards", "description": "MedCards, their lifecycle and beneficiaries"},
    {"name": "claims", "description": "Prescription claims"},
    {"name": "wallets", "description": "Member wallets"},
]


def build_openapi(
    operations: Iterable[Operation], *, title: str, version: str, description: str = ""
) -> dict[str, Any]:
    """An OpenAPI 3.1 document for `operations`, its schemas under components."""
    ops = list(operations)
    models: list[tuple[type[BaseModel], JsonSchemaMode]] = []
    for op in ops:
        if isinstance(op, WriteOperation) and op.body is not None:
            models.append((op.body, "validation"))
        elif isinstance(op, ReadOperation):
            models.append((op.response, "serialization"))
    refs, defs = models_json_schema(models, by_alias=True, ref_template=_REF)
    schemas: dict[str, Any] = dict(defs.get("$defs", {}))
    schemas["Problem"] = PROBLEM_SCHEMA
    if any(isinstance(op, WriteOperation) for op in ops):
        schemas["CommandAnswer"] = COMMAND_ANSWER_SCHEMA

    paths: dict[str, dict[str, Any]] = {}
    for op in ops:
        operation = _write(op, refs) if isinstance(op, WriteOperation) else _read(op, refs)
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


def _problem(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": _REF.format(model="Problem")}}},
    }


def _path_parameters(path: str) -> list[dict[str, Any]]:
    names = [part[1:-1] for part in path.split("/") if part.startswith("{")]
    return [
        {
            "name": name,
            "in": "path",
            "required": True,
            "schema": {"type": "string", "format": "uuid"},
        }
        for name in names
    ]


def _ref(refs: Refs, model: type[BaseModel], mode: JsonSchemaMode) -> dict[str, Any]:
    return refs[(model, mode)]


def _write(op: WriteOperation, refs: Refs) -> dict[str, Any]:
    answer = {
        "content": {"application/json": {"schema": {"$ref": _REF.format(model="CommandAnswer")}}}
    }
    responses: dict[str, Any] = {}
    if op.created:
        responses["201"] = {
            "description": f"done: made from the {op.answers} event (a request repeated with"
            " its Idempotency-Key gets the same answer again, with Idempotent-Replayed: true)"
        } | answer
        responses["200"] = {
            "description": "already done by an earlier command (nothing new was written);"
            " header Idempotent-Replayed: true"
        } | answer
    else:
        responses["200"] = {
            "description": f"done: made from the {op.answers} event (or an identical earlier"
            " request's answer, replayed, with header Idempotent-Replayed: true)"
        } | answer
    responses |= {
        "400": _problem("malformed JSON or Idempotency-Key"),
        "401": _problem("no or an invalid bearer token"),
        "403": _problem("the caller's role may not do this"),
        "404": _problem("the card, beneficiary, claim or wallet does not exist (for this caller)"),
        "409": _problem("conflicts with the current state, or the Idempotency-Key is in use"),
        "422": _problem(
            "an invalid body, refused by a business rule, or the Idempotency-Key was used"
            " with another request"
        ),
    }
    if op.body is not None:
        responses["413"] = _problem("the body is over 256 KiB")
        responses["415"] = _problem("the body is not application/json")
    operation: dict[str, Any] = {
        "tags": [op.tag],
        "operationId": op.operation_id,
        "summary": op.summary,
        "security": [{SECURITY_SCHEME: []}],
        "parameters": [
            *_path_parameters(op.path),
            {
                "name": "Idempotency-Key",
                "in": "header",
                "required": False,
                "description": (
                    "a repeat by the same caller (role, sub, pharmacy) with the same key and"
                    " body gets the first answer (kept at least 7 days by default)"
                ),
                "schema": {"type": "string", "minLength": 1, "maxLength": 255},
            },
        ],
        "responses": dict(sorted(responses.items())),
    }
    if op.body is not None:
        operation["requestBody"] = {
            "required": op.body_required,
            "content": {"application/json": {"schema": _ref(refs, op.body, "validation")}},
        }
    return operation


def _read(op: ReadOperation, refs: Refs) -> dict[str, Any]:
    fresh = (
        "wait until the read model reflects this position of the same card's or wallet's stream"
        " (the `position` a write answered); 504 if it does not in time"
    )
    parameters = [
        *_path_parameters(op.path),
        {
            "name": "minPosition",
            "in": "query",
            "required": False,
            "description": fresh,
            "schema": {"type": "integer", "minimum": 0},
        },
        {
            "name": "X-Min-Position",
            "in": "header",
            "required": False,
            "description": "as minPosition (the larger wins if both are sent)",
            "schema": {"type": "integer", "minimum": 0},
        },
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
                "description": "the previous page's nextCursor",
                "schema": {"type": "string"},
            },
        ]
    responses: dict[str, Any] = {
        "200": {
            "description": "the read model's answer",
            "headers": {
                POSITION_HEADER: {
                    "description": "the stream position this answer reflects",
                    "schema": {"type": "integer"},
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
        "404": _problem("no such object, or not the caller's"),
        "503": _problem("the read store is busy; retry"),
        "504": _problem("the read model did not reach minPosition in time; retry later"),
    }
    return {
        "tags": [op.tag],
        "operationId": op.operation_id,
        "summary": op.summary,
        "security": [{SECURITY_SCHEME: []}],
        "parameters": parameters,
        "responses": responses,
    }
