"""Keys that must be unique across all streams, and the events that take and free them.

An aggregate's state cannot decide these rules alone: a card number or a gateway reference
is unique across every card or wallet, and a card's state keeps only its recent claims
(domain/medcard/state.py). So the event that takes a key names it, and the event store
reserves it in the same transaction as the event (a clash fails that append alone).
"""

from __future__ import annotations

from uuid import UUID

from domain.events import (
    ClaimAdjudicated,
    ClaimReversed,
    DomainEvent,
    MedCardIssued,
    WalletToppedUp,
)
from domain.wallet.model import pair_key

CARD_NUMBER = "card_number"  # one card per number, ever
GATEWAY_REFERENCE = "gateway_reference"  # one wallet credited per (gateway, reference), ever
PRESCRIPTION = "prescription"  # one standing charge per (card, prescription id)

UniqueKey = tuple[str, str]  # (scope, key)


def prescription_key(card_id: UUID, prescription_id: str) -> UniqueKey:
    # The card id's 32 hex digits, then the prescription id: a fixed-length prefix needs no
    # separator (and `hex` costs a fraction of str(uuid) on the claim path).
    return PRESCRIPTION, card_id.hex + prescription_id


def gateway_reference_key(gateway: str, reference: str) -> UniqueKey:
    return GATEWAY_REFERENCE, pair_key(gateway, reference)


def keys_taken(aggregate_id: UUID, event: DomainEvent) -> tuple[UniqueKey, ...]:
    match event:
        case ClaimAdjudicated():
            # A rejection charges nothing, so it does not hold the prescription.
            if event.decision == "rejected":
                return ()
            return (prescription_key(aggregate_id, event.prescription_id),)
        case WalletToppedUp():
            return (gateway_reference_key(event.gateway, event.gateway_reference),)
        case MedCardIssued():
            return ((CARD_NUMBER, event.card_number),)
    return ()


def keys_freed(aggregate_id: UUID, event: DomainEvent) -> tuple[UniqueKey, ...]:
    if isinstance(event, ClaimReversed):
        return (prescription_key(aggregate_id, event.prescription_id),)
    return ()
