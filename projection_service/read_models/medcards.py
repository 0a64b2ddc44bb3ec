"""Read model `medcards`: one row per card, advanced by every event of the card's stream.

A batch folds each card's events into one change: a whole row when the card was issued in
the batch, else a patch of absolute values (status, expiry, the latest month's spend), so a
card costs one row in one statement however many of its events the batch holds.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg import AsyncConnection
from psycopg.rows import TupleRow

from domain.events import ClaimAdjudicated, ClaimReversed, Holder, MedCardIssued, MedCardRenewed
from domain.medcard.state import STATUS_AFTER
from projection_service.read_models.changes import AggregateChange, change_for
from projection_service.read_models.decoding import Decoded
from projection_service.read_models.rows import Row, recordset, upsert_template, write_rows
from projection_service.read_models.tables import Tables

_COLUMNS = (
    ("id", "uuid"),
    ("user_id", "text"),
    ("card_number", "text"),
    ("card_type", "text"),
    ("status", "text"),
    ("monthly_limit", "numeric"),
    ("current_month_spent", "numeric"),
    ("copayment_percentage", "numeric"),
    ("primary_holder", "jsonb"),
    ("insurance_provider", "text"),
    ("policy_number", "text"),
    ("expiry_date", "date"),
    ("created_at", "timestamptz"),
    ("updated_at", "timestamptz"),
    ("current_month", "text"),
    ("max_beneficiaries", "int"),
    ("currency", "text"),
    ("issued_at", "timestamptz"),
    ("version", "int"),
    ("last_position", "bigint"),
)
_INSERT = upsert_template("medcards", _COLUMNS, ("id",), guarded=True)

_PATCH_COLUMNS = (
    ("id", "uuid"),
    ("status", "text"),
    ("renewed", "boolean"),
    ("expiry_date", "date"),
    ("month", "text"),
    ("month_spent", "numeric"),
    ("version", "int"),
    ("last_position", "bigint"),
    ("updated_at", "timestamptz"),
)
# A renewal revives an EXPIRED card; when the batch does not say what the status was before,
# the row does. A month's spend replaces the current one unless it is of an earlier month
# (a reversal of last month's claim must not move current_month back).
_NEWER_MONTH = "x.month IS NOT NULL AND (m.current_month IS NULL OR x.month >= m.current_month)"
_PATCH = f"""
UPDATE {{medcards}} AS m SET
  status = CASE WHEN x.status IS NOT NULL THEN x.status
                WHEN x.renewed AND m.status = 'EXPIRED' THEN 'ACTIVE'
                ELSE m.status END,
  expiry_date = coalesce(x.expiry_date, m.expiry_date),
  current_month = CASE WHEN {_NEWER_MONTH} THEN x.month ELSE m.current_month END,
  current_month_spent = CASE WHEN {_NEWER_MONTH} THEN x.month_spent
                             ELSE m.current_month_spent END,
  version = x.version, last_position = x.last_position, updated_at = x.updated_at
FROM {recordset(_PATCH_COLUMNS)}
WHERE m.id = x.id AND m.version < x.version
"""


_STATUS_AFTER = {cls.event_type: status for cls, status in STATUS_AFTER.items()}
_ISSUED, _RENEWED = MedCardIssued.event_type, MedCardRenewed.event_type
_SPENDING = frozenset((ClaimAdjudicated.event_type, ClaimReversed.event_type))


@dataclass(slots=True)
class _Change(AggregateChange):  # `row`: the card was issued in this batch
    status: str | None = None  # None: the status is whatever the row says
    renewed: bool = False  # renewed while the status was unknown
    expiry_date: str | None = None  # payloads' JSON form: ISO dates, amounts as strings
    month: str | None = None
    month_spent: str | None = None


class MedCards:
    def __init__(self) -> None:
        self._changes: dict[UUID, _Change] = {}

    def add(self, item: Decoded) -> None:
        recorded, data = item.recorded, item.data
        if recorded.aggregate_type != "medcard":
            return
        change = change_for(self._changes, recorded, _Change)
        event_type = recorded.event_type
        status = _STATUS_AFTER.get(event_type)
        if status is not None:
            change.status, change.renewed = status, False
        elif event_type == _ISSUED:
            change.row = _issued_row(data, recorded.timestamp)
            change.status, change.renewed = data["status"], False
        elif event_type == _RENEWED:
            change.expiry_date = data["expiry_date"]
            if change.status == "EXPIRED":
                change.status = "ACTIVE"
            elif change.status is None:
                change.renewed = True
        elif event_type in _SPENDING and (change.month is None or data["month"] >= change.month):
            change.month, change.month_spent = data["month"], data["month_spent_after"]

    async def write(self, conn: AsyncConnection[TupleRow], tables: Tables) -> None:
        inserts: list[Row] = []
        patches: list[Row] = []
        for card_id, change in self._changes.items():
            if change.row is not None:
                row = {**change.row, **change.stamp(), "status": change.status}
                if change.expiry_date is not None:
                    row["expiry_date"] = change.expiry_date
                if change.month is not None:
                    row["current_month"] = change.month
                    row["current_month_spent"] = change.month_spent
                inserts.append(row)
            else:
                patches.append(
                    {
                        "id": card_id,
                        "status": change.status,
                        "renewed": change.renewed,
                        "expiry_date": change.expiry_date,
                        "month": change.month,
                        "month_spent": change.month_spent,
                        **change.stamp(),
                    }
                )
        await write_rows(conn, tables, _INSERT, inserts)
        await write_rows(conn, tables, _PATCH, patches)


_HOLDER_FIELDS = tuple(Holder.model_fields)


def _issued_row(data: Mapping[str, Any], stored_at: datetime) -> Row:
    holder = data["primary_holder"]
    return {
        "id": data["card_id"],
        "user_id": data["user_id"],
        "card_number": data["card_number"],
        "card_type": data["card_type"],
        "monthly_limit": data["monthly_limit"],
        "current_month_spent": "0.00",
        "copayment_percentage": data["copay_percent"],
        # every field, as the model dumps it (a payload may leave out the optional ones)
        "primary_holder": {name: holder.get(name) for name in _HOLDER_FIELDS},
        "insurance_provider": data["insurance_provider"],
        "policy_number": data["policy_number"],
        "expiry_date": data["expiry_date"],
        "created_at": stored_at,
        "current_month": None,
        "max_beneficiaries": data["max_beneficiaries"],
        "currency": data["currency"],
        "issued_at": data["issued_at"],
    }
