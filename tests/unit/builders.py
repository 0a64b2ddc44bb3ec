"""Test data and a tiny in-memory ledger that runs commands through the pure deciders.

The ledger keeps the state the deciders saw (evolved event by event) and the full event log, so
tests can rebuild the state from the log and compare. It also keeps the card's unique keys,
and looks up what the card's bounded state cannot say, as the command service does with the
event store.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from decimal import Decimal
from random import Random
from typing import Any
from uuid import UUID, uuid4

import pytest

from domain.errors import CommandRejected, Kind
from domain.events import (
    ClaimAdjudicated,
    ClaimReversed,
    DomainEvent,
    HoldPlaced,
    HoldVoided,
    RefillOverrideGranted,
)
from domain.identity import new_card_number
from domain.medcard import decider
from domain.medcard import state as card_state
from domain.medcard.claims import ClaimDecision, ReversalDecision, adjudicate, reverse_claim
from domain.medcard.commands import (
    ClaimItem,
    ClaimPrescription,
    IssueCard,
    MedCardCommand,
    PersonDetails,
    ReverseClaim,
)
from domain.medcard.holds import (
    HoldHistory,
    PlaceHold,
    VoidHold,
    capture,
    hold_history,
    place_hold,
    void_hold,
)
from domain.medcard.refills import GrantRefillOverride, grant_override
from domain.medcard.state import (
    ClaimNeeded,
    Looked,
    MedCardState,
    PriorChargeNeeded,
    claim_record,
)
from domain.uniqueness import UniqueKey, keys_freed, keys_taken, prescription_key
from domain.wallet import model as wallet_model
from domain.wallet.model import (
    OpenWallet,
    SetCopayConsent,
    TopUp,
    WalletCommand,
    WalletDecision,
    WalletState,
)
from tests.log_scan import personal

# 2026-01-15 12:00 in Cairo (UTC+2 in winter).
T0 = datetime(2026, 1, 15, 10, 0, tzinfo=UTC)
USER = "test-user-1"
PHARMACY = "pharmacy-1"


def utc(text: str) -> datetime:
    """An ISO timestamp read as UTC: utc("2026-01-31T22:30")."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def card_number(seed: int = 1) -> str:
    return new_card_number(Random(seed))


def national_id(born: date, governorate: str = "01", serial: str = "1234", check: str = "5") -> str:
    century = "2" if born.year < 2000 else "3"
    return personal(f"{century}{born:%y%m%d}{governorate}{serial}{check}")


def person(
    born: date = date(1990, 5, 17),
    *,
    relationship: str = "spouse",
    name: str = "Mona Ali",
    phone: str = "01012345678",
    nid: str | None = None,
) -> PersonDetails:
    return PersonDetails(
        relationship=relationship,
        national_id=personal(nid) if nid is not None else national_id(born),
        name=name,
        date_of_birth=born,
        phone_number=personal(phone),
    )


def issue(card_type: str = "gold", **overrides: Any) -> IssueCard:
    base = IssueCard(
        card_id=uuid4(),
        card_number=card_number(),
        user_id=USER,
        card_type=card_type,
        at=T0,
        may_override_terms=False,
    )
    return replace(base, **overrides)


def claim(total: str | Decimal = "350.00", **overrides: Any) -> ClaimPrescription:
    base = ClaimPrescription(
        claim_id=uuid4(),
        prescription_id=f"rx-{uuid4()}",
        pharmacy_id=PHARMACY,
        total_amount=Decimal(total),
        at=T0,
    )
    return replace(base, **overrides)


def item(quantity: int, unit_price: str, drug_code: str = "D-1") -> ClaimItem:
    return ClaimItem(
        item_id=uuid4(),
        drug_code=drug_code,
        drug_name=f"drug {drug_code}",
        quantity=quantity,
        unit_price=Decimal(unit_price),
    )


@contextmanager
def refused(code: str, kind: Kind = Kind.INVALID) -> Iterator[None]:
    with pytest.raises(CommandRejected) as info:
        yield
    assert (info.value.code, info.value.kind) == (code, kind), info.value.detail


