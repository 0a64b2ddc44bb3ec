"""Read model `beneficiaries`: the primary holder and every dependant ever on a card.

Removal sets removed_at (see the migration for why rows are never deleted); readers of the
current family filter on `removed_at IS NULL`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from uuid import UUID

from psycopg import AsyncConnection
from psycopg.rows import TupleRow

from domain.events import BeneficiaryAdded, BeneficiaryRemoved, MedCardIssued
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


_ISSUED, _ADDED = MedCardIssued.event_type, BeneficiaryAdded.event_type
_REMOVED = BeneficiaryRemoved.event_type


class Beneficiaries:
    def __init__(self) -> None:
        self._rows: dict[str, Row] = {}  # added in this batch, by beneficiary id
        self._removals: dict[str, Row] = {}  # of rows written by earlier batches

    def add(self, item: Decoded) -> None:
        recorded, data = item.recorded, item.data
        card_id, version, event_type = recorded.aggregate_id, recorded.version, recorded.event_type
        if event_type == _ISSUED:
            self._put(_row(card_id, data["primary_holder"], data["issued_at"], version, True))
        elif event_type == _ADDED:
            self._put(_row(card_id, data["beneficiary"], data["at"], version, False))
        elif event_type == _REMOVED:
            beneficiary_id = data["beneficiary_id"]
            row = self._rows.get(beneficiary_id)
            if row is not None:
                row["removed_at"], row["version"] = data["at"], version
                return
            self._removals[beneficiary_id] = {
                "id": beneficiary_id,
                "medcard_id": card_id,
                "removed_at": data["at"],
                "version": version,
            }

    def _put(self, row: Row) -> None:
        self._rows[row["id"]] = row
        self._removals.pop(row["id"], None)

    async def write(self, conn: AsyncConnection[TupleRow], tables: Tables) -> None:
        await write_rows(conn, tables, _UPSERT, list(self._rows.values()))
        await write_rows(conn, tables, _REMOVE, list(self._removals.values()))


def _row(card_id: UUID, holder: Mapping[str, Any], at: str, version: int, primary: bool) -> Row:
    return {
        "id": holder["beneficiary_id"],
        "medcard_id": card_id,
        "relationship": holder["relationship"],
        "national_id": holder.get("national_id"),
        "name": holder.get("name"),
        "date_of_birth": holder.get("date_of_birth"),
        "phone_number": holder.get("phone_number"),
        "added_at": at,
        "is_primary": primary,
        "removed_at": None,
        "version": version,
    }
