"""Read model `wallets`: one row per member wallet, its balance as the events say.

Every money event carries `balance_after`, so a batch writes the last one it saw per wallet:
an absolute value, which a replay can repeat but never add twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from uuid import UUID

from psycopg import AsyncConnection
from psycopg.rows import TupleRow

from domain.events import WalletDebited, WalletOpened, WalletRefunded, WalletToppedUp
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
)
_INSERT = upsert_template("wallets", _COLUMNS, ("id",), guarded=True)

_PATCH_COLUMNS = (
    ("id", "uuid"),
    ("balance", "numeric"),
    ("updated_at", "timestamptz"),
    ("version", "int"),
    ("last_position", "bigint"),
)
# balance NULL: the batch held no money event for the wallet (none exist today, but a new
# event type must not zero the balance)
_PATCH = f"""
UPDATE {{wallets}} AS w
SET balance = coalesce(x.balance, w.balance), updated_at = x.updated_at, version = x.version,
    last_position = x.last_position
FROM {recordset(_PATCH_COLUMNS)}
WHERE w.id = x.id AND w.version < x.version
"""


@dataclass(slots=True)
class _Change(AggregateChange):  # `row`: the wallet was opened in this batch
    balance: Decimal | None = None


class Wallets:
    def __init__(self) -> None:
        self._changes: dict[UUID, _Change] = {}

    def add(self, item: Decoded) -> None:
        recorded, event = item.recorded, item.event
        if recorded.aggregate_type != "wallet":
            return
        change = change_for(self._changes, recorded, _Change)
        if isinstance(event, WalletOpened):
            change.row = {
                "id": event.wallet_id,
                "owner_user_id": event.owner_user_id,
                "currency": event.currency,
                "balance": Decimal("0.00"),
                "opened_at": event.at,
            }
        elif isinstance(event, WalletToppedUp | WalletDebited | WalletRefunded):
            change.balance = event.balance_after

    async def write(self, conn: AsyncConnection[TupleRow], tables: Tables) -> None:
        inserts: list[Row] = []
        patches: list[Row] = []
        for wallet_id, change in self._changes.items():
            if change.row is not None:
                balance = change.row["balance"] if change.balance is None else change.balance
                inserts.append({**change.row, **change.stamp(), "balance": balance})
            else:
                patches.append({"id": wallet_id, "balance": change.balance, **change.stamp()})
        await write_rows(conn, tables, _INSERT, inserts)
        await write_rows(conn, tables, _PATCH, patches)
