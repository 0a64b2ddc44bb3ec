"""MedCard lifecycle and beneficiary commands."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from uuid import UUID

from command_service.access import STAFF, card_visible, require_role
from command_service.aggregates import MEDCARD
from command_service.execution import (
    CommandContext,
    Executor,
    KeyTaken,
    Outcome,
    Plan,
    StreamWrite,
)
from command_service.ids import new_id
from domain.errors import CommandRejected
from domain.medcard.commands import (
    ActivateCard,
    AddBeneficiary,
    CancelCard,
    ExpireCard,
    IssueCard,
    MedCardCommand,
    PersonDetails,
    ReactivateCard,
    RemoveBeneficiary,
    RenewCard,
    SuspendCard,
)
from domain.medcard.decider import decide
from infrastructure.auth.tokens import Principal, Role
from infrastructure.http.problems import Problem
from schemas.api.commands import AddBeneficiaryBody, IssueCardBody, Person, StatusChangeBody

# A drawn number held by another card is drawn again. With 10^11 numbers per prefix a
# second clash in a row means the generator is broken, not unlucky.
MAX_NUMBER_DRAWS = 5
MEMBER_MAY = frozenset({"suspend"})
LIFECYCLE: dict[str, Callable[[CommandContext, StatusChangeBody], MedCardCommand]] = {
    "activate": lambda ctx, body: ActivateCard(at=ctx.at),
    "suspend": lambda ctx, body: SuspendCard(at=ctx.at, reason=body.reason),
    "reactivate": lambda ctx, body: ReactivateCard(at=ctx.at),
    "cancel": lambda ctx, body: CancelCard(at=ctx.at, reason=body.reason),
    "renew": lambda ctx, body: RenewCard(at=ctx.at),
    "expire": lambda ctx, body: ExpireCard(at=ctx.at),
}


def person(body: Person) -> PersonDetails:
    return PersonDetails(
        relationship=body.relationship,
        national_id=body.national_id,
        name=body.name,
        date_of_birth=body.date_of_birth,
        phone_number=body.phone_number,
    )


async def issue_card(
    executor: Executor, principal: Principal, body: IssueCardBody, ctx: CommandContext
) -> Outcome:
    require_role(principal, STAFF, "issue cards")
    ctx.status_code = 201
    card_id = new_id()
    command = IssueCard(
        card_id=card_id,
        card_number=executor.card_numbers(),
        user_id=body.user_id,
        card_type=body.card_type.lower(),
        at=ctx.at,
        may_override_terms=principal.role is Role.ADMIN,
        monthly_limit=body.monthly_limit,
        copay_percent=body.copayment_percentage,
        primary_holder=person(body.primary_holder) if body.primary_holder else None,
        primary_beneficiary_id=new_id() if body.primary_holder else None,
        insurance_provider=body.insurance_provider,
        policy_number=body.policy_number,
        expiry_date=body.expiry_date,
        activate=body.status == "ACTIVE",
    )
    for _ in range(MAX_NUMBER_DRAWS):
        try:
            return await _on_card(executor, card_id, command, ctx, exists=False)
        except KeyTaken:
            command = replace(command, card_number=executor.card_numbers())
    raise Problem(
        503,
        "card_number_unavailable",
        "no free card number was drawn; retry the request",
        headers={"Retry-After": "1"},
    )


async def change_status(
    executor: Executor,
    principal: Principal,
    card_id: UUID,
    action: str,
    body: StatusChangeBody,
    ctx: CommandContext,
) -> Outcome:
    if not (principal.role is Role.MEMBER and action in MEMBER_MAY):
        require_role(principal, STAFF, f"{action} cards")
    command = LIFECYCLE[action](ctx, body)
    return await _on_card(executor, card_id, command, ctx, principal=principal)


async def add_beneficiary(
    executor: Executor,
    principal: Principal,
    card_id: UUID,
    body: AddBeneficiaryBody,
    ctx: CommandContext,
) -> Outcome:
    require_role(principal, STAFF | {Role.MEMBER}, "change beneficiaries")
    ctx.status_code = 201
    command = AddBeneficiary(beneficiary_id=new_id(), person=person(body), at=ctx.at)
    return await _on_card(executor, card_id, command, ctx, principal=principal)


async def remove_beneficiary(
    executor: Executor,
    principal: Principal,
    card_id: UUID,
    beneficiary_id: UUID,
    body: None,
    ctx: CommandContext,
) -> Outcome:
    require_role(principal, STAFF | {Role.MEMBER}, "change beneficiaries")
    command = RemoveBeneficiary(beneficiary_id=beneficiary_id, at=ctx.at)
    return await _on_card(executor, card_id, command, ctx, principal=principal)


async def _on_card(
    executor: Executor,
    card_id: UUID,
    command: MedCardCommand,
    ctx: CommandContext,
    *,
    exists: bool = True,
    principal: Principal | None = None,
) -> Outcome:
    async def plan() -> Plan:
        loaded = await executor.aggregates.load(MEDCARD, card_id)
        if exists and principal is not None:
            card_visible(principal, loaded.state)
        events = decide(loaded.state, command)
        if not events:
            raise CommandRejected("nothing_to_do", "the command changes nothing")
        return Plan([StreamWrite(MEDCARD, card_id, loaded, events)], events[-1], card_id)

    return await executor.run([card_id], plan, ctx)
