"""From a recorded event to a checked payload, or a poison event to park.

A payload of an older schema version is first read as the current one (domain/upcasting.py),
so every read model sees one shape per event type; an unknown version is poison.

Validating every payload into its domain event (pydantic: UUIDs, Decimals, datetimes, nested
models) cost more than all the rest of projecting it, and the read models want the JSON form
anyway (money as strings goes into numeric exactly). So the hot path checks the payload's
*shape* against the event's model (`domain/events.py`, the one definition): the keys (every
required field, no unknown one), each value's JSON kind (a string where the model has a
UUID, Decimal, date, datetime or str; an integer; a list of such or of nested models; null
only where the model allows it) and the allowed values of Literal fields. What a string
holds (a well-formed UUID, amount, date) is checked by PostgreSQL's casts as the rows go in
(a field that no read model keeps, such as `previous_expiry_date`, is thus only checked to be
a string: it cannot spoil a row); a batch PostgreSQL refuses is applied again event by
event with the full validation (`strict`), so the event is parked with pydantic's reason. A
payload the shape check does not recognise is validated in full at once: it is either
poison or, valid in another JSON form (a number for an amount, an upper-case UUID),
projected from the model's canonical dump.
"""

from __future__ import annotations

import types
from collections.abc import Callable, Mapping
from datetime import date, datetime
from decimal import Decimal
from functools import cache
from typing import Any, Literal, NamedTuple, Union, get_args, get_origin
from uuid import UUID

from pydantic import BaseModel, ValidationError

from domain.events import (
    EVENT_TYPES,
    MEDCARD_EVENTS,
    WALLET_EVENTS,
    DomainEvent,
    MedCardIssued,
    UnknownEventType,
    WalletOpened,
)
from domain.upcasting import event_from_payload, upcast
from infrastructure.eventstore.port import RecordedEvent

_AGGREGATE_TYPE: dict[str, str] = {
    **{cls.event_type: "medcard" for cls in MEDCARD_EVENTS},
    **{cls.event_type: "wallet" for cls in WALLET_EVENTS},
}
# The field that names the stream's own entity: it must be the aggregate id, or the
# entity's rows would land under another key.
_OWN_ID: dict[str, str] = {
    MedCardIssued.event_type: "card_id",
    WalletOpened.event_type: "wallet_id",
}


class PoisonEventError(Exception):
    """An event no retry will ever apply: unknown type or schema version, a payload that
    fails validation, or a row the database refuses. Park it (parking.park) and go on;
    retrying the same batch would fail the same way forever."""

    def __init__(self, event: RecordedEvent, reason: str) -> None:
        super().__init__(f"{event.event_type} v{event.schema_version} {event.event_id}: {reason}")
        self.event = event
        self.reason = reason


class Decoded(NamedTuple):  # one per event: a named tuple is the cheapest to make
    recorded: RecordedEvent
    data: Mapping[str, Any]  # the payload in its JSON form, of the shape of its event's model


def decode(recorded: RecordedEvent, *, strict: bool = False) -> Decoded:
    """`recorded`'s payload, checked (see the module's docstring); `strict` validates it in
    full, as the domain model does. Raises PoisonEventError."""
    event_type = recorded.event_type
    try:  # an older schema version is read as the current one (domain/upcasting.py)
        data = upcast(event_type, recorded.schema_version, recorded.data)
    except UnknownEventType as exc:
        raise PoisonEventError(recorded, f"unknown event type {exc}") from exc
    except (TypeError, ValueError) as exc:  # an old payload an upcaster cannot read
        raise PoisonEventError(recorded, f"invalid payload: {type(exc).__name__}") from exc
    cls = EVENT_TYPES[event_type]
    if recorded.aggregate_type != _AGGREGATE_TYPE[event_type]:
        raise PoisonEventError(recorded, f"aggregate type {recorded.aggregate_type!r}")
    if recorded.version < 1:
        raise PoisonEventError(recorded, f"version {recorded.version}")
    own = _OWN_ID.get(event_type)
    if (
        not strict
        and _shape(cls)(data)
        and (own is None or data[own] == str(recorded.aggregate_id))
    ):
        return Decoded(recorded, data)
    event = _validate(recorded)
    if own is not None and getattr(event, own) != recorded.aggregate_id:
        raise PoisonEventError(recorded, f"{own} is not the aggregate id")
    return Decoded(recorded, event.payload())


