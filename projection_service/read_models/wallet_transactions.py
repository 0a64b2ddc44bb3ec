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
    ("paid_at", "timestamptz"),
    ("version", "int"),
    ("position", "bigint"),
)
# A transaction is a fact: it never changes, so a second insert is a redelivery.
_INSERT = upsert_template("wallet_transactions", _COLUMNS, ("id", "type"), guarded=False)
_TOPPED_UP, _DEBITED = WalletToppedUp.event_type, WalletDebited.event_type
_REFUNDED, _DECLINED = WalletRefunded.event_type, WalletCopayDeclined.event_type


class WalletTransactions:
    def __init__(self) -> None:
        self._rows: list[Row] = []

    def add(self, item: Decoded) -> None:
        recorded, data = item.recorded, item.data
        event_type = recorded.event_type
        if event_type == _TOPPED_UP:
            kind, gateway = "topup", data["gateway"]
            reference, purpose, tx_id = data["gateway_reference"], None, data["topup_id"]
        elif event_type == _DEBITED:
            kind, gateway = "debit", None
            reference, purpose, tx_id = data["reference"], data["purpose"], data["debit_id"]
        elif event_type == _REFUNDED:
            kind, gateway = "refund", None
            reference, purpose, tx_id = data["debit_id"], data["reason"], data["refund_id"]
        elif event_type == _DECLINED:
            kind, gateway = "declined", None
            reference, purpose, tx_id = data["claim_id"], data["reason"], data["claim_id"]
        else:
            return
        balance = data["balance"] if event_type == _DECLINED else data["balance_after"]
        # `data` is the current version (decoding upcasts): a v1 top-up's paid_at is null.
        paid_at = data["paid_at"] if event_type == _TOPPED_UP else None
        self._rows.append(
            {
                "id": tx_id,
                "type": kind,
                "wallet_id": recorded.aggregate_id,
                "amount": data["amount"],
                "balance_after": balance,
                "gateway": gateway,
                "reference": reference,
                "purpose": purpose,
                "at": data["at"],
                "paid_at": paid_at,
                "version": recorded.version,
                "position": recorded.position,
            }
        )

    async def write(self, conn: AsyncConnection[TupleRow], tables: Tables) -> None:
        await write_rows(conn, tables, _INSERT, self._rows)
