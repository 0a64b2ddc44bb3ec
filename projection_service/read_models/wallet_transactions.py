"""Read model `wallet_transactions`: a wallet's statement, one row per money event, and one per
claim copayment the wallet declined (the member sees why; the balance stays)."""

from __future__ import annotations

from psycopg import AsyncConnection
from psycopg.rows import TupleRow

from domain.events import WalletCopayDeclined, WalletDebited, WalletRefunded, WalletToppedUp
from projection_service.read_models.decoding import Decoded
from projection_service.read_models.rows import Row, upsert_template, write_rows
from projection_service.read_models.tables import Tables

_COLUMNS = (
    ("id", "uuid"),
    ("type", "text"),
    ("wallet_id", "uuid"),
    ("amount", "numeric"),
    ("balance_after", "numeric"),
    ("gateway", "text"),
    ("reference", "text"),
    ("purpose", "text"),
    ("at", "timestamptz"),
    ("version", "int"),
    ("position", "bigint"),
)
# A transaction is a fact: it never changes, so a second insert is a redelivery.
_INSERT = upsert_template("wallet_transactions", _COLUMNS, ("id", "type"), guarded=False)


class WalletTransactions:
    def __init__(self) -> None:
        self._rows: list[Row] = []

    def add(self, item: Decoded) -> None:
        recorded, event = item.recorded, item.event
        if isinstance(event, WalletToppedUp):
            kind, gateway = "topup", event.gateway
            reference, purpose, tx_id = event.gateway_reference, None, event.topup_id
        elif isinstance(event, WalletDebited):
            kind, gateway = "debit", None
            reference, purpose, tx_id = event.reference, event.purpose, event.debit_id
        elif isinstance(event, WalletRefunded):
            kind, gateway = "refund", None
            reference, purpose, tx_id = str(event.debit_id), event.reason, event.refund_id
        elif isinstance(event, WalletCopayDeclined):
            kind, gateway = "declined", None
            reference, purpose, tx_id = str(event.claim_id), event.reason, event.claim_id
        else:
            return
        balance = event.balance if isinstance(event, WalletCopayDeclined) else event.balance_after
        self._rows.append(
            {
                "id": tx_id,
                "type": kind,
                "wallet_id": recorded.aggregate_id,
                "amount": event.amount,
                "balance_after": balance,
                "gateway": gateway,
                "reference": reference,
                "purpose": purpose,
                "at": event.at,
                "version": recorded.version,
                "position": recorded.position,
            }
        )

    async def write(self, conn: AsyncConnection[TupleRow], tables: Tables) -> None:
        await write_rows(conn, tables, _INSERT, self._rows)
