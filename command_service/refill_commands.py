"""Refill overrides: ops or an admin lets a refill through before it is due
(domain/medcard/refills.py)."""

from __future__ import annotations

from uuid import UUID

from command_service.access import STAFF, require_role
from command_service.aggregates import MEDCARD
from command_service.execution import CommandContext, Executor, Outcome, Plan, StreamWrite
from command_service.ids import new_id
from domain.medcard.refills import GrantRefillOverride, grant_override
from infrastructure.auth.tokens import Principal
from schemas.api.commands import RefillOverrideBody


async def grant_refill_override(
    executor: Executor,
    principal: Principal,
    card_id: UUID,
    body: RefillOverrideBody,
    ctx: CommandContext,
) -> Outcome:
    require_role(principal, STAFF, "grant refill overrides")
    ctx.status_code = 201
    command = GrantRefillOverride(
        override_id=new_id(),
        drug_code=body.drug_code,
        reason=body.reason,
        granted_by=f"{principal.role.value}:{principal.subject}",
        at=ctx.at,
        beneficiary_id=body.beneficiary_id,
        valid_until=body.valid_until,
    )

    async def plan() -> Plan:
        loaded = await executor.aggregates.load(MEDCARD, card_id)
        event = grant_override(loaded.state, command)
        return Plan([StreamWrite(MEDCARD, card_id, loaded, [event])], event, card_id)

    return await executor.run([card_id], plan, ctx)