@dataclass
class Ledger:
    """One card and its holder's wallet, advanced only through the deciders."""

    card: MedCardState | None = None
    wallet: WalletState | None = None
    card_log: list[DomainEvent] = field(default_factory=list)
    wallet_log: list[DomainEvent] = field(default_factory=list)
    # the card's unique keys and the events holding them (the event store's reservations)
    held: dict[UniqueKey, DomainEvent] = field(default_factory=dict)

    @classmethod
    def with_card(cls, command: IssueCard | None = None) -> Ledger:
        ledger = cls()
        ledger.run(command or issue())
        return ledger

    @property
    def state(self) -> MedCardState:
        assert self.card is not None
        return self.card

    @property
    def purse(self) -> WalletState:
        assert self.wallet is not None
        return self.wallet

    def run(self, command: MedCardCommand) -> list[DomainEvent]:
        events = decider.decide(self.card, command)
        self._apply_card(events)
        return events

    def run_wallet(self, command: WalletCommand) -> WalletDecision:
        decision = wallet_model.decide(self.wallet, command)
        self._apply_wallet(decision.events)
        return decision

    def open_wallet(
        self,
        balance: str = "0.00",
        at: datetime = T0,
        *,
        consent: tuple[str, str] | None = None,
    ) -> WalletState:
        """`consent`: (per claim, per month) the member lets claims take from the wallet."""
        wallet_id = wallet_model.wallet_id_for(self.state.user_id, self.state.currency)
        self.run_wallet(OpenWallet(wallet_id=wallet_id, owner_user_id=self.state.user_id, at=at))
        if consent is not None:
            self.consent(*consent, at=at)
        if Decimal(balance) > 0:
            self.run_wallet(
                TopUp(
                    topup_id=uuid4(),
                    gateway="fawry",
                    gateway_reference=f"ref-{uuid4()}",
                    amount=Decimal(balance),
                    at=at,
                )
            )
        return self.purse

    def consent(self, per_claim: str, monthly: str, at: datetime = T0) -> WalletDecision:
        return self.run_wallet(SetCopayConsent(Decimal(per_claim), Decimal(monthly), at))

    def claim(self, command: ClaimPrescription) -> ClaimDecision:
        # What the command service does when the card's window cannot say: look the
        # prescription's holder up (the event store's reservation) and decide again; and
        # when a charge decided without knowing clashes with a holder at the append.
        try:
            decision = adjudicate(self.card, self.wallet, command)
        except PriorChargeNeeded:
            decision = self._adjudicate_knowing(command)
        if any(self._held(event) for event in decision.card_events):
            decision = self._adjudicate_knowing(command)
        self._apply_card(decision.card_events)
        self._apply_wallet(decision.wallet_events)
        return decision

    def grant(self, command: GrantRefillOverride) -> RefillOverrideGranted:
        event = grant_override(self.card, command)
        self._apply_card([event])
        return event

    def _adjudicate_knowing(self, command: ClaimPrescription) -> ClaimDecision:
        holder = self.held.get(prescription_key(self.state.card_id, command.prescription_id))
        assert holder is None or isinstance(holder, ClaimAdjudicated)
        return adjudicate(self.card, self.wallet, command, Looked(holder))

    def _held(self, event: DomainEvent) -> bool:
        return any(key in self.held for key in keys_taken(self.state.card_id, event))

    def reverse(
        self, claim_id: UUID, at: datetime = T0, reason: str | None = None
    ) -> ReversalDecision:
        command = ReverseClaim(claim_id, at, reason)
        try:
            decision = reverse_claim(self.card, self.wallet, command)
        except ClaimNeeded:
            looked_up = claim_record(e for e in self.card_log if _of_claim(e, claim_id))
            decision = reverse_claim(self.card, self.wallet, command, Looked(looked_up))
        self._apply_card(decision.card_events)
        self._apply_wallet(decision.wallet_events)
        return decision

    def claims(self) -> list[tuple[ClaimAdjudicated, bool]]:
        """Every claim in the log, with whether it was reversed."""
        reversed_ids = {e.claim_id for e in self.card_log if isinstance(e, ClaimReversed)}
        return [
            (e, e.claim_id in reversed_ids)
            for e in self.card_log
            if isinstance(e, ClaimAdjudicated)
        ]

    def _apply_card(self, events: list[DomainEvent]) -> None:
        for event in events:
            self.card = card_state.evolve(self.card, event)
            self.card_log.append(event)
            for key in keys_freed(self.state.card_id, event):
                del self.held[key]
            for key in keys_taken(self.state.card_id, event):
                assert key not in self.held, key  # the event store would refuse the append
                self.held[key] = event

    def hold(self, amount: str, at: datetime = T0, **overrides: Any) -> HoldPlaced:
        """A benefit hold placed (domain/medcard/holds.py), for `rx-held` unless told."""
        base = PlaceHold(uuid4(), "rx-held", PHARMACY, Decimal(amount), 72, at)
        placed = place_hold(self.card, replace(base, **overrides))
        self._apply_card([placed])
        return placed

    def void(self, command: VoidHold) -> HoldVoided:
        voided = void_hold(self.card, command, self._hold_history(command.hold_id, command.at))
        self._apply_card([voided])
        return voided

    def claim_capturing(self, command: ClaimPrescription) -> list[DomainEvent]:
        """A claim naming a hold, as the command service books it: the claim, then what
        capturing the hold appends."""
        assert command.hold_id is not None
        before = self.card
        decision = adjudicate(self.card, self.wallet, command)
        events = capture(
            before, command, decision.claim, self._hold_history(command.hold_id, command.at)
        )
        self._apply_card([*decision.card_events, *events])
        self._apply_wallet(decision.wallet_events)
        return [*decision.card_events, *events]

    def _hold_history(self, hold_id: UUID, at: datetime) -> Looked[HoldHistory]:
        mine = [e for e in self.card_log if getattr(e, "hold_id", None) == hold_id]
        return Looked(hold_history(mine, at))

    def _apply_wallet(self, events: list[DomainEvent]) -> None:
        for event in events:
            self.wallet = wallet_model.evolve(self.wallet, event)
            self.wallet_log.append(event)


def _of_claim(event: DomainEvent, claim_id: UUID) -> bool:
    return isinstance(event, ClaimAdjudicated | ClaimReversed) and event.claim_id == claim_id
