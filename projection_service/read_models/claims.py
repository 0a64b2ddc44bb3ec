"""Read models `prescription_claims` and `prescription_items`.

Every adjudication is a claim row (rejections too); a reversal turns its status to
'reversed' and keeps the decision. Items are written once, with their claim.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import TupleRow

from domain.events import ClaimAdjudicated, ClaimReversed
from projection_service.read_models.decoding import Decoded
from projection_service.read_models.rows import Row, recordset, upsert_template, write_rows
from projection_service.read_models.tables import Tables

_CLAIM_COLUMNS = (
    ("id", "uuid"),
    ("medcard_id", "uuid"),
    ("prescription_id", "text"),
    ("pharmacy_id", "text"),
    ("beneficiary_id", "uuid"),
    ("total_amount", "numeric"),
    ("covered_amount", "numeric"),
    ("copayment_amount", "numeric"),
    ("claimed_at", "timestamptz"),
    ("decision", "text"),
    ("status", "text"),
    ("reasons", "text[]"),
    ("month", "text"),
    ("copay_percent", "numeric"),
    ("monthly_limit", "numeric"),
    ("month_spent_after", "numeric"),
    ("remaining_after", "numeric"),
    ("copayment_paid_from_wallet", "numeric"),
    ("wallet_id", "uuid"),
    ("reversed_at", "timestamptz"),
    ("reversal_reason", "text"),
    ("position", "bigint"),
    ("version", "int"),
)
_UPSERT_CLAIMS = upsert_template("prescription_claims", _CLAIM_COLUMNS, ("id",), guarded=True)

_ITEM_COLUMNS = (
    ("id", "uuid"),
    ("claim_id", "uuid"),
    ("line_no", "int"),
    ("drug_code", "text"),
    ("drug_name", "text"),
    ("quantity", "int"),
    ("unit_price", "numeric"),
    ("total_price", "numeric"),
    ("covered_amount", "numeric"),
    ("copayment_amount", "numeric"),
    ("days_supply", "int"),
    ("version", "int"),
)
# Items never change after adjudication: a second insert is a redelivery.
_INSERT_ITEMS = upsert_template("prescription_items", _ITEM_COLUMNS, ("id",), guarded=False)

_REVERSAL_COLUMNS = (
    ("id", "uuid"),
    ("medcard_id", "uuid"),
    ("reversed_at", "timestamptz"),
    ("reversal_reason", "text"),
    ("version", "int"),
)
_REVERSE = f"""
UPDATE {{prescription_claims}} AS c
SET status = 'reversed', reversed_at = x.reversed_at, reversal_reason = x.reversal_reason,
    version = x.version
FROM {recordset(_REVERSAL_COLUMNS)}
WHERE c.id = x.id AND c.medcard_id = x.medcard_id AND c.version < x.version
"""


_ADJUDICATED, _REVERSED = ClaimAdjudicated.event_type, ClaimReversed.event_type


class Claims:
    def __init__(self) -> None:
        self._claims: dict[str, Row] = {}  # adjudicated in this batch, by claim id
        self._items: list[Row] = []
        self._reversals: dict[str, Row] = {}  # of claims written by earlier batches

    def add(self, item: Decoded) -> None:
        recorded, data = item.recorded, item.data
        if recorded.event_type == _ADJUDICATED:
            claim_id, version = data["claim_id"], recorded.version
            self._claims[claim_id] = _claim_row(
                data, recorded.aggregate_id, recorded.position, version
            )
            self._items.extend(
                {
                    "id": split["item_id"],
                    "claim_id": claim_id,
                    "line_no": line_no,
                    "drug_code": split["drug_code"],
                    "drug_name": split["drug_name"],
                    "quantity": split["quantity"],
                    "unit_price": split["unit_price"],
                    "total_price": split["total_price"],
                    "covered_amount": split["covered_amount"],
                    "copayment_amount": split["copayment_amount"],
                    "days_supply": split["days_supply"],  # null in a v1 event (upcast)
                    "version": version,
                }
                for line_no, split in enumerate(data["items"], start=1)
            )
        elif recorded.event_type == _REVERSED:
            reversal = {
                "id": data["claim_id"],
                "medcard_id": recorded.aggregate_id,
                "reversed_at": data["at"],
                "reversal_reason": data["reason"],
                "version": recorded.version,
            }
            claim = self._claims.get(data["claim_id"])
            if claim is None:
                self._reversals[data["claim_id"]] = reversal
            else:
                claim.update(reversal, status="reversed")

    async def write(self, conn: AsyncConnection[TupleRow], tables: Tables) -> None:
        await write_rows(conn, tables, _UPSERT_CLAIMS, list(self._claims.values()))
        await write_rows(conn, tables, _INSERT_ITEMS, self._items)
        await write_rows(conn, tables, _REVERSE, list(self._reversals.values()))


def _claim_row(data: Mapping[str, Any], card_id: object, position: int, version: int) -> Row:
    return {
        "id": data["claim_id"],
        "medcard_id": card_id,
        "prescription_id": data["prescription_id"],
        "pharmacy_id": data["pharmacy_id"],
        "beneficiary_id": data["beneficiary_id"],
        "total_amount": data["total_amount"],
        "covered_amount": data["covered_amount"],
        "copayment_amount": data["copayment_amount"],
        "claimed_at": data["claimed_at"],
        "decision": data["decision"],
        "status": data["decision"],
        "reasons": data["reasons"],
        "month": data["month"],
        "copay_percent": data["copay_percent"],
        "monthly_limit": data["monthly_limit"],
        "month_spent_after": data["month_spent_after"],
        "remaining_after": data["remaining_after"],
        "copayment_paid_from_wallet": data["copayment_paid_from_wallet"],
        "wallet_id": data["wallet_id"],
        "reversed_at": None,
        "reversal_reason": None,
        "position": position,
        "version": version,
    }
