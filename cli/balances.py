"""`healthpay balances migrate|verify`: the CQL balance store's schema, and a check of it
against the event store (the source of truth).

verify compares every wallet's balance with the latest `balance_after` of its stream (0 for
a wallet with no money movement yet) and every card-month's total with the latest
`month_spent_after` of that card and month, in both directions (missing and extra rows).
It reads whole tables: an operator's check, not something to run per request. The latest
event of each key is read through domain/upcasting.py like every other reader of the store
(only the card-month grouping reads `month` in SQL: a field kept by every version).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TextIO

import psycopg

from domain.upcasting import upcast
from infrastructure.cassandra.migrations import migrate as migrate_cql
from infrastructure.cassandra.session import CqlConfig, connect
from infrastructure.eventstore.log_queries import latest_per_card_month, latest_per_wallet
from infrastructure.postgres.locks import CQL_MIGRATIONS, advisory_lock
from infrastructure.settings import Settings
from projection_service.balances.projector import SPEND_EVENTS, WALLET_BALANCE_EVENTS, WALLET_OPENED
from projection_service.balances.versions import current_version, table_name

# What the balance projection writes from, so verify folds exactly what it projects.
_WALLET_EVENTS = sorted({WALLET_OPENED} | WALLET_BALANCE_EVENTS)
_SPEND_EVENTS = sorted(SPEND_EVENTS)


Key = tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class Difference:
    table: str
    key: Key
    expected: Decimal | None  # None: no such row in the event store
    actual: Decimal | None  # None: no such row in CQL

    def __str__(self) -> str:
        where = " ".join(str(part) for part in self.key)
        return f"{self.table} {where}: event store {self.expected}, CQL {self.actual}"


def expected_from_event_store(conninfo: str) -> tuple[dict[Key, Decimal], dict[Key, Decimal]]:
    with psycopg.connect(conninfo, autocommit=True) as conn:
        wallets = {
            (wallet,): Decimal(upcast(kind, version, data).get("balance_after", "0"))
            for wallet, kind, version, data in latest_per_wallet(conn, _WALLET_EVENTS)
        }  # wallet.opened has no balance_after: nothing moved yet
        months = {
            (card, month): Decimal(upcast(kind, version, data)["month_spent_after"])
            for card, month, kind, version, data in latest_per_card_month(conn, _SPEND_EVENTS)
        }
    return wallets, months


def actual_from_cql(session: Any, keyspace: str) -> tuple[dict[Key, Decimal], dict[Key, Decimal]]:
    """The tables of the version the registry names now (see balances/versions.py)."""
    version = current_version(session, keyspace)
    wallet_table = table_name("wallet_balances", version)
    month_table = table_name("medcard_monthly_spend", version)
    wallets = {
        (row.wallet_id,): row.balance
        for row in session.execute(f"SELECT wallet_id, balance FROM {keyspace}.{wallet_table}")
    }
    months = {
        (row.medcard_id, row.month): row.total_spent
        for row in session.execute(
            f"SELECT medcard_id, month, total_spent FROM {keyspace}.{month_table}"
        )
    }
    return wallets, months


def compare(
    table: str, expected: dict[Key, Decimal], actual: dict[Key, Decimal]
) -> list[Difference]:
    keys: Iterable[Key] = sorted(set(expected) | set(actual), key=lambda k: tuple(map(str, k)))
    return [
        Difference(table, key, expected.get(key), actual.get(key))
        for key in keys
        if expected.get(key) is None
        or actual.get(key) is None
        or expected[key] != actual[key]  # numeric: 350.0 == 350.00
    ]


def find_differences(settings: Settings, config: CqlConfig | None = None) -> list[Difference]:
    config = config or CqlConfig.from_settings(settings)
    exp_wallets, exp_months = expected_from_event_store(settings.postgres_url)
    with connect(config) as cql:
        act_wallets, act_months = actual_from_cql(cql.session, config.keyspace)
    return compare("wallet_balances", exp_wallets, act_wallets) + compare(
        "medcard_monthly_spend", exp_months, act_months
    )


def verify(settings: Settings, config: CqlConfig | None = None, out: TextIO | None = None) -> int:
    """0 when CQL matches the event store, 1 (after printing each difference) otherwise."""
    out = out or sys.stdout
    differences = find_differences(settings, config)
    for difference in differences:
        print(difference, file=out)
    if differences:
        print(f"{len(differences)} difference(s)", file=out)
        return 1
    print("balances match the event store", file=out)
    return 0


def migrate(settings: Settings, config: CqlConfig | None = None) -> int:
    """The CQL migrations, one migrator at a time (every pod's deploy step may run this)."""
    config = config or CqlConfig.from_settings(settings)
    with advisory_lock(settings.postgres_url, CQL_MIGRATIONS), connect(config) as cql:
        applied = migrate_cql(cql.session, config)
    print("applied: " + (", ".join(applied) if applied else "nothing (up to date)"))
    return 0
