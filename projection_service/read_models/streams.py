"""Per-aggregate ordering: apply each stream's events exactly once, in version order.

Kafka keeps one aggregate's events in order, but redelivery, replays and a rebuild's
catch-up do not promise that. So each stream has a cursor (projection_streams: the version
the read models reflect); an event at or below it is a duplicate, the next one is applied,
and one beyond a gap is held (projection_held_events) until the gap closes. Whatever order
batches arrive in, every event is applied once, in order: the tables converge.

`plan` is pure; `load` and `write` are its two round trips (reads under FOR UPDATE, so two
projectors sharing a stream during a consumer-group rebalance take turns).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple
from uuid import UUID

from psycopg import AsyncConnection
from psycopg.rows import TupleRow

from infrastructure.eventstore.encoding import loads
from infrastructure.eventstore.port import RecordedEvent
from projection_service.read_models.rows import Row, recordset, upsert_template, write_rows
from projection_service.read_models.tables import Tables


# Named tuples, not frozen dataclasses: one is made per stream and per event of a batch,
# and a frozen dataclass's __init__ (object.__setattr__ per field) costs several times more.
class Cursor(NamedTuple):
    aggregate_type: str
    version: int
    has_held: bool


class Candidate(NamedTuple):
    recorded: RecordedEvent
    parked: bool = False  # a parked event's place: skipped, never applied
    from_held: bool = False


@dataclass(slots=True)
class Plan:
    ready: list[Candidate] = field(default_factory=list)  # per stream, in version order
    hold: list[Candidate] = field(default_factory=list)  # new arrivals beyond a gap
    duplicates: int = 0
    release_through: dict[UUID, int] = field(default_factory=dict)  # drop held rows <= this
    cursors: list[Row] = field(default_factory=list)  # cursor rows that changed


_LOAD_CURSORS = """
SELECT aggregate_id, aggregate_type, version, has_held FROM {projection_streams}
WHERE aggregate_id = ANY(%s) ORDER BY aggregate_id FOR UPDATE
"""

_LOAD_HELD = """
SELECT position, event_id, aggregate_id, aggregate_type, event_type, schema_version, version,
       event_data::text, metadata::text, timestamp, parked
FROM {projection_held_events} WHERE aggregate_id = ANY(%s) ORDER BY aggregate_id, version
"""

_HELD_COLUMNS = (
    ("aggregate_id", "uuid"),
    ("version", "int"),
    ("event_id", "uuid"),
    ("position", "bigint"),
    ("aggregate_type", "text"),
    ("event_type", "text"),
    ("schema_version", "int"),
    ("event_data", "jsonb"),
    ("metadata", "jsonb"),
    ("timestamp", "timestamptz"),
    ("parked", "boolean"),
)
_HOLD = upsert_template(
    "projection_held_events", _HELD_COLUMNS, ("aggregate_id", "version"), guarded=False
)
# A parked event's marker replaces whatever was held in its place.
HOLD_PARKED = (
    _HOLD.removesuffix("DO NOTHING")
    + "DO UPDATE SET parked = true, event_data = excluded.event_data"
)

_RELEASE = f"""
DELETE FROM {{projection_held_events}} AS h
USING {recordset((("aggregate_id", "uuid"), ("version", "int")))}
WHERE h.aggregate_id = x.aggregate_id AND h.version <= x.version
"""

_CURSOR_COLUMNS = (
    ("aggregate_id", "uuid"),
    ("aggregate_type", "text"),
    ("version", "int"),
    ("has_held", "boolean"),
)
_STORE_CURSORS = f"""
INSERT INTO {{projection_streams}} AS t (aggregate_id, aggregate_type, version, has_held)
SELECT aggregate_id, aggregate_type, version, has_held FROM {recordset(_CURSOR_COLUMNS)}
ON CONFLICT (aggregate_id) DO UPDATE
SET version = greatest(t.version, excluded.version), has_held = excluded.has_held
"""


async def load(
    conn: AsyncConnection[TupleRow], tables: Tables, aggregate_ids: Sequence[UUID]
) -> tuple[dict[UUID, Cursor], list[Candidate]]:
    """The streams' cursors (locked) and whatever they hold."""
    cur = await conn.execute(tables.sql(_LOAD_CURSORS), (list(aggregate_ids),), prepare=True)
    cursors = {row[0]: Cursor(row[1], row[2], row[3]) for row in await cur.fetchall()}
    holding = [a for a, c in cursors.items() if c.has_held]
    if not holding:
        return cursors, []
    cur = await conn.execute(tables.sql(_LOAD_HELD), (holding,), prepare=True)
    held = [
        Candidate(
            RecordedEvent(r[0], r[1], r[2], r[3], r[4], r[5], r[6], loads(r[7]), loads(r[8]), r[9]),
            parked=r[10],
            from_held=True,
        )
        for r in await cur.fetchall()
    ]
    return cursors, held


