"""Prescription claims and their reversal: the hot path.

A claim that asks to pay its copayment from the member's wallet appends to the card and the
wallet stream (the debit, or the declined attempt) in one atomic request, with an expected
version for each: the wallet's consent and its month's use are decided on the wallet's head.

A card's state keeps only its latest claims. What it cannot say is looked up in the event
store: a prescription's standing charge by its reservation (the same row that makes "one
charge per prescription" hold at the append, across processes), an older claim by its id
in the card's stream. A new charge needs no look-up: the append refuses a second hold.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from uuid import UUID

from command_service.access import STAFF, acting_pharmacy, card_visible, require_role
from command_service.aggregates import MEDCARD, WALLET, Loaded, decode
from command_service.execution import (
    CommandContext,
    Executor,
    KeyTaken,
    Outcome,
    Plan,
    StreamWrite,
)
from command_service.hold_commands import captured
from command_service.ids import new_id
from command_service.point_of_sale import by_card_number
from domain.errors import CommandRejected
from domain.events import ClaimAdjudicated, ClaimReversed
from domain.medcard.claims import adjudicate, reverse_claim
from domain.medcard.commands import ClaimItem, ClaimPrescription, ReverseClaim
from domain.medcard.state import (
    BEYOND_WINDOW,
    ClaimRecord,
    Looked,
    MedCardState,
    PriorChargeNeeded,
    claim_record,
)
from domain.uniqueness import prescription_key
from domain.wallet.model import WalletState, wallet_id_for
from infrastructure.auth.tokens import Principal, Role
from infrastructure.eventstore.port import EventStore, RecordedEvent
from infrastructure.http.problems import Problem
from schemas.api.commands import CardClaimBody, ClaimBody, ReversalBody

_NO_WALLET: Loaded[WalletState] = Loaded(None, 0)
# A prescription's hold clashing at the append again and again means it keeps changing
# hands under the command (charged, reversed, charged...): answer as for a version clash.
MAX_HOLD_CLASHES = 3
_CLAIM_EVENTS = (ClaimAdjudicated.event_type, ClaimReversed.event_type)


def _claim_command(body: ClaimBody, pharmacy_id: str, ctx: CommandContext) -> ClaimPrescription:
    return ClaimPrescription(
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
                days_supply=item.days_supply,
            )
            for item in body.items
        ),
        pay_copayment_from_wallet=body.pay_copayment_from_wallet,
        hold_id=body.hold_id,
    )


async def claim_prescription(
    executor: Executor, principal: Principal, card_id: UUID, body: ClaimBody, ctx: CommandContext
) -> Outcome:
    command = _claim_command(body, acting_pharmacy(principal), ctx)
    aggregates = executor.aggregates
    look_up_first = False  # the prescription's hold clashed: the state did not know of it

    async def plan() -> Plan:
        card = await aggregates.load(MEDCARD, card_id)
        wallet = _NO_WALLET
        wallet_id = None
        if command.pay_copayment_from_wallet and card.state is not None:
            wallet_id = wallet_id_for(card.state.user_id, card.state.currency)
            wallet = await aggregates.load(WALLET, wallet_id)
        prior: Looked[ClaimAdjudicated] | None = None
        recorded: RecordedEvent | None = None
        if look_up_first and card.state is not None:
            prior, recorded = await _standing_charge(executor.store, card_id, command)
        rules = executor.claim_rules
        try:
            decision = adjudicate(card.state, wallet.state, command, prior, rules)
        except PriorChargeNeeded:
            prior, recorded = await _standing_charge(executor.store, card_id, command)
            decision = adjudicate(card.state, wallet.state, command, prior, rules)
        # a hold it names is captured by an event after the claim's (hold_commands.py)
        capture = await captured(
            executor.store, card.state, command, decision.claim, decision.replayed
        )
        card_events = [*decision.card_events, *capture]
        writes = [StreamWrite(MEDCARD, card_id, card, card_events)]
        if wallet_id is not None and decision.wallet_events:
            writes.append(StreamWrite(WALLET, wallet_id, wallet, decision.wallet_events))
        return Plan(writes, decision.claim, card_id, recorded if decision.replayed else None)

    # The wallet id depends on the card, so lock both only when a wallet may be touched.
    lock_ids = [card_id]
    if command.pay_copayment_from_wallet:
        cached = await aggregates.load(MEDCARD, card_id)
        if cached.state is not None:
            lock_ids.append(wallet_id_for(cached.state.user_id, cached.state.currency))
    if body.mode == "quote":
        return await _quote(executor, lock_ids, plan)
    ctx.status_code = 201
    for _ in range(MAX_HOLD_CLASHES):
        try:
            return await executor.run(lock_ids, plan, ctx)
        except KeyTaken:
            look_up_first = True
    raise Problem(
        503,
        "concurrent_modification",
        "the prescription kept changing under this claim; retry it",
        headers={"Retry-After": "1"},
    )


async def _quote(
    executor: Executor, lock_ids: list[UUID], plan: Callable[[], Awaitable[Plan]]
) -> Outcome:
    """The claim decided exactly as it would be booked (the same plan, under the same locks,
    so no claim of this process slips between), and nothing appended: no claim, no wallet
    debit or declined attempt, no Idempotency-Key. A duplicate of a standing charge answers
    with that charge, as the claim would."""
    async with executor.aggregates.locked(lock_ids):
        try:
            decided = await plan()
        except CommandRejected:
            with executor.aggregates.from_store():  # as Executor.run: refused on the store's
                decided = await plan()
    card = decided.writes[0].loaded
    return Outcome(
        decided.result, decided.result_aggregate, card.version, 0, created=True, quote=True
    )


async def claim_by_card_number(
    executor: Executor, principal: Principal, body: CardClaimBody, ctx: CommandContext
) -> Outcome:
    """The card-id route's claim, for a point of sale that knows the card's printed number
    (and maybe the beneficiary's national id): the same adjudication, answer and replay."""
    card_id, body = await by_card_number(executor, principal, body)
    return await claim_prescription(executor, principal, card_id, body, ctx)


async def _standing_charge(
    store: EventStore, card_id: UUID, command: ClaimPrescription
) -> tuple[Looked[ClaimAdjudicated], RecordedEvent | None]:
    recorded = await store.reserved_by(*prescription_key(card_id, command.prescription_id))
    if recorded is None:
        return Looked(None), None
    event = decode(recorded)
    if not isinstance(event, ClaimAdjudicated):
        raise TypeError(f"a prescription held by {event.event_type}")
    return Looked(event), recorded


async def _claim(store: EventStore, card: MedCardState, claim_id: UUID) -> ClaimRecord | None:
    """The claim from the card's window, or from its stream when it is older than that."""
    found = card.claim(claim_id)
    if found is not BEYOND_WINDOW:
        return found
    events = await store.find_in_stream(card.card_id, _CLAIM_EVENTS, "claim_id", str(claim_id))
    return claim_record(decode(e) for e in events)


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
        record = await _claim(executor.store, state, claim_id)
        if (
            record is not None
            and principal.role is Role.PHARMACY
            and record.pharmacy_id != principal.pharmacy_id
        ):
            raise Problem(403, "forbidden", "a pharmacy may reverse only its own claims")
        wallet = _NO_WALLET
        wallet_id = record.wallet_id if record is not None else None
        if wallet_id is not None:
            wallet = await aggregates.load(WALLET, wallet_id)
        decision = reverse_claim(state, wallet.state, command, Looked(record))
        writes = [StreamWrite(MEDCARD, card_id, card, decision.card_events)]
        if wallet_id is not None and decision.wallet_events:
            writes.append(StreamWrite(WALLET, wallet_id, wallet, decision.wallet_events))
        return Plan(writes, decision.reversal, card_id)

    lock_ids = [card_id]
    cached = await aggregates.load(MEDCARD, card_id)
    if cached.state is not None:
        record = await _claim(executor.store, cached.state, claim_id)
        if record is not None and record.wallet_id is not None:
            lock_ids.append(record.wallet_id)
    return await executor.run(lock_ids, plan, ctx)
