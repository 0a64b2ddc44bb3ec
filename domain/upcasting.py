"""Stored payloads of older schema versions, read as the current version: the one owner of how
an event's schema evolves.

Every stored event keeps the `schema_version` it was written with (the `events` column, whose
default 1 is what rows of a release before versions were recorded read as). No reader ever
sees an old shape: everything that turns a stored payload into something it reads (the
command service's aggregates, the read-model and balance projections, their rebuilds, the
CLI) goes through `upcast`, which applies the registered upcasters one step at a time
(v1 → v2 → … → the event class's `schema_version`). Stored rows are never rewritten.

The rules (docs/runbooks/rollback.md, "Rules that keep events readable across versions"):
- a payload change is a new `schema_version` on the event class, a new committed JSON Schema
  (`python -m schemas.events.generate`) and an upcaster from the version before it here;
- an upcaster is pure and total on valid payloads of its version: it adds fields with a
  documented default, renames or restructures, and never needs I/O or another event;
- a version this release does not know (newer than its class, or an unknown type) is refused
  loudly (UnknownEventType): the projections park it, the command service answers 500 rather
  than deciding on a state it cannot read.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from domain.events import (
    EVENT_TYPES,
    ClaimAdjudicated,
    DomainEvent,
    UnknownEventType,
    WalletToppedUp,
)

Payload = Mapping[str, Any]
Upcaster = Callable[[Payload], dict[str, Any]]


def _topped_up_v1_to_v2(payload: Payload) -> dict[str, Any]:
    """v2 adds `paid_at`, the time the gateway says the member paid (a payment-gateway callback
    carries it; reconciliation with the gateway's settlement report goes by it). A release
    writing v1 never asked the gateway, so the default is null, "not told": not the time the
    ledger recorded the top-up, which would pass a guess off as the gateway's word."""
    return {**payload, "paid_at": None}


def _claim_adjudicated_v1_to_v2(payload: Payload) -> dict[str, Any]:
    """v2 adds each item's `days_supply`, `next_available_fill_date`, `refill_overrides_used`
    and `flags`. A release writing v1 asked no days supply and had no refill or velocity rule,
    so: null ("not told", never a guessed supply), null, none, none."""
    upgraded: dict[str, Any] = {**payload}
    # Only what is there is changed: a reader that needs a few fields (the balance projection
    # reads the month and the amounts) is not refused for one it never reads; a reader that
    # validates the whole event (domain/events.py) still refuses a v1 claim without items.
    if isinstance(payload.get("items"), list):
        upgraded["items"] = [
            {**item, "days_supply": None} if isinstance(item, dict) else item
            for item in payload["items"]
        ]
    return {
        **upgraded,
        "next_available_fill_date": None,
        "refill_overrides_used": [],
        "flags": [],
    }


# (event type, the version an upcaster reads) -> the upcaster to the version after it.
UPCASTERS: Mapping[tuple[str, int], Upcaster] = MappingProxyType(
    {
        (WalletToppedUp.event_type, 1): _topped_up_v1_to_v2,
        (ClaimAdjudicated.event_type, 1): _claim_adjudicated_v1_to_v2,
    }
)


def upcast(event_type: str, version: int, payload: Payload) -> Payload:
    """`payload`, written as `event_type` v`version`, in the shape of the current version.

    The current version's payload is returned as it is (the same object: this runs for every
    event a projection reads). Raises UnknownEventType for an unknown type, a version below 1
    or above the current one (written by a newer release), or a gap in the chain."""
    cls = EVENT_TYPES.get(event_type)
    if cls is None:
        raise UnknownEventType(f"{event_type} v{version}")
    current = cls.schema_version
    if version == current:
        return payload
    if not 1 <= version < current:
        raise UnknownEventType(f"{event_type} v{version} (this release reads v1 to v{current})")
    for step in range(version, current):
        upcaster = UPCASTERS.get((event_type, step))
        if upcaster is None:
            raise UnknownEventType(f"{event_type} v{step} (no upcaster to v{step + 1})")
        payload = upcaster(payload)
    return payload


def event_from_payload(event_type: str, schema_version: int, payload: Any) -> DomainEvent:
    """The domain event a stored payload of any known version holds (validated in full)."""
    current = upcast(event_type, schema_version, payload)  # first: it refuses unknown types
    return EVENT_TYPES[event_type].model_validate(current)
