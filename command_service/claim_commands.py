"""Prescription claims and their reversal: the hot path.

A claim that asks to pay its copayment from the member's wallet appends to the card and the
wallet stream (the debit, or the declined attempt) in one atomic request, with an expected
version for each: the wallet's consent and its month's use are decided on the wallet's head.
"""

from __future__ import annotations

from uuid import UUID

from command_service.access import STAFF, acting_pharmacy, card_visible, require_role
from command_service.aggregates import MEDCARD, WALLET, Loaded
from command_service.execution import CommandContext, Executor, Outcome, Plan, StreamWrite
from command_service.ids import new_id
from domain.medcard.claims import adjudicate, reverse_claim
from domain.medcard.commands import ClaimItem, ClaimPrescription, ReverseClaim
from domain.wallet.model import WalletState, wallet_id_for
from infrastructure.auth.tokens import Principal, Role
from infrastructure.http.problems import Problem
from schemas.api.commands import ClaimBody, ReversalBody

_NO_WALLET: Loaded[WalletState] = Loaded(None, 0)


async def claim_prescription(
    executor: Executor, principal: Principal, card_id: UUID, body: ClaimBody, ctx: CommandContext
) -> Outcome:
    pharmacy_id = acting_pharmacy(principal)
    command = ClaimPrescription(
        claim_id=new_id(),
        prescription_id=body.prescription_id,
        pharmacy_id=pharmacy_id,
        total_amount=body.total_amount,
        at=ctx.at,
        beneficiary_id=body.beneficiary_id,
        items=tuple(
            ClaimItem(
                item_id=new_id(),
                drug_code=item.drug_code,
                drug_name=item.drug_name,
                quantity=item.quantity,
                unit_price=item.unit_price,
            )
            for item in body.items
        ),
        pay_copayment_from_wallet=body.pay_copayment_from_wallet,
    )
    aggregates = executor.aggregates

    async def plan() -> Plan:
        card = await aggregates.load(MEDCARD, card_id)
        wallet = _NO_WALLET
        wallet_id = None
        if command.pay_copayment_from_wallet and card.state is not None:
            wallet_id = wallet_id_for(card.state.user_id, card.state.currency)
            wallet = await aggregates.load(WALLET, wallet_id)
        decision = adjudicate(card.state, wallet.state, command)
        writes = [StreamWrite(MEDCARD, card_id, card, decision.card_events)]
        if wallet_id is not None and decision.wallet_events:
            writes.append(StreamWrite(WALLET, wallet_id, wallet, decision.wallet_events))
        return Plan(writes, decision.claim, card_id)

    # The wallet id depends on the card, so lock both only when a wallet may be touched.
    lock_ids = [card_id]
    if command.pay_copayment_from_wallet:
        cached = await aggregates.load(MEDCARD, card_id)
        if cached.state is not None:
            lock_ids.append(wallet_id_for(cached.state.user_id, cached.state.currency))
    ctx.status_code = 201
    return await executor.run(lock_ids, plan, ctx)


async def reverse_prescription_claim(
    executor: Executor,
    principal: Principal,
    card_id: UUID,
    claim_id: UUID,
    body: ReversalBody,
    ctx: CommandContext,
) -> Outcome:
    require_role(principal, STAFF | {Role.PHARMACY}, "reverse claims")
    aggregates = executor.aggregates
    command = ReverseClaim(claim_id=claim_id, at=ctx.at, reason=body.reason)

    async def plan() -> Plan:
        card = await aggregates.load(MEDCARD, card_id)
        state = card_visible(principal, card.state)
        record = state.claims.get(claim_id)
        if (
            record is not None
            and principal.role is Role.PHARMACY
            and record.adjudication.pharmacy_id != principal.pharmacy_id
        ):
            raise Problem(403, "forbidden", "a pharmacy may reverse only its own claims")
        wallet = _NO_WALLET
        wallet_id = record.adjudication.wallet_id if record is not None else None
        if wallet_id is not None:
            wallet = await aggregates.load(WALLET, wallet_id)
        decision = reverse_claim(state, wallet.state, command)
        writes = [StreamWrite(MEDCARD, card_id, card, decision.card_events)]
        if wallet_id is not None and decision.wallet_events:
            writes.append(StreamWrite(WALLET, wallet_id, wallet, decision.wallet_events))
        return Plan(writes, decision.reversal, card_id)

    lock_ids = [card_id]
    cached = await aggregates.load(MEDCARD, card_id)
    if cached.state is not None:
        record = cached.state.claims.get(claim_id)
        if record is not None and record.adjudication.wallet_id is not None:
            lock_ids.append(record.adjudication.wallet_id)
    return await executor.run(lock_ids, plan, ctx)
