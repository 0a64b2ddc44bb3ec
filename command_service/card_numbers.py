"""Card number -> card id, as the write side knows it.

A pharmacy's system holds the number printed on the card, not our card id. The event store
reserves every card number in the same transaction as the card's `medcard.issued`
(`reservations`, migration 0006; domain/uniqueness.py), so the look-up finds a card the
moment it exists, in any process, with none of a projection's lag. A number is never freed
nor given to another card, so a number found stays right for good and is cached (bounded,
least recently used first out); a miss is asked again next time, since the card may be
issued in between.
"""

from __future__ import annotations

from collections import OrderedDict
from uuid import UUID

from domain.events import MedCardIssued
from domain.identity import luhn_valid
from domain.uniqueness import CARD_NUMBER
from infrastructure.eventstore.port import EventStore

# ~200 bytes an entry: 65,536 numbers are ~13 MB, the cards of a busy process and more.
CARD_NUMBER_CACHE_ENTRIES = 65_536


class CardNumbers:
    def __init__(self, store: EventStore, capacity: int = CARD_NUMBER_CACHE_ENTRIES) -> None:
        self._store = store
        self._capacity = capacity
        self._cards: OrderedDict[str, UUID] = OrderedDict()
        self.lookups = 0  # asked of the store (for tests and metrics)

    async def card_id(self, number: str) -> UUID | None:
        found = self._cards.get(number)
        if found is not None:
            self._cards.move_to_end(number)
            return found
        if not luhn_valid(number):
            return None  # every number we issue is Luhn-valid: no need to ask
        self.lookups += 1
        holder = await self._store.reserved_by(CARD_NUMBER, number)
        if holder is None or holder.event_type != MedCardIssued.event_type:
            return None
        self._cards[number] = holder.aggregate_id
        if len(self._cards) > self._capacity:
            self._cards.popitem(last=False)
        return holder.aggregate_id
