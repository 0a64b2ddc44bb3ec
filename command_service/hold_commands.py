"""Benefit holds (domain/medcard/holds.py): placing one by card id or printed number,
voiding one, and what a claim naming one appends (its capture).

A hold no longer in the card's state (captured, voided, or expired and pruned) is looked up
in the card's stream by its id, only to answer why it is not open; an open hold is always
in the state, so no decision about the limit needs the store.
"""

from __future__ import annotations

from uuid import UUID

from command_service.access import STAFF, acting_pharmacy, card_visible, require_role
from command_service.aggregates import MEDCARD, decode
from command_service.execution import CommandContext, Executor, Outcome, Plan, StreamWrite
from command_service.ids import new_id
from command_service.point_of_sale import by_card_number
from domain.events import ClaimAdjudicated, DomainEvent
from domain.medcard.commands import ClaimPrescription
from domain.medcard.hold_records import HOLD_EVENTS
from domain.medcard.holds import (
    HoldHistory,
    HoldNeeded,
    PlaceHold,
    VoidHold,
    capture,
    hold_history,
    place_hold,
    void_hold,
)
from domain.medcard.state import Looked, MedCardState
from infrastructure.auth.tokens import Principal, Role
from infrastructure.eventstore.port import EventStore
from schemas.api.commands import CardHoldBody, HoldBody, VoidHoldBody

_HOLD_EVENT_TYPES = tuple(cls.event_type for cls in HOLD_EVENTS)


async def place_hold_on_card(
    executor: Executor, principal: Principal, card_id: UUID, body: HoldBody, ctx: CommandContext
) -> Outcome:
    command = PlaceHold(
        hold_id=new_id(),
        prescription_id=body.prescription_id,
        pharmacy_id=acting_pharmacy(principal),  # from the token, as a claim's
        amount=body.amount,
        expires_in_hours=body.expires_in_hours or executor.hold_ttl_hours,
        at=ctx.at,
        beneficiary_id=body.beneficiary_id,
    )

    async def plan() -> Plan:
        card = await executor.aggregates.load(MEDCARD, card_id)
        placed = place_hold(card.state, command)
        return Plan([StreamWrite(MEDCARD, card_id, card, [placed])], placed, card_id)

    ctx.status_code = 201
    return await executor.run([card_id], plan, ctx)


async def place_hold_by_card_number(
    executor: Executor, principal: Principal, body: CardHoldBody, ctx: CommandContext
) -> Outcome:
    """The card-id route's hold, for a point of sale that knows the card's printed number."""
    card_id, body = await by_card_number(executor, principal, body)
    return await place_hold_on_card(executor, principal, card_id, body, ctx)


async def void(
    executor: Executor,
    principal: Principal,
    card_id: UUID,
    hold_id: UUID,
    body: VoidHoldBody,
    ctx: CommandContext,
) -> Outcome:
    require_role(principal, STAFF | {Role.PHARMACY}, "void holds")
    # a pharmacy voids as itself (a token without its pharmacy is refused); staff any hold
    pharmacy = acting_pharmacy(principal) if principal.role is Role.PHARMACY else None
    command = VoidHold(hold_id=hold_id, at=ctx.at, pharmacy_id=pharmacy, reason=body.reason)

    async def plan() -> Plan:
        card = await executor.aggregates.load(MEDCARD, card_id)
        state = card_visible(principal, card.state)
        try:
            voided = void_hold(state, command)
        except HoldNeeded:
            history = await _history(executor.store, state, hold_id, command)
            voided = void_hold(state, command, history)
        return Plan([StreamWrite(MEDCARD, card_id, card, [voided])], voided, card_id)

    return await executor.run([card_id], plan, ctx)


async def captured(
    store: EventStore,
    card: MedCardState | None,
    command: ClaimPrescription,
    claim: ClaimAdjudicated,
    replayed: bool,
) -> list[DomainEvent]:
    """The events a newly decided claim naming a hold appends after itself (its capture)."""
    if replayed or command.hold_id is None:
        return []
    try:
        return capture(card, command, claim)
    except HoldNeeded:
        assert card is not None  # capture refuses a missing card first
        history = await _history(store, card, command.hold_id, command)
        return capture(card, command, claim, history)


async def _history(
    store: EventStore, card: MedCardState, hold_id: UUID, command: VoidHold | ClaimPrescription
) -> Looked[HoldHistory]:
    events = await store.find_in_stream(card.card_id, _HOLD_EVENT_TYPES, "hold_id", str(hold_id))
    return Looked(hold_history([decode(e) for e in events], command.at))