def _validate(recorded: RecordedEvent) -> DomainEvent:
    try:
        return event_from_payload(recorded.event_type, recorded.schema_version, recorded.data)
    except UnknownEventType as exc:
        raise PoisonEventError(recorded, f"unknown event type {exc}") from exc
    except ValidationError as exc:
        raise PoisonEventError(recorded, f"invalid payload: {_summary(exc)}") from exc
    except (TypeError, ValueError) as exc:
        raise PoisonEventError(recorded, f"invalid payload: {type(exc).__name__}") from exc


def _summary(error: ValidationError) -> str:
    # Field paths and messages only: the input may hold national ids and phone numbers,
    # which must never reach logs (docs/design.md §7).
    parts = [
        f"{'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']}"
        for e in error.errors(include_input=False, include_url=False)
    ]
    return "; ".join(parts[:5]) + (f" (+{len(parts) - 5} more)" if len(parts) > 5 else "")


# ---------------------------------------------------------------- the shape of a payload

Check = Callable[[Any], bool]
# What model_dump(mode="json") makes of these: a string.
_AS_STRING = (str, UUID, Decimal, date, datetime)
_NONE = type(None)


@cache
def _shape(model: type[BaseModel]) -> Check:
    """A predicate: is this value a dict of `model`'s shape (in its JSON form)?

    Scalar fields are checked in groups by the JSON types they allow (`map(type, ...)` runs
    in C: a field costs nanoseconds); Literal, list and nested fields one by one."""
    required = frozenset(n for n, f in model.model_fields.items() if f.is_required())
    allowed = frozenset(model.model_fields)
    groups: dict[frozenset[type], list[str]] = {}
    one_by_one: list[tuple[str, Check]] = []
    for name, field in model.model_fields.items():
        kinds = _scalar_kinds(field.annotation)
        if kinds is None:
            one_by_one.append((name, _value_check(field.annotation)))
        else:
            groups.setdefault(kinds, []).append(name)
    strings = tuple(groups.pop(frozenset((str,)), ()))
    scalars = tuple((tuple(names), kinds) for kinds, names in groups.items())
    others = tuple(one_by_one)

    def check(value: Any) -> bool:  # loops, not generators: this runs for every event
        if type(value) is not dict:
            return False
        keys = value.keys()
        if not (keys >= required and keys <= allowed):
            return False
        get = value.get  # an absent optional field reads as None: allowed only if nullable
        values: Any = map(get, strings)
        try:
            "".join(values)  # the cheapest "all of these are str"
        except TypeError:
            return False
        for names, kinds in scalars:
            if not kinds.issuperset(map(type, map(get, names))):
                return False
        return all(ok(get(name)) for name, ok in others)

    return check


def _scalar_kinds(annotation: Any) -> frozenset[type] | None:
    """The JSON types of a scalar field (str, int, or either or null), else None."""
    optional = get_origin(annotation) in (Union, types.UnionType)
    if optional:
        args = [a for a in get_args(annotation) if a is not _NONE]
        if len(args) != 1:
            return None
        annotation = args[0]
    if annotation is int:
        kind: type = int
    elif isinstance(annotation, type) and issubclass(annotation, _AS_STRING):
        kind = str
    else:
        return None
    return frozenset((kind, _NONE)) if optional else frozenset((kind,))


def _value_check(annotation: Any) -> Check:
    kinds = _scalar_kinds(annotation)
    if kinds is not None:
        return lambda v: type(v) in kinds
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Literal:
        allowed = frozenset(args)
        return lambda v: type(v) is str and v in allowed
    if origin in (Union, types.UnionType):
        options = tuple(_value_check(a) for a in args if a is not _NONE)
        return lambda v: v is None or any(ok(v) for ok in options)
    if origin is tuple:  # tuple[X, ...]: a JSON list
        item_kinds = _scalar_kinds(args[0])
        if item_kinds is not None:
            return lambda v: type(v) is list and item_kinds.issuperset(map(type, v))
        item = _value_check(args[0])
        return lambda v: type(v) is list and all(map(item, v))
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return _shape(annotation)
    raise TypeError(f"no JSON shape for {annotation!r}")  # a new kind of field: teach it here
