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
    Posting,
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

_MONEY_EVENTS = (ClaimAdjudicated, ClaimReversed, WalletToppedUp, WalletDebited, WalletRefunded)


class Ledger:
    def __init__(self) -> None:
        self._rows: list[Row] = []

    def add(self, item: Decoded) -> None:
        recorded, event = item.recorded, item.event
        if not isinstance(event, _MONEY_EVENTS):
            return
        postings: tuple[Posting, ...] = event.postings
        self._rows.extend(
            {
                "event_id": recorded.event_id,
                "leg": leg,
                "account": posting.account,
                "amount": posting.amount,
                "aggregate_id": recorded.aggregate_id,
                "version": recorded.version,
                "position": recorded.position,
                "at": recorded.timestamp,
            }
            for leg, posting in enumerate(postings, start=1)
        )

    async def write(self, conn: AsyncConnection[TupleRow], tables: Tables) -> None:
        await write_rows(conn, tables, _INSERT, self._rows)
