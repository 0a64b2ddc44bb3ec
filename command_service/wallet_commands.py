"""Wallet commands: open, top up (idempotent by gateway reference), debit, never overdrawn,
refund a debit; the member's consent to claims' copayments from the wallet.

A gateway reference credits one wallet, ever: the top-up reserves it at the append
(domain/uniqueness.py), so two wallets cannot both be credited by it, in any process.
"""

from __future__ import annotations

from uuid import UUID

from command_service.access import STAFF, require_role, wallet_visible
from command_service.aggregates import WALLET
from command_service.execution import (
    CommandContext,
    Executor,
    KeyTaken,
    Outcome,
    Plan,
    StreamWrite,
)
from command_service.ids import new_id
from domain.errors import CommandRejected, Kind
from domain.wallet.model import (
    Debit,
    OpenWallet,
    Refund,
    SetCopayConsent,
    TopUp,
    WalletCommand,
    decide,
    wallet_id_for,
)
from infrastructure.auth.tokens import Principal, Role
from infrastructure.http.problems import Problem
from schemas.api.commands import (
    CopayConsentBody,
    DebitBody,
    OpenWalletBody,
    RefundBody,
    TopUpBody,
)

# Not ops: the consent lets pharmacies take the member's money, so it is the member's own act
# (admin for support cases; the event's metadata names who set it).
CONSENT_SETTERS = frozenset({Role.MEMBER, Role.ADMIN})
# Staff only, not the member who may debit: a refund moves money from the debit's counterparty
# back into the wallet, which is the counterparty's decision (made through support), not the
# payer's. Pharmacies neither debit nor refund wallets.
REFUNDERS = STAFF


async def open_wallet(
    executor: Executor, principal: Principal, body: OpenWalletBody, ctx: CommandContext
) -> Outcome:
    require_role(principal, STAFF | {Role.MEMBER}, "open wallets")
    if principal.role is Role.MEMBER and body.user_id != principal.subject:
        raise Problem(403, "forbidden", "a member may open a wallet only for themselves")
    wallet_id = wallet_id_for(body.user_id)
    command = OpenWallet(wallet_id=wallet_id, owner_user_id=body.user_id, at=ctx.at)
    ctx.status_code = 201
    return await _on_wallet(executor, principal, wallet_id, command, ctx, exists=False)


async def top_up(
    executor: Executor, principal: Principal, wallet_id: UUID, body: TopUpBody, ctx: CommandContext
) -> Outcome:
    require_role(principal, STAFF, "top up wallets")
    command = TopUp(
        topup_id=new_id(),
        gateway=body.gateway.lower(),
        gateway_reference=body.gateway_reference,
        amount=body.amount,
        at=ctx.at,
        paid_at=body.paid_at,
    )
    ctx.status_code = 201
    return await credit(executor, principal, wallet_id, command, ctx)


async def credit(
    executor: Executor,
    principal: Principal | None,
    wallet_id: UUID,
    command: TopUp,
    ctx: CommandContext,
) -> Outcome:
    """Credits the wallet with the top-up, or answers with the one that reference already
    made; `principal` None: the gateway itself, whose callback's signature was verified."""
    for _ in range(2):
        try:
            return await _on_wallet(executor, principal, wallet_id, command, ctx)
        except KeyTaken as taken:
            holder = await executor.store.reserved_by(taken.scope, taken.key)
            if holder is not None and holder.aggregate_id != wallet_id:
                raise CommandRejected(
                    "gateway_reference_taken",
                    "this gateway reference has already credited another wallet",
                    Kind.CONFLICT,
                ) from taken
            # This wallet holds it: another process credited it after this one loaded the
            # wallet. Decided again on the stream as stored, it replays.
    raise Problem(
        503,
        "concurrent_modification",
        "the wallet kept changing under this top-up; retry it",
        headers={"Retry-After": "1"},
    )


async def debit(
    executor: Executor, principal: Principal, wallet_id: UUID, body: DebitBody, ctx: CommandContext
) -> Outcome:
    require_role(principal, STAFF | {Role.MEMBER}, "debit wallets")
    command = Debit(
        debit_id=new_id(),
        amount=body.amount,
        purpose=body.purpose,
        reference=body.reference,
        at=ctx.at,
    )
    ctx.status_code = 201
    return await _on_wallet(executor, principal, wallet_id, command, ctx)


async def refund_debit(
    executor: Executor,
    principal: Principal,
    wallet_id: UUID,
    debit_id: UUID,
    body: RefundBody,
    ctx: CommandContext,
) -> Outcome:
    require_role(principal, REFUNDERS, "refund wallet debits")
    command = Refund(
        refund_id=new_id(), debit_id=debit_id, at=ctx.at, amount=body.amount, reason=body.reason
    )
    ctx.status_code = 201
    return await _on_wallet(executor, principal, wallet_id, command, ctx)


async def set_copay_consent(
    executor: Executor,
    principal: Principal,
    wallet_id: UUID,
    body: CopayConsentBody,
    ctx: CommandContext,
) -> Outcome:
    require_role(principal, CONSENT_SETTERS, "set a wallet's copayment consent")
    command = SetCopayConsent(
        per_claim_limit=body.per_claim_limit, monthly_limit=body.monthly_limit, at=ctx.at
    )
    return await _on_wallet(executor, principal, wallet_id, command, ctx)


async def _on_wallet(
    executor: Executor,
    principal: Principal | None,
    wallet_id: UUID,
    command: WalletCommand,
    ctx: CommandContext,
    *,
    exists: bool = True,
) -> Outcome:
    async def plan() -> Plan:
        loaded = await executor.aggregates.load(WALLET, wallet_id)
        if exists and principal is not None:
            wallet_visible(principal, loaded.state)
        decision = decide(loaded.state, command)
        return Plan(
            [StreamWrite(WALLET, wallet_id, loaded, decision.events)], decision.result, wallet_id
        )

    return await executor.run([wallet_id], plan, ctx)
