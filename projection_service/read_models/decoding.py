"""From a recorded event to a validated domain event, or a poison event to park."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import ValidationError

from domain.events import (
    MEDCARD_EVENTS,
    WALLET_EVENTS,
    DomainEvent,
    MedCardIssued,
    UnknownEventType,
    WalletOpened,
    event_from_payload,
)
from infrastructure.eventstore.port import RecordedEvent

_AGGREGATE_TYPE: dict[str, str] = {
    **{cls.event_type: "medcard" for cls in MEDCARD_EVENTS},
    **{cls.event_type: "wallet" for cls in WALLET_EVENTS},
}


class PoisonEventError(Exception):
    """An event no retry will ever apply: unknown type or schema version, a payload that
    fails validation, or a row the database refuses. Park it (parking.park) and go on;
    retrying the same batch would fail the same way forever."""

    def __init__(self, event: RecordedEvent, reason: str) -> None:
        super().__init__(f"{event.event_type} v{event.schema_version} {event.event_id}: {reason}")
        self.event = event
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Decoded:
    recorded: RecordedEvent
    event: DomainEvent


def decode(recorded: RecordedEvent) -> Decoded:
    try:
        event = event_from_payload(recorded.event_type, recorded.schema_version, recorded.data)
    except UnknownEventType as exc:
        raise PoisonEventError(recorded, f"unknown event type {exc}") from exc
    except ValidationError as exc:
        raise PoisonEventError(recorded, f"invalid payload: {_summary(exc)}") from exc
    except (TypeError, ValueError) as exc:
        raise PoisonEventError(recorded, f"invalid payload: {type(exc).__name__}") from exc
    expected = _AGGREGATE_TYPE[recorded.event_type]
    if recorded.aggregate_type != expected:
        raise PoisonEventError(recorded, f"aggregate type {recorded.aggregate_type!r}")
    if recorded.version < 1:
        raise PoisonEventError(recorded, f"version {recorded.version}")
    # The stream's id must be the entity's id, or its rows would land under another key.
    if isinstance(event, MedCardIssued) and event.card_id != recorded.aggregate_id:
        raise PoisonEventError(recorded, "card_id is not the aggregate id")
    if isinstance(event, WalletOpened) and event.wallet_id != recorded.aggregate_id:
        raise PoisonEventError(recorded, "wallet_id is not the aggregate id")
    return Decoded(recorded, event)


def _summary(error: ValidationError) -> str:
    # Field paths and messages only: the input may hold national ids and phone numbers,
    # which must never reach logs (docs/design.md §7).
    parts = [
        f"{'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']}"
        for e in error.errors(include_input=False, include_url=False)
    ]
    return "; ".join(parts[:5]) + (f" (+{len(parts) - 5} more)" if len(parts) > 5 else "")
