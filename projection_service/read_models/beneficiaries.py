"""Read model `beneficiaries`: the primary holder and every dependant ever on a card.

Removal sets removed_at (see the migration for why rows are never deleted); readers of the
current family filter on `removed_at IS NULL`.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from psycopg import AsyncConnection
from psycopg.rows import TupleRow

from domain.events import BeneficiaryAdded, BeneficiaryRemoved, Holder, MedCardIssued
from projection_service.read_models.decoding import Decoded
from projection_service.read_models.rows import Row, recordset, upsert_template, write_rows
from projection_service.read_models.tables import Tables

_COLUMNS = (
    ("id", "uuid"),
    ("medcard_id", "uuid"),
    ("relationship", "text"),
    ("national_id", "text"),
    ("name", "text"),
    ("date_of_birth", "date"),
    ("phone_number", "text"),
    ("added_at", "timestamptz"),
    ("is_primary", "boolean"),
    ("removed_at", "timestamptz"),
    ("version", "int"),
)
_UPSERT = upsert_template("beneficiaries", _COLUMNS, ("id",), guarded=True)

_REMOVE_COLUMNS = (
    ("id", "uuid"),
    ("medcard_id", "uuid"),
    ("removed_at", "timestamptz"),
    ("version", "int"),
)
_REMOVE = f"""
UPDATE {{beneficiaries}} AS b SET removed_at = x.removed_at, version = x.version
FROM {recordset(_REMOVE_COLUMNS)}
WHERE b.id = x.id AND b.medcard_id = x.medcard_id AND b.version < x.version
"""


class Beneficiaries:
    def __init__(self) -> None:
        self._rows: dict[UUID, Row] = {}  # added in this batch
        self._removals: dict[UUID, Row] = {}  # of rows written by earlier batches

    def add(self, item: Decoded) -> None:
        recorded, event = item.recorded, item.event
        card_id, version = recorded.aggregate_id, recorded.version
        if isinstance(event, MedCardIssued):
            self._put(_row(card_id, event.primary_holder, event.issued_at, version, primary=True))
        elif isinstance(event, BeneficiaryAdded):
            self._put(_row(card_id, event.beneficiary, event.at, version, primary=False))
        elif isinstance(event, BeneficiaryRemoved):
            row = self._rows.get(event.beneficiary_id)
            if row is not None:
                row["removed_at"], row["version"] = event.at, version
                return
            self._removals[event.beneficiary_id] = {
                "id": event.beneficiary_id,
                "medcard_id": card_id,
                "removed_at": event.at,
                "version": version,
            }

    def _put(self, row: Row) -> None:
        self._rows[row["id"]] = row
        self._removals.pop(row["id"], None)

    async def write(self, conn: AsyncConnection[TupleRow], tables: Tables) -> None:
        await write_rows(conn, tables, _UPSERT, list(self._rows.values()))
        await write_rows(conn, tables, _REMOVE, list(self._removals.values()))


def _row(card_id: UUID, holder: Holder, at: datetime, version: int, *, primary: bool) -> Row:
    return {
        "id": holder.beneficiary_id,
        "medcard_id": card_id,
        "relationship": holder.relationship,
        "national_id": holder.national_id,
        "name": holder.name,
        "date_of_birth": holder.date_of_birth,
        "phone_number": holder.phone_number,
        "added_at": at,
        "is_primary": primary,
        "removed_at": None,
        "version": version,
    }
