"""Read model `wallets`: one row per member wallet, its balance and the member's copay consent
as the events say.

Every money event carries `balance_after`, and a consent event the whole consent, so a batch
writes the last ones it saw per wallet: absolute values, which a replay can repeat but never
add twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from psycopg import AsyncConnection
from psycopg.rows import TupleRow

from domain.events import (
    WalletCopayConsentSet,
    WalletDebited,
    WalletOpened,
    WalletRefunded,
    WalletToppedUp,
)
from projection_service.read_models.changes import AggregateChange, change_for
from projection_service.read_models.decoding import Decoded
from projection_service.read_models.rows import Row, recordset, upsert_template, write_rows
from projection_service.read_models.tables import Tables

_COLUMNS = (
    ("id", "uuid"),
    ("owner_user_id", "text"),
    ("currency", "text"),
    ("balance", "numeric"),
    ("opened_at", "timestamptz"),
    ("updated_at", "timestamptz"),
    ("version", "int"),
    ("last_position", "bigint"),
    ("copay_per_claim_limit", "numeric"),
    ("copay_monthly_limit", "numeric"),
    ("copay_consent_set_at", "timestamptz"),
)
_INSERT = upsert_template("wallets", _COLUMNS, ("id",), guarded=True)

_PATCH_COLUMNS = (
    ("id", "uuid"),
    ("balance", "numeric"),
    ("updated_at", "timestamptz"),
    ("version", "int"),
    ("last_position", "bigint"),
    ("copay_per_claim_limit", "numeric"),
    ("copay_monthly_limit", "numeric"),
    ("copay_consent_set_at", "timestamptz"),
)
# NULL: the batch held no money event (balance) or no consent event for the wallet, which
# keep what the row has
_PATCH = f"""
UPDATE {{wallets}} AS w
SET balance = coalesce(x.balance, w.balance), updated_at = x.updated_at, version = x.version,
    last_position = x.last_position,
    copay_per_claim_limit = coalesce(x.copay_per_claim_limit, w.copay_per_claim_limit),
    copay_monthly_limit = coalesce(x.copay_monthly_limit, w.copay_monthly_limit),
    copay_consent_set_at = coalesce(x.copay_consent_set_at, w.copay_consent_set_at)
FROM {recordset(_PATCH_COLUMNS)}
WHERE w.id = x.id AND w.version < x.version
"""
_NO_CONSENT: Row = {
    "copay_per_claim_limit": "0.00",
    "copay_monthly_limit": "0.00",
    "copay_consent_set_at": None,
}
_OPENED, _CONSENT = WalletOpened.event_type, WalletCopayConsentSet.event_type
_MONEY = frozenset(cls.event_type for cls in (WalletToppedUp, WalletDebited, WalletRefunded))


@dataclass(slots=True)
class _Change(AggregateChange):  # `row`: the wallet was opened in this batch
    balance: str | None = None  # as the payloads say it: an amount's string
    consent: Mapping[str, Any] | None = None  # the batch's last consent event's payload

    def consent_columns(self, *, opened: bool) -> Row:
        """A new row starts with no consent; a patch keeps the row's unless the batch set one."""
        if self.consent is None:
            return _NO_CONSENT if opened else dict.fromkeys(_NO_CONSENT)
        return {
            "copay_per_claim_limit": self.consent["per_claim_limit"],
            "copay_monthly_limit": self.consent["monthly_limit"],
            "copay_consent_set_at": self.consent["at"],
        }


class Wallets:
    def __init__(self) -> None:
        self._changes: dict[UUID, _Change] = {}

    def add(self, item: Decoded) -> None:
        recorded, data = item.recorded, item.data
        if recorded.aggregate_type != "wallet":
            return
        change = change_for(self._changes, recorded, _Change)
        event_type = recorded.event_type
        if event_type == _OPENED:
            change.row = {
                "id": data["wallet_id"],
                "owner_user_id": data["owner_user_id"],
                "currency": data["currency"],
                "balance": "0.00",
                "opened_at": data["at"],
            }
        elif event_type in _MONEY:
            change.balance = data["balance_after"]
        elif event_type == _CONSENT:
            change.consent = data

    async def write(self, conn: AsyncConnection[TupleRow], tables: Tables) -> None:
        inserts: list[Row] = []
        patches: list[Row] = []
        for wallet_id, change in self._changes.items():
            consent = change.consent_columns(opened=change.row is not None)
            if change.row is not None:
                balance = change.row["balance"] if change.balance is None else change.balance
                inserts.append({**change.row, **change.stamp(), "balance": balance, **consent})
            else:
                patches.append(
                    {"id": wallet_id, "balance": change.balance, **change.stamp(), **consent}
                )
        await write_rows(conn, tables, _INSERT, inserts)
        await write_rows(conn, tables, _PATCH, patches)
