"""Read model `ledger_postings`: every leg of every money event (double entry).

Each event's legs sum to zero (domain/postings.py), so any set of whole events does, and the
table as a whole always sums to zero: the invariant an auditor checks first.
"""

from __future__ import annotations

from psycopg import AsyncConnection
from psycopg.rows import TupleRow

from domain.events import (
    ClaimAdjudicated,
    ClaimReversed,
    WalletDebited,
    WalletRefunded,
    WalletToppedUp,
)
from projection_service.read_models.decoding import Decoded
from projection_service.read_models.rows import Row, upsert_template, write_rows
from projection_service.read_models.tables import Tables

_COLUMNS = (
    ("event_id", "uuid"),
    ("leg", "smallint"),
    ("account", "text"),
    ("amount", "numeric"),
    ("aggregate_id", "uuid"),
    ("version", "int"),
    ("position", "bigint"),
    ("at", "timestamptz"),
)
# Postings are facts: a second insert is a redelivery.
_INSERT = upsert_template("ledger_postings", _COLUMNS, ("event_id", "leg"), guarded=False)

_MONEY_EVENTS = frozenset(
    cls.event_type
    for cls in (ClaimAdjudicated, ClaimReversed, WalletToppedUp, WalletDebited, WalletRefunded)
)


class Ledger:
    def __init__(self) -> None:
        self._rows: list[Row] = []

    def add(self, item: Decoded) -> None:
        recorded = item.recorded
        if recorded.event_type not in _MONEY_EVENTS:
            return
        event_id, aggregate_id = recorded.event_id, recorded.aggregate_id
        version, position, at = recorded.version, recorded.position, recorded.timestamp
        self._rows.extend(
            {
                "event_id": event_id,
                "leg": leg,
                "account": posting["account"],
                "amount": posting["amount"],
                "aggregate_id": aggregate_id,
                "version": version,
                "position": position,
                "at": at,
            }
            for leg, posting in enumerate(item.data["postings"], start=1)
        )

    async def write(self, conn: AsyncConnection[TupleRow], tables: Tables) -> None:
        await write_rows(conn, tables, _INSERT, self._rows)
