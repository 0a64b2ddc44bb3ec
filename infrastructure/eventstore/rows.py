"""The one way a row of `events` becomes a RecordedEvent, for every reader of the table."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from infrastructure.eventstore.encoding import loads
from infrastructure.eventstore.port import RecordedEvent

# Select these first, in this order: it is the field order of RecordedEvent. JSON comes as
# text (cheaper to decode with orjson than psycopg's jsonb loader).
EVENT_COLUMNS = """position, event_id, aggregate_id, aggregate_type, event_type, schema_version,
version, event_data::text, metadata::text, timestamp"""


def recorded_event(row: Sequence[Any]) -> RecordedEvent:
    return RecordedEvent(
        row[0], row[1], row[2], row[3], row[4], row[5], row[6], _json(row[7]), _json(row[8]), row[9]
    )


def _json(value: Any) -> Any:
    return loads(value) if isinstance(value, str | bytes) else value
