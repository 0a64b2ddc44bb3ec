"""Read model `fraud_flags`: the velocity flags claims carry (domain/medcard/velocity.py).

One row per (claim, flag), written once with the claim's adjudication; a redelivery inserts
nothing. Only claim events with flags make rows, so most batches write nothing here.
"""

from __future__ import annotations

from psycopg import AsyncConnection
from psycopg.rows import TupleRow

from domain.events import ClaimAdjudicated
from projection_service.read_models.decoding import Decoded
from projection_service.read_models.rows import Row, upsert_template, write_rows
from projection_service.read_models.tables import Tables

_COLUMNS = (
    ("claim_id", "uuid"),
    ("flag", "text"),
    ("medcard_id", "uuid"),
    ("beneficiary_id", "uuid"),
    ("pharmacy_id", "text"),
    ("total_amount", "numeric"),
    ("claimed_at", "timestamptz"),
    ("position", "bigint"),
    ("version", "int"),
)
_INSERT = upsert_template("fraud_flags", _COLUMNS, ("claim_id", "flag"), guarded=False)
_ADJUDICATED = ClaimAdjudicated.event_type


class FraudFlags:
    def __init__(self) -> None:
        self._rows: list[Row] = []

    def add(self, item: Decoded) -> None:
        recorded, data = item.recorded, item.data
        if recorded.event_type != _ADJUDICATED or not data["flags"]:
            return
        self._rows.extend(
            {
                "claim_id": data["claim_id"],
                "flag": flag,
                "medcard_id": recorded.aggregate_id,
                "beneficiary_id": data["beneficiary_id"],
                "pharmacy_id": data["pharmacy_id"],
                "total_amount": data["total_amount"],
                "claimed_at": data["claimed_at"],
                "position": recorded.position,
                "version": recorded.version,
            }
            for flag in data["flags"]
        )

    async def write(self, conn: AsyncConnection[TupleRow], tables: Tables) -> None:
        await write_rows(conn, tables, _INSERT, self._rows)
