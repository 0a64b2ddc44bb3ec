"""What the balance tests share: a migrated CQL keyspace, a seeded event store, snapshots."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import psycopg

from infrastructure.cassandra.session import CqlConfig, parse_hosts
from infrastructure.eventstore.port import RecordedEvent
from infrastructure.eventstore.rows import EVENT_COLUMNS, recorded_event
from projection_service.balances.versions import table_name
from tests.api.support import (
    API,
    Api,
    Tokens,
    api_settings,
    claim,
    created,
    done,
    issue_card,
    open_wallet,
    top_up,
)
from tests.integration.cassandra_harness import CassandraHarness

TABLES = ("wallet_balances", "medcard_monthly_spend", "wallet_entries", "medcard_spend_entries")
_EVENTS = f"SELECT {EVENT_COLUMNS} FROM events ORDER BY position"


def cql_config(harness: CassandraHarness, keyspace: str) -> CqlConfig:
    return CqlConfig(parse_hosts(harness.hosts), keyspace, local_dc=harness.datacenter)


@dataclass(frozen=True, slots=True)
class Seeded:
    card_id: str
    wallet_id: str
    month_spent: Decimal  # expected card-month total
    balance: Decimal  # expected wallet balance


async def seed(api: Api) -> Seeded:
    """Through the in-process command service: two claims, one reversed; a wallet topped up
    twice and debited once."""
    tokens = Tokens(api_settings())
    card = await issue_card(api, tokens.admin(), "balances-user")
    first = created(await claim(api, tokens.pharmacy(), card["id"], "rx-bal-1", "350.00"))
    created(await claim(api, tokens.pharmacy(), card["id"], "rx-bal-2", "100.00"))
    done(
        await api.client.post(
            f"{API}/medcards/{card['id']}/claims/{first['claimId']}/reversal",
            json={"reason": "returned"},
            headers=tokens.pharmacy(),
        )
    )
    wallet = await open_wallet(api, tokens.ops(), "balances-user")
    created(await top_up(api, tokens.ops(), wallet["id"], "500.00", "fawry-bal-1"))
    done(
        await api.client.post(
            f"{API}/wallets/{wallet['id']}/debits",
            json={"amount": "120.50", "reference": "order-1"},
            headers=tokens.ops(),
        )
    )
    created(await top_up(api, tokens.ops(), wallet["id"], "30.00", "fawry-bal-2"))
    # 350 and 100 at 10% copay: 315 + 90 covered, then 315 restored.
    return Seeded(card["id"], wallet["id"], Decimal("90.00"), Decimal("409.50"))


def recorded_events(conninfo: str) -> list[RecordedEvent]:
    with psycopg.connect(conninfo, autocommit=True) as conn:
        return [recorded_event(row) for row in conn.execute(_EVENTS).fetchall()]


SNAPSHOT_COLUMNS = {
    "wallet_balances": "wallet_id, balance, currency, last_updated, version, "
    "WRITETIME(balance), WRITETIME(currency)",
    "medcard_monthly_spend": "medcard_id, month, total_spent, last_updated, version, "
    "WRITETIME(total_spent)",
    "wallet_entries": "wallet_id, version, event_id, event_type, amount, balance_after, "
    "occurred_at, WRITETIME(balance_after)",
    "medcard_spend_entries": "medcard_id, month, version, event_id, event_type, claim_id, "
    "decision, amount, month_spent_after, occurred_at, WRITETIME(month_spent_after)",
}


def snapshot(session: Any, keyspace: str, version: int = 1) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of one version's balance tables (1: the migrations' own), by logical table,
    with the write times of the value cells."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    for table in TABLES:
        physical = table_name(table, version)
        rows = session.execute(f"SELECT {SNAPSHOT_COLUMNS[table]} FROM {keyspace}.{physical}")
        out[table] = sorted((tuple(r) for r in rows), key=repr)
    return out


def batches(items: list[RecordedEvent], size: int) -> Iterator[list[RecordedEvent]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]
