"""`healthpay events show|tail`: a card's or wallet's history, decoded, and new events as
they commit. National ids and phone numbers are masked: terminals end up in tickets."""

from __future__ import annotations

import re
import threading
import time
from datetime import datetime
from typing import Any
from uuid import UUID

import orjson
import psycopg

from domain.events import UnknownEventType
from domain.upcasting import upcast
from infrastructure.eventstore.log_queries import aggregate_history
from infrastructure.eventstore.log_reads import LOG_START, committed_head, read_committed
from infrastructure.eventstore.rows import recorded_event

_SENSITIVE = re.compile(r'("(?:national_id|phone_number)":\s*")([^"]*)(")')


def mask(text: str) -> str:
    return _SENSITIVE.sub(lambda m: m.group(1) + _keep_tail(m.group(2)) + m.group(3), text)


def _keep_tail(value: str) -> str:
    return "*" * max(len(value) - 3, 0) + value[-3:]


def describe(event_type: str, schema_version: int, data: Any) -> str:
    """The event's telling fields, as the current schema version names them; one this release
    cannot read is shown as stored, marked, so the operator still sees it."""
    keys = (
        "decision", "reasons", "total_amount", "covered_amount", "copayment_amount",
        "month_spent_after", "restored_amount", "amount", "balance_after", "status",
        "expiry_date", "prescription_id", "pharmacy_id", "gateway", "gateway_reference",
        "paid_at",
    )  # fmt: skip
    try:
        current = upcast(event_type, schema_version, data)
    except (UnknownEventType, TypeError, ValueError):
        return f"(unreadable v{schema_version}) " + mask(orjson.dumps(data).decode())
    shown = {k: current[k] for k in keys if k in current}
    return mask(orjson.dumps(shown).decode())


def _line(
    position: int, version: int, at: datetime, event_type: str, schema_version: int, data: Any
) -> str:
    stamp = at.isoformat(timespec="milliseconds")
    details = describe(event_type, schema_version, data)
    return f"{position:>10} v{version:<5} {stamp}  {event_type:<28} {details}"


def show(conninfo: str, aggregate_id: UUID) -> int:
    with psycopg.connect(conninfo, autocommit=True) as conn:
        rows = aggregate_history(conn, aggregate_id)
    if not rows:
        print(f"no events for {aggregate_id}")
        return 1
    print(f"{'position':>10} {'version':<6} {'time':<29} {'event':<28} details")
    for position, version, event_type, schema_version, at, data in rows:
        print(_line(position, version, at, event_type, schema_version, data))
    return 0


def tail(conninfo: str, from_start: bool, stop: threading.Event, limit: int | None = None) -> int:
    """Follows committed events in commit-safe order (the relay's reader): none is missed."""
    printed = 0
    with psycopg.connect(conninfo, autocommit=True) as conn:
        checkpoint = LOG_START if from_start else committed_head(conn)
        while not stop.is_set():
            batch = read_committed(conn, checkpoint, 500)
            for reached, stored in batch:
                checkpoint = reached
                event = recorded_event(stored)
                print(
                    f"{event.aggregate_id} "
                    + _line(
                        event.position,
                        event.version,
                        event.timestamp,
                        event.event_type,
                        event.schema_version,
                        event.data,
                    ),
                    flush=True,
                )
                printed += 1
                if limit is not None and printed >= limit:
                    return 0
            if not batch:
                time.sleep(0.25)
    return 0
