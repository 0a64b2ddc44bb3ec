"""The event envelope: how a committed event travels on Kafka (value: one JSON object, the
fields of `_head`, then `data` and `metadata`).

Stable field names, never Python class paths; `data` is the event payload exactly as stored
(money as strings). Consumers deduplicate by `event_id` and order per aggregate by `version`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol
from uuid import UUID

import orjson

from infrastructure.eventstore.port import RecordedEvent
from infrastructure.eventstore.rows import StoredEvent

ENVELOPE_VERSION = 1


class _Head(Protocol):
    """What an envelope says besides the payload: RecordedEvent and StoredEvent both have it."""

    @property
    def position(self) -> int: ...
    @property
    def event_id(self) -> UUID: ...
    @property
    def aggregate_id(self) -> UUID: ...
    @property
    def aggregate_type(self) -> str: ...
    @property
    def event_type(self) -> str: ...
    @property
    def schema_version(self) -> int: ...
    @property
    def version(self) -> int: ...
    @property
    def timestamp(self) -> datetime: ...


def _head(event: _Head) -> dict[str, Any]:
    # orjson writes a UUID as str(uuid) does, without the str() per field.
    return {
        "envelope_version": ENVELOPE_VERSION,
        "event_id": event.event_id,
        "aggregate_id": event.aggregate_id,
        "aggregate_type": event.aggregate_type,
        "event_type": event.event_type,
        "schema_version": event.schema_version,
        "version": event.version,
        "position": event.position,
        "timestamp": event.timestamp.isoformat(),
    }


def to_envelope(event: RecordedEvent) -> bytes:
    doc = _head(event)
    doc["data"] = event.data
    doc["metadata"] = event.metadata
    return orjson.dumps(doc)


def stored_envelope(event: StoredEvent) -> bytes:
    """The envelope of a row as stored, its JSON spliced in as PostgreSQL wrote it (no decode
    and re-encode): a consumer's JSON parser reads the same document `to_envelope` writes
    for the decoded row, only the payload's whitespace differs. jsonb's text is valid JSON
    in UTF-8, and the head's last field is followed by the payload's, as in `to_envelope`."""
    head = orjson.dumps(_head(event))
    return b"".join(
        (
            head[:-1],  # without its closing brace
            b',"data":',
            event.data_json.encode(),
            b',"metadata":',
            event.metadata_json.encode(),
            b"}",
        )
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
