"""The one way a row of `events` becomes a RecordedEvent, for every reader of the table."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple
from uuid import UUID

from infrastructure.eventstore.encoding import loads
from infrastructure.eventstore.port import RecordedEvent

# Select these first, in this order: it is the field order of RecordedEvent. JSON comes as
# text (cheaper to decode with orjson than psycopg's jsonb loader).
EVENT_COLUMNS = """position, event_id, aggregate_id, aggregate_type, event_type, schema_version,
version, event_data::text, metadata::text, timestamp"""


class StoredEvent(NamedTuple):
    """A row of `events` with its JSON left as PostgreSQL wrote it: for readers that pass the
    payload on instead of looking into it (the relay). `recorded_event` decodes one."""

    position: int
    event_id: UUID
    aggregate_id: UUID
    aggregate_type: str
    event_type: str
    schema_version: int
    version: int
    data_json: str  # jsonb's text form of event_data
    metadata_json: str
    timestamp: datetime


def recorded_event(row: Sequence[Any]) -> RecordedEvent:
    return RecordedEvent(
        row[0], row[1], row[2], row[3], row[4], row[5], row[6], _json(row[7]), _json(row[8]), row[9]
    )


def stored_event(row: Sequence[Any]) -> StoredEvent:
    return StoredEvent(
        row[0], row[1], row[2], row[3], row[4], row[5], row[6], row[7], row[8], row[9]
    )


def _json(value: Any) -> Any:
    return loads(value) if isinstance(value, str | bytes) else value
