"""Events round-trip through their JSON payloads, and folding them rebuilds the state."""

from __future__ import annotations

import json
import re
from functools import reduce

import pytest

from domain.events import (
    EVENT_TYPES,
    MEDCARD_EVENTS,
    WALLET_EVENTS,
    DomainEvent,
    MedCardActivated,
    UnknownEventType,
)
from domain.medcard.state import MedCardState
from domain.medcard.state import evolve as evolve_card
from domain.upcasting import event_from_payload
from domain.wallet.model import WalletState
from domain.wallet.model import evolve as evolve_wallet
from tests.unit.builders import T0
from tests.unit.scenarios import every_event, full_history


def through_json(event: DomainEvent) -> DomainEvent:
    text = json.dumps(event.payload())  # a float or a Decimal object here would fail to encode
    return event_from_payload(event.event_type, event.schema_version, json.loads(text))


def test_the_scenario_covers_every_event_type() -> None:
    assert {e.event_type for e in every_event()} == set(EVENT_TYPES)


def test_event_types_are_stable_dotted_names() -> None:
    assert len(EVENT_TYPES) == len(MEDCARD_EVENTS) + len(WALLET_EVENTS)
    for name, cls in EVENT_TYPES.items():
        assert name == cls.event_type
        prefix = "medcard." if cls in MEDCARD_EVENTS else "wallet."
        assert name.startswith(prefix)
        assert name.islower()
        assert "Event" not in name
        assert cls.__module__ not in name
        assert cls.schema_version >= 1


@pytest.mark.parametrize("event", every_event(), ids=lambda e: e.event_type)
def test_every_event_round_trips_through_its_payload(event: DomainEvent) -> None:
    restored = through_json(event)
    assert type(restored) is type(event)
    assert restored == event
    assert restored.payload() == event.payload()


def test_money_is_serialised_as_strings_with_two_places() -> None:
    for event in every_event():
        text = json.dumps(event.payload())
        assert "Decimal" not in text
        for key, value in event.payload().items():
            if key.endswith(("amount", "_after", "limit", "refund")):
                assert isinstance(value, str), (event.event_type, key)
                assert re.fullmatch(r"-?\d+\.\d\d", value), (event.event_type, key, value)


def test_unknown_types_and_versions_are_refused() -> None:
    payload = MedCardActivated(at=T0).payload()
    with pytest.raises(UnknownEventType):
        event_from_payload("medcard.activated", 2, payload)
    with pytest.raises(UnknownEventType):
        event_from_payload("medcard.teleported", 1, payload)
    with pytest.raises(UnknownEventType):
        event_from_payload("domain.events.MedCardActivated", 1, payload)


def test_payloads_with_unknown_fields_are_refused() -> None:
    payload = {**MedCardActivated(at=T0).payload(), "surprise": 1}
    with pytest.raises(ValueError, match="surprise"):
        event_from_payload("medcard.activated", 1, payload)


def test_folding_the_stored_events_rebuilds_the_state_the_deciders_saw() -> None:
    ledger = full_history()
    stored_card = [through_json(e) for e in ledger.card_log]
    stored_wallet = [through_json(e) for e in ledger.wallet_log]
    card: MedCardState | None = reduce(evolve_card, stored_card, None)
    wallet: WalletState | None = reduce(evolve_wallet, stored_wallet, None)
    assert card == ledger.card
    assert wallet == ledger.wallet
    assert card is not None
    assert card.status == "CANCELLED"


def test_every_prefix_of_the_history_folds_to_a_state() -> None:
    ledger = full_history()
    state: MedCardState | None = None
    for event in ledger.card_log:
        state = evolve_card(state, event)
    assert state == ledger.card


def test_events_before_creation_are_refused() -> None:
    with pytest.raises(ValueError, match=r"before medcard\.issued"):
        evolve_card(None, MedCardActivated(at=T0))
    wallet_event = next(e for e in every_event() if e.event_type == "wallet.topped_up")
    with pytest.raises(ValueError, match=r"before wallet\.opened"):
        evolve_wallet(None, wallet_event)


def test_events_of_the_other_aggregate_are_refused() -> None:
    ledger = full_history()
    with pytest.raises(ValueError, match="not a medcard event"):
        evolve_card(ledger.card, ledger.wallet_log[-1])
    with pytest.raises(ValueError, match="not a wallet event"):
        evolve_wallet(ledger.wallet, MedCardActivated(at=T0))
