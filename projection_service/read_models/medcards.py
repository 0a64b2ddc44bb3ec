"""Read model `medcards`: one row per card, advanced by every event of the card's stream.

A batch folds each card's events into one change: a whole row when the card was issued in
the batch, else a patch of absolute values (status, expiry, the latest month's spend), so a
card costs one row in one statement however many of its events the batch holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from uuid import UUID

from psycopg import AsyncConnection
from psycopg.rows import TupleRow

from domain.events import (
    ClaimAdjudicated,
    ClaimReversed,
    MedCardIssued,
    MedCardRenewed,
)
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


@dataclass(slots=True)
class _Change(AggregateChange):  # `row`: the card was issued in this batch
    status: str | None = None  # None: the status is whatever the row says
    renewed: bool = False  # renewed while the status was unknown
    expiry_date: date | None = None
    month: str | None = None
    month_spent: Decimal | None = None


class MedCards:
    def __init__(self) -> None:
        self._changes: dict[UUID, _Change] = {}

    def add(self, item: Decoded) -> None:
        recorded, event = item.recorded, item.event
        if recorded.aggregate_type != "medcard":
            return
        change = change_for(self._changes, recorded, _Change)
        status = STATUS_AFTER.get(type(event))
        if status is not None:
            change.status, change.renewed = status, False
        elif isinstance(event, MedCardIssued):
            change.row = _issued_row(event, recorded.timestamp)
            change.status, change.renewed = event.status, False
        elif isinstance(event, MedCardRenewed):
            change.expiry_date = event.expiry_date
            if change.status == "EXPIRED":
                change.status = "ACTIVE"
            elif change.status is None:
                change.renewed = True
        elif isinstance(event, ClaimAdjudicated | ClaimReversed) and (
            change.month is None or event.month >= change.month
        ):
            change.month, change.month_spent = event.month, event.month_spent_after

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


def _issued_row(event: MedCardIssued, stored_at: datetime) -> Row:
    return {
        "id": event.card_id,
        "user_id": event.user_id,
        "card_number": event.card_number,
        "card_type": event.card_type,
        "monthly_limit": event.monthly_limit,
        "current_month_spent": Decimal("0.00"),
        "copayment_percentage": event.copay_percent,
        "primary_holder": event.primary_holder.model_dump(mode="json"),
        "insurance_provider": event.insurance_provider,
        "policy_number": event.policy_number,
        "expiry_date": event.expiry_date,
        "created_at": stored_at,
        "current_month": None,
        "max_beneficiaries": event.max_beneficiaries,
        "currency": event.currency,
        "issued_at": event.issued_at,
    }