def plan(
    batch: Iterable[RecordedEvent],
    cursors: Mapping[UUID, Cursor],
    held: Iterable[Candidate],
    also: Iterable[UUID] = (),
) -> Plan:
    """What to apply, hold and forget, given the batch and the streams' state. `also`
    names streams to drain even without a new event (a parked marker may close a gap)."""
    result = Plan()
    slots: dict[UUID, dict[int, Candidate]] = {aggregate_id: {} for aggregate_id in also}
    for waiting_one in held:
        event = waiting_one.recorded
        slots.setdefault(event.aggregate_id, {})[event.version] = waiting_one
    for event in batch:
        slot = slots.setdefault(event.aggregate_id, {})
        cursor = cursors.get(event.aggregate_id)
        if (cursor is not None and event.version <= cursor.version) or event.version in slot:
            result.duplicates += 1
            continue
        slot[event.version] = Candidate(event)
    for aggregate_id, slot in slots.items():
        cursor = cursors.get(aggregate_id)
        if cursor is None and not slot:
            continue  # asked to drain a stream that has nothing at all
        start = version = 0 if cursor is None else cursor.version
        while (next_one := slot.get(version + 1)) is not None:
            result.ready.append(next_one)
            version += 1
        waiting = [c for v, c in slot.items() if v > version]
        result.hold.extend(c for c in waiting if not c.from_held)
        if any(c.from_held for c in slot.values()):
            result.release_through[aggregate_id] = version
        has_held = bool(waiting)
        if cursor is None or version != start or has_held != cursor.has_held:
            result.cursors.append(
                {
                    "aggregate_id": aggregate_id,
                    "aggregate_type": _type_of(slot.values(), cursor),
                    "version": version,
                    "has_held": has_held,
                }
            )
    return result


def _type_of(candidates: Iterable[Candidate], cursor: Cursor | None) -> str:
    # Only a new cursor row takes it (an existing row keeps its type): then the stream's
    # candidates are all new arrivals, of the stream's one aggregate type.
    for known in candidates:
        return known.recorded.aggregate_type
    return "" if cursor is None else cursor.aggregate_type


def held_row(event: RecordedEvent, *, parked: bool) -> Row:
    return {
        "aggregate_id": event.aggregate_id,
        "version": event.version,
        "event_id": event.event_id,
        "position": event.position,
        "aggregate_type": event.aggregate_type,
        "event_type": event.event_type,
        "schema_version": event.schema_version,
        "event_data": event.data,
        "metadata": event.metadata,
        "timestamp": event.timestamp,
        "parked": parked,
    }


async def write(conn: AsyncConnection[TupleRow], tables: Tables, planned: Plan) -> None:
    await write_rows(
        conn, tables, _HOLD, [held_row(c.recorded, parked=c.parked) for c in planned.hold]
    )
    await write_rows(
        conn,
        tables,
        _RELEASE,
        [{"aggregate_id": a, "version": v} for a, v in planned.release_through.items()],
    )
    await write_rows(conn, tables, _STORE_CURSORS, planned.cursors)
