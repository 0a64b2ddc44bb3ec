"""Read model `medcard_holds`: every benefit hold, open until captured or voided.

A placement is a row; its capture or void closes it (status, closed_at, and the capturing
claim). Both are guarded by the card's version, so redelivery and replay change nothing.
Expiry is no event: an open row past `expires_at` is expired, as the reads judge it.
"""

from __future__ import annotations

from psycopg import AsyncConnection
from psycopg.rows import TupleRow

from domain.events import HoldCaptured, HoldPlaced, HoldVoided
from projection_service.read_models.decoding import Decoded
from projection_service.read_models.rows import Row, recordset, upsert_template, write_rows
from projection_service.read_models.tables import Tables

_COLUMNS = (
    ("id", "uuid"),
    ("medcard_id", "uuid"),
    ("prescription_id", "text"),
    ("pharmacy_id", "text"),
    ("beneficiary_id", "uuid"),
    ("amount", "numeric"),
    ("month", "text"),
    ("expires_at", "timestamptz"),
    ("placed_at", "timestamptz"),
    ("status", "text"),
    ("claim_id", "uuid"),
    ("used_amount", "numeric"),
    ("closed_at", "timestamptz"),
    ("position", "bigint"),
    ("version", "int"),
)
_UPSERT = upsert_template("medcard_holds", _COLUMNS, ("id",), guarded=True)
_CLOSE_COLUMNS = (
    ("id", "uuid"),
    ("medcard_id", "uuid"),
    ("status", "text"),
    ("claim_id", "uuid"),
    ("used_amount", "numeric"),
    ("closed_at", "timestamptz"),
    ("version", "int"),
)
_CLOSE = f"""
UPDATE {{medcard_holds}} AS h
SET status = x.status, claim_id = x.claim_id, used_amount = x.used_amount,
    closed_at = x.closed_at, version = x.version
FROM {recordset(_CLOSE_COLUMNS)}
WHERE h.id = x.id AND h.medcard_id = x.medcard_id AND h.version < x.version
"""
_PLACED = HoldPlaced.event_type
_CLOSING = {HoldCaptured.event_type: "captured", HoldVoided.event_type: "voided"}


class Holds:
    def __init__(self) -> None:
        self._placed: dict[str, Row] = {}  # placed in this batch, by hold id
        self._closed: dict[str, Row] = {}  # holds placed by earlier batches, closed in this

    def add(self, item: Decoded) -> None:
        recorded, data = item.recorded, item.data
        if recorded.event_type == _PLACED:
            self._placed[data["hold_id"]] = {
                "id": data["hold_id"],
                "medcard_id": recorded.aggregate_id,
                "prescription_id": data["prescription_id"],
                "pharmacy_id": data["pharmacy_id"],
                "beneficiary_id": data["beneficiary_id"],
                "amount": data["amount"],
                "month": data["month"],
                "expires_at": data["expires_at"],
                "placed_at": data["at"],
                "status": "open",
                "claim_id": None,
                "used_amount": None,
                "closed_at": None,
                "position": recorded.position,
                "version": recorded.version,
            }
            return
        status = _CLOSING.get(recorded.event_type)
        if status is None:
            return
        closed = {
            "id": data["hold_id"],
            "medcard_id": recorded.aggregate_id,
            "status": status,
            "claim_id": data.get("claim_id"),
            "used_amount": data.get("used_amount"),
            "closed_at": data["at"],
            "version": recorded.version,
        }
        placed = self._placed.get(data["hold_id"])
        if placed is None:
            self._closed[data["hold_id"]] = closed
        else:
            placed.update(closed)

    async def write(self, conn: AsyncConnection[TupleRow], tables: Tables) -> None:
        await write_rows(conn, tables, _UPSERT, list(self._placed.values()))
        await write_rows(conn, tables, _CLOSE, list(self._closed.values()))
