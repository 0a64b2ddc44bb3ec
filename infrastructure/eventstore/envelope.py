"""The event envelope: how a committed event travels on Kafka (value = orjson of this dict).

Stable field names, never Python class paths; `data` is the event payload exactly as stored
(money as strings). Consumers deduplicate by `event_id` and order per aggregate by `version`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import orjson

from infrastructure.eventstore.port import RecordedEvent

ENVELOPE_VERSION = 1


def to_envelope(event: RecordedEvent) -> bytes:
    return orjson.dumps(
        {
            "envelope_version": ENVELOPE_VERSION,
            "event_id": str(event.event_id),
            "aggregate_id": str(event.aggregate_id),
            "aggregate_type": event.aggregate_type,
            "event_type": event.event_type,
            "schema_version": event.schema_version,
            "version": event.version,
            "position": event.position,
            "timestamp": event.timestamp.isoformat(),
            "data": event.data,
            "metadata": event.metadata,
        }
    )


class MalformedEnvelope(ValueError):
    pass


def from_envelope(raw: bytes) -> RecordedEvent:
    try:
        doc: dict[str, Any] = orjson.loads(raw)
        if doc.get("envelope_version") != ENVELOPE_VERSION:
            raise MalformedEnvelope(f"unknown envelope version {doc.get('envelope_version')!r}")
        return RecordedEvent(
            position=int(doc["position"]),
            event_id=UUID(doc["event_id"]),
            aggregate_id=UUID(doc["aggregate_id"]),
            aggregate_type=str(doc["aggregate_type"]),
            event_type=str(doc["event_type"]),
            schema_version=int(doc["schema_version"]),
            version=int(doc["version"]),
            data=doc["data"],
            metadata=doc.get("metadata") or {},
            timestamp=datetime.fromisoformat(doc["timestamp"]),
        )
    except MalformedEnvelope:
        raise
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise MalformedEnvelope(str(exc)) from exc
