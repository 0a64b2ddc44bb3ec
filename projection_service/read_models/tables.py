"""Which physical tables the projector writes: the live ones, or their `__shadow` twins.

The projector's SQL names tables as `{medcards}`-style placeholders, filled per `Tables`, so
the very same code builds the live read models from Kafka and the shadow ones during a
rebuild (rebuild.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import LiteralString

from psycopg import sql

# Parents before children (foreign keys): the order to create, fill and swap them in.
PROJECTED_TABLES: tuple[str, ...] = (
    "medcards",
    "beneficiaries",
    "prescription_claims",
    "prescription_items",
    "fraud_flags",
    "medcard_monthly_spend",
    "medcard_holds",
    "wallets",
    "wallet_transactions",
    "ledger_postings",
    "projection_streams",
    "projection_held_events",
)

SHADOW_SUFFIX = "__shadow"


@dataclass(frozen=True, slots=True)
class Tables:
    """A mapping from read-model name to physical table: `name + suffix`."""

    suffix: str = ""

    def name(self, table: str) -> str:
        if table not in PROJECTED_TABLES:
            raise KeyError(table)
        return table + self.suffix

    def identifier(self, table: str) -> sql.Identifier:
        return sql.Identifier(self.name(table))

    def sql(self, template: LiteralString) -> sql.Composed:
        """`template` with every `{table}` placeholder replaced by this mapping's table."""
        return _compose(template, self.suffix)


LIVE = Tables()
SHADOW = Tables(SHADOW_SUFFIX)


@lru_cache(maxsize=512)
def _compose(template: LiteralString, suffix: str) -> sql.Composed:
    # Composing costs more than executing a prepared statement: do it once per template.
    names = {table: sql.Identifier(table + suffix) for table in PROJECTED_TABLES}
    return sql.SQL(template).format(**names)
