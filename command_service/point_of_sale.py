"""What a pharmacy's point of sale knows: the card's printed number and maybe the person's
national id. Resolving them to our ids (for the claim by number), and the eligibility check.

Eligibility is a query over POST (the number stays out of URLs that logs keep): the claim's
own rule (domain/medcard/eligibility.py) on the write side's state, with no side effect, so
it needs no Idempotency-Key and stores nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import TypeVar
from uuid import UUID

import orjson
from starlette.requests import Request
from starlette.responses import Response

from command_service.access import STAFF, acting_pharmacy, require_role
from command_service.aggregates import MEDCARD
from command_service.execution import Executor
from command_service.http_endpoints import WriteSide, authenticate, parse_body
from domain.errors import CommandRejected
from domain.medcard.eligibility import Eligibility, eligibility
from domain.medcard.state import MedCardState
from infrastructure.auth.tokens import Principal, Role
from infrastructure.http.problems import Problem
from schemas.api.commands import CardClaimBody, CardHoldBody, EligibilityBody
from schemas.api.point_of_sale import EligibilityAnswer

POINT_OF_SALE = STAFF | {Role.PHARMACY}
ByNumber = TypeVar("ByNumber", CardClaimBody, CardHoldBody)


async def card_by_number(executor: Executor, number: str) -> UUID:
    card_id = await executor.card_directory.card_id(number)
    if card_id is None:
        raise Problem(404, "card_not_found", "no card has this number")
    return card_id


def one_beneficiary(beneficiary_id: UUID | None, national_id: str | None) -> None:
    if beneficiary_id is not None and national_id is not None:
        raise Problem(
            422,
            "conflicting_beneficiary",
            "name the beneficiary by beneficiaryId or by beneficiaryNationalId, not both",
        )


async def beneficiary_by_national_id(executor: Executor, card_id: UUID, national_id: str) -> UUID:
    card = await executor.aggregates.load(MEDCARD, card_id)
    found = card.state.beneficiary_with_national_id(national_id) if card.state else None
    if found is None:
        # Refused only on the store's state: another process may have added the person.
        with executor.aggregates.from_store():
            card = await executor.aggregates.load(MEDCARD, card_id)
        found = card.state.beneficiary_with_national_id(national_id) if card.state else None
    if found is None:
        raise CommandRejected("beneficiary_not_on_card", "nobody on this card has that national id")
    return found


async def by_card_number(
    executor: Executor, principal: Principal, body: ByNumber
) -> tuple[UUID, ByNumber]:
    """The card a body naming it by its printed number means, and the body with the
    beneficiary its national id names (if it names one) as beneficiaryId: what the card-id
    routes take. The role is checked first: a refused caller learns nothing of numbers."""
    acting_pharmacy(principal)
    one_beneficiary(body.beneficiary_id, body.beneficiary_national_id)
    card_id = await card_by_number(executor, body.card_number)
    if body.beneficiary_national_id is not None:
        beneficiary = await beneficiary_by_national_id(
            executor, card_id, body.beneficiary_national_id
        )
        body = body.model_copy(update={"beneficiary_id": beneficiary})
    return card_id, body


async def check_eligibility(request: Request) -> Response:
    side: WriteSide = request.app.state.write_side
    principal = authenticate(side, request)
    require_role(principal, POINT_OF_SALE, "check eligibility")
    body, _ = await parse_body(request, EligibilityBody)
    one_beneficiary(body.beneficiary_id, body.beneficiary_national_id)
    executor = side.executor
    card_id = await card_by_number(executor, body.card_number)
    beneficiary = body.beneficiary_id
    try:
        if body.beneficiary_national_id is not None:
            beneficiary = await beneficiary_by_national_id(
                executor, card_id, body.beneficiary_national_id
            )
    except CommandRejected as exc:
        raise Problem(int(exc.kind), exc.code, exc.detail) from exc
    at = datetime.now(UTC)
    loaded = await executor.aggregates.load(MEDCARD, card_id)
    state: MedCardState | None = loaded.state
    checked = eligibility(state, beneficiary, at) if state is not None else None
    if checked is None or checked.refusal is not None:
        # "Not covered" only on the store's state, as a claim's refusal (Executor.run).
        with executor.aggregates.from_store():
            loaded = await executor.aggregates.load(MEDCARD, card_id)
        if loaded.state is None:
            raise Problem(404, "card_not_found", "no card has this number")
        checked = eligibility(loaded.state, beneficiary, at)
    answer = _answer(checked, loaded.version)
    return Response(
        orjson.dumps(answer.model_dump(mode="json", by_alias=True)),
        media_type="application/json",
    )


def _answer(checked: Eligibility, version: int) -> EligibilityAnswer:
    """Validated against its model: the document's schema is made from it."""
    return EligibilityAnswer.model_validate(
        {
            "medcardId": checked.card_id,
            "beneficiaryId": checked.beneficiary_id,
            "covered": checked.refusal is None,
            "reason": checked.refusal,
            "copaymentPercentage": _money(checked.copay_percent),
            "month": checked.month,
            "monthlyLimit": _money(checked.monthly_limit),
            "monthSpent": _money(checked.month_spent),
            "heldAmount": _money(checked.held),
            "remainingMonthlyLimit": _money(checked.remaining),
            "openHolds": [
                {
                    "holdId": h.hold_id,
                    "pharmacyId": h.pharmacy_id,
                    "amount": _money(h.amount),
                    "expiresAt": h.expires_at,
                }
                for h in checked.open_holds
            ],
            "beneficiaries": [
                {
                    "id": b.beneficiary_id,
                    "relationship": b.relationship,
                    "name": b.masked_name,
                    "primary": b.primary,
                }
                for b in checked.beneficiaries
            ],
            "checkedAt": checked.at,
            "version": version,
        }
    )


def _money(amount: Decimal) -> str:
    return f"{amount:.2f}"
