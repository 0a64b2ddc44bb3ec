"""Busy event streams for the balance projection, built in memory: cards with many claims over
two benefit months, reversals (also of the previous month's claims), lifecycle changes the
projection skips, and wallets with top-ups, debits and refunds, interleaved across aggregates
the way a Kafka topic holds them (each aggregate's events in version order).

The values follow the aggregates' own arithmetic (each event carries the absolute total after
it), so the projected tables have one right answer for any cut of the stream into batches."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

from infrastructure.eventstore.port import RecordedEvent

START = datetime(2026, 3, 30, 8, 0, tzinfo=UTC)
LIFECYCLE = ("medcard.suspended", "medcard.reactivated", "medcard.beneficiary_added")
CENT = Decimal("0.01")


@dataclass
class _Card:
    id: UUID
    version: int = 0
    spent: dict[str, Decimal] = field(default_factory=dict)
    claims: list[tuple[UUID, str, Decimal]] = field(default_factory=list)  # reversible


@dataclass
class _Wallet:
    id: UUID
    version: int = 0
    balance: Decimal = Decimal("0.00")


class StreamBuilder:
    def __init__(self, seed: int, month_turn: int) -> None:
        self.rng = random.Random(seed)
        self.month_turn = month_turn  # the card version from which claims fall in April
        self.events: list[RecordedEvent] = []

    def _emit(self, kind: str, aggregate: _Card | _Wallet, event_type: str, **data: Any) -> None:
        aggregate.version += 1
        position = len(self.events) + 1
        self.events.append(
            RecordedEvent(
                position=position,
                event_id=uuid4(),
                aggregate_id=aggregate.id,
                aggregate_type=kind,
                event_type=event_type,
                schema_version=1,
                version=aggregate.version,
                data=data,
                metadata={},
                timestamp=START + timedelta(milliseconds=37 * position),
            )
        )

    def card_step(self, card: _Card) -> None:
        if card.version == 0:
            self._emit("medcard", card, "medcard.issued", holder="stream")
            return
        roll = self.rng.random()
        if roll < 0.1:
            self._emit("medcard", card, self.rng.choice(LIFECYCLE))
        elif roll < 0.25 and card.claims:
            claim_id, month, amount = card.claims.pop(self.rng.randrange(len(card.claims)))
            card.spent[month] -= amount
            self._emit(
                "medcard", card, "medcard.claim_reversed", claim_id=str(claim_id), month=month,
                restored_amount=str(amount), month_spent_after=str(card.spent[month]),
            )  # fmt: skip
        else:
            month = "2026-03" if card.version < self.month_turn else "2026-04"
            amount = (Decimal(self.rng.randint(100, 40_000)) / 100).quantize(CENT)
            claim_id = uuid4()
            card.spent[month] = card.spent.get(month, Decimal("0.00")) + amount
            card.claims.append((claim_id, month, amount))
            self._emit(
                "medcard", card, "medcard.claim_adjudicated", claim_id=str(claim_id),
                month=month, decision=self.rng.choice(("approved", "partial")),
                covered_amount=str(amount), month_spent_after=str(card.spent[month]),
            )  # fmt: skip

    def wallet_step(self, wallet: _Wallet) -> None:
        if wallet.version == 0:
            self._emit("wallet", wallet, "wallet.opened", currency="EGP")
            return
        amount = (Decimal(self.rng.randint(100, 20_000)) / 100).quantize(CENT)
        kind = self.rng.choice(("wallet.topped_up", "wallet.debited", "wallet.refunded"))
        if kind == "wallet.debited":
            amount = min(amount, wallet.balance)
            wallet.balance -= amount
        else:
            wallet.balance += amount
        self._emit("wallet", wallet, kind, amount=str(amount), balance_after=str(wallet.balance))


def busy_stream(
    seed: int,
    cards: int,
    wallets: int,
    events_per_card: int,
    events_per_wallet: int,
    month_turn: int = 20,
) -> list[RecordedEvent]:
    """`cards` cards of `events_per_card` events and `wallets` wallets of `events_per_wallet`,
    interleaved at random; a card's events from version `month_turn` on are of April."""
    builder = StreamBuilder(seed, month_turn)
    left: dict[int, int] = {}
    aggregates: list[_Card | _Wallet] = []
    for _ in range(cards):
        left[len(aggregates)] = events_per_card
        aggregates.append(_Card(uuid4()))
    for _ in range(wallets):
        left[len(aggregates)] = events_per_wallet
        aggregates.append(_Wallet(uuid4()))
    while left:
        i = builder.rng.choice(list(left))
        aggregate = aggregates[i]
        if isinstance(aggregate, _Card):
            builder.card_step(aggregate)
        else:
            builder.wallet_step(aggregate)
        left[i] -= 1
        if left[i] == 0:
            del left[i]
    return builder.events
