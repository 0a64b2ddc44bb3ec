"""Read model `medcard_monthly_spend`: what a card spent per benefit month.

Claims and reversals carry the month's absolute total (`month_spent_after`), so the row is
simply the latest event's value: no sums, nothing to double count on redelivery.
"""

from __future__ import annotations

from uuid import UUID

from psycopg import AsyncConnection
from psycopg.rows import TupleRow

from domain.events import ClaimAdjudicated, ClaimReversed
from projection_service.read_models.decoding import Decoded
from projection_service.read_models.rows import Row, upsert_template, write_rows
from projection_service.read_models.tables import Tables

_COLUMNS = (
    ("medcard_id", "uuid"),
    ("month", "text"),
    ("total_spent", "numeric"),
    ("last_updated", "timestamptz"),
    ("version", "int"),
)
_UPSERT = upsert_template("medcard_monthly_spend", _COLUMNS, ("medcard_id", "month"), guarded=True)


# the event type, and the field that says when the month's total changed
_SPENDING = {ClaimAdjudicated.event_type: "claimed_at", ClaimReversed.event_type: "at"}


class MonthlySpend:
    def __init__(self) -> None:
        self._rows: dict[tuple[UUID, str], Row] = {}

    def add(self, item: Decoded) -> None:
        recorded, data = item.recorded, item.data
        when = _SPENDING.get(recorded.event_type)
        if when is not None:
            self._rows[(recorded.aggregate_id, data["month"])] = {
                "medcard_id": recorded.aggregate_id,
                "month": data["month"],
                "total_spent": data["month_spent_after"],
                "last_updated": data[when],
                "version": recorded.version,
            }

    async def write(self, conn: AsyncConnection[TupleRow], tables: Tables) -> None:
        await write_rows(conn, tables, _UPSERT, list(self._rows.values()))
