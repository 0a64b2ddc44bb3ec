"""Events that evolve: a history an older release wrote (wallet.topped_up and
medcard.claim_adjudicated v1, rows without a schema version) reads, projects and rebuilds
exactly as the same history written as v2, and the command service decides on a wallet whose
stream mixes both (domain/upcasting.py).

The v2 history is written through the command service; the v1 history is the same events
INSERTed into another fresh database the way a release writing v1 stored them: the top-ups
without `paid_at`, the claims without days supply, refill fields or flags, and without the
`schema_version` column (its default, 1), positions kept so that the read models' `position`
columns can be compared as they are.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from uuid import UUID

import psycopg
import pytest
from psycopg.types.json import Jsonb

from cli import events as history
from command_service.aggregates import WALLET
from domain.wallet.model import WalletState
from infrastructure.cassandra.migrations import migrate
from infrastructure.cassandra.session import connect
from infrastructure.eventstore.port import RecordedEvent
from infrastructure.eventstore.postgres import PostgresEventStore
from infrastructure.postgres.pool import Pool, open_pool
from projection_service.balances.projector import BalanceProjector
from projection_service.balances.rebuild import rebuild_balances
from projection_service.read_models import PROJECTED_TABLES
from projection_service.rebuild import rebuild
from tests.api.support import (
    ALL_EVENTS,
    API,
    Api,
    assert_problem,
    created,
    done,
    running_api,
    top_up,
)
from tests.balances.support import cql_config, recorded_events
from tests.balances.support import snapshot as balance_snapshot
from tests.integration.cassandra_harness import CassandraHarness
from tests.integration.postgres_harness import PostgresHarness
from tests.projections.support import (
    TOKENS,
    Snapshot,
    World,
    pool_snapshot,
    project,
    rows,
    stored_events,
    write_world,
)

pytestmark = pytest.mark.integration

TOPPED_UP = "wallet.topped_up"
ADJUDICATED = "medcard.claim_adjudicated"
OLD_TOPUP_ID = "6f2d1d4e-8f0a-4c59-9a55-1f0f3b0c2a11"
# How a release writing v1 appended: no schema_version column (so its default, 1).
_OLD_INSERT = """
INSERT INTO events (position, event_id, aggregate_id, aggregate_type, event_type, version,
                    event_data, timestamp, metadata)
OVERRIDING SYSTEM VALUE VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)
"""


def as_written_by_v1(event: RecordedEvent) -> dict[str, Any]:
    data = dict(event.data)
    if event.event_type == TOPPED_UP:
        assert data.pop("paid_at") is None, "v1 cannot say when the gateway was paid"
    if event.event_type == ADJUDICATED:  # v1 had no days supply, refill check or flags
        assert data.pop("next_available_fill_date") is None
        assert data.pop("refill_overrides_used") == []
        assert data.pop("flags") == []
        data["items"] = [dict(split) for split in data["items"]]
        for split in data["items"]:
            assert split.pop("days_supply") is None
    return data


def append_as_v1(conninfo: str, events: Sequence[RecordedEvent]) -> None:
    with psycopg.connect(conninfo) as conn, conn.cursor() as cur:
        for e in events:
            cur.execute(
                _OLD_INSERT,
                (e.position, e.event_id, e.aggregate_id, e.aggregate_type, e.event_type,
                 e.version, Jsonb(as_written_by_v1(e)), e.timestamp, Jsonb(e.metadata)),
            )  # fmt: skip
        # Positions were copied, not drawn: the next append must draw past them.
        cur.execute("SELECT setval(pg_get_serial_sequence('events', 'position'), max(position))"
                    " FROM events")  # fmt: skip


async def project_in_batches(pool: Pool, events: Sequence[RecordedEvent], seed: int) -> None:
    rng, rest = random.Random(seed), list(events)
    while rest:
        size = rng.randint(1, 6)
        await project(pool, rest[:size])
        rest = rest[size:]


@dataclass(frozen=True, slots=True)
class Histories:
    world: World
    v2: list[RecordedEvent]  # as the command service wrote them, in the test's own database
    old_url: str  # another database: the same history, top-ups as v1
    old_pool: Pool


@pytest.fixture
async def histories(
    postgres_url: str, postgres_harness: PostgresHarness
) -> AsyncIterator[Histories]:
    async with running_api("postgres", postgres_url) as api:
        world = await write_world(api)
        v2 = await stored_events(api)
    old_url = postgres_harness.create_database()
    try:
        append_as_v1(old_url, v2)
        old_pool = await open_pool(old_url, min_size=1, max_size=4)
        try:
            yield Histories(world, v2, old_url, old_pool)
        finally:
            await old_pool.close()
    finally:
        postgres_harness.drop_database(old_url)


async def test_the_old_history_is_stored_as_v1(histories: Histories) -> None:
    stored = await rows(
        histories.old_pool,
        "SELECT schema_version, event_data ? 'paid_at', count(*) FROM events"
        " WHERE event_type = %s GROUP BY 1, 2",
        TOPPED_UP,
    )
    top_ups = sum(1 for e in histories.v2 if e.event_type == TOPPED_UP)
    assert top_ups >= 3
    assert stored == [(1, False, top_ups)]
    assert {e.schema_version for e in histories.v2 if e.event_type == TOPPED_UP} == {2}
    claims = await rows(
        histories.old_pool,
        "SELECT schema_version, event_data ? 'flags', count(*) FROM events"
        " WHERE event_type = %s GROUP BY 1, 2",
        ADJUDICATED,
    )
    assert claims == [(1, False, sum(1 for e in histories.v2 if e.event_type == ADJUDICATED))]


async def test_v1_history_projects_and_rebuilds_to_the_read_models_of_the_v2_history(
    histories: Histories, postgres_pool: Pool
) -> None:
    await project_in_batches(postgres_pool, histories.v2, seed=3)
    expected = await pool_snapshot(postgres_pool)
    assert expected["wallet_transactions"], "the world has wallet movements"

    old_events = await PostgresEventStore(histories.old_pool).read_all(0, ALL_EVENTS)
    assert {e.schema_version for e in old_events if e.event_type == TOPPED_UP} == {1}
    result = await project(histories.old_pool, old_events, park=True)
    assert result.parked == ()
    assert result.applied == len(old_events)
    assert await rows(histories.old_pool, "SELECT count(*) FROM parked_events") == [(0,)]
    _assert_same(await pool_snapshot(histories.old_pool), expected)

    # A rebuild reads the store again, v1 rows and all, into shadow tables and swaps them in.
    report = await rebuild(histories.old_pool, chunk_size=5)
    assert report.identical, [c for c in report.comparisons if not c.identical]
    assert report.swapped
    assert report.parked == ()
    _assert_same(await pool_snapshot(histories.old_pool), expected)
    top_ups = await rows(
        histories.old_pool,
        "SELECT count(*), count(paid_at) FROM wallet_transactions WHERE type = 'topup'",
    )
    assert top_ups == [(sum(1 for e in old_events if e.event_type == TOPPED_UP), 0)]


async def test_the_cli_shows_a_v1_history_as_it_shows_the_v2_one(
    histories: Histories, postgres_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    wallet = UUID(histories.world.wallet_a)
    assert await asyncio.to_thread(history.show, postgres_url, wallet) == 0
    from_v2 = capsys.readouterr().out
    assert await asyncio.to_thread(history.show, histories.old_url, wallet) == 0
    assert capsys.readouterr().out == from_v2
    top_up_lines = [line for line in from_v2.splitlines() if TOPPED_UP in line]
    assert len(top_up_lines) == 2
    assert all('"paid_at":null' in line for line in top_up_lines)
    # A version this release cannot read is shown as stored, marked, not dropped.
    [(version,)] = await _rows(
        histories.old_url, "SELECT max(version) FROM events WHERE aggregate_id = %s", wallet
    )
    with psycopg.connect(histories.old_url) as conn:
        conn.execute(
            "INSERT INTO events (event_id, aggregate_id, aggregate_type, event_type, version,"
            " event_data, timestamp, schema_version)"
            " VALUES (gen_random_uuid(), %s, 'wallet', %s, %s, %s, now(), 3)",
            (wallet, TOPPED_UP, version + 1, Jsonb({"amount": "1.00", "gross": "1.02"})),
        )
    assert await asyncio.to_thread(history.show, histories.old_url, wallet) == 0
    last = capsys.readouterr().out.splitlines()[-1]
    assert "(unreadable v3) {" in last
    assert '"gross":"1.02"' in last


def _assert_same(got: Snapshot, expected: Snapshot) -> None:
    assert list(got) == list(PROJECTED_TABLES)
    for table in PROJECTED_TABLES:
        assert got[table] == expected[table], table


async def test_a_v2_payment_time_reaches_the_statement(
    postgres_url: str, postgres_pool: Pool
) -> None:
    async with running_api("postgres", postgres_url) as api:
        wallet = await _wallet(api, "member-paid-at")
        answer = created(
            await _top_up_paid(api, wallet, "40.00", "FWR-PAID", "2026-12-01T11:12:05+02:00")
        )
        assert answer["paidAt"] == "2026-12-01T09:12:05+00:00"
        events = await stored_events(api)
    [stored] = [e for e in events if e.event_type == TOPPED_UP]
    assert (stored.schema_version, stored.data["paid_at"]) == (2, "2026-12-01T09:12:05Z")
    await project(postgres_pool, events)
    [(paid_at,)] = await rows(
        postgres_pool, "SELECT paid_at::text FROM wallet_transactions WHERE type = 'topup'"
    )
    assert paid_at == "2026-12-01 09:12:05+00"


async def test_the_command_service_decides_on_a_wallet_whose_history_mixes_v1_and_v2(
    postgres_url: str,
) -> None:
    ops = TOKENS.ops()
    async with running_api("postgres", postgres_url) as api:
        wallet = await _wallet(api, "member-mixed")
        created(await top_up(api, ops, wallet, "100.00", "FWR-NEW-1"))
        [(version,)] = await _rows(
            postgres_url, "SELECT max(version) FROM events WHERE aggregate_id = %s", wallet
        )
    # An old release's top-up lands next in the stream (v1: no paid_at, no schema_version).
    _append_v1_top_up(postgres_url, UUID(wallet), version + 1, "FWR-OLD-1", "250.00", "350.00")
    # A snapshot of the old state shape (state version 2) claiming another balance: it must
    # be ignored, not read, or the wallet would decide on money it does not hold.
    _store_old_snapshot(postgres_url, UUID(wallet), version + 1, "member-mixed")

    async with running_api("postgres", postgres_url) as api:  # cold: nothing cached
        after = created(await top_up(api, ops, wallet, "50.00", "PM-NEW-2", "paymob"))
        assert after["balance"] == "400.00"  # 100 (v2) + 250 (v1) + 50 (v2)
        again = await top_up(api, ops, wallet, "250.00", "FWR-OLD-1")  # the v1 one, replayed
        assert again.status_code == 200, again.text
        assert again.headers["idempotent-replayed"] == "true"
        assert again.json()["transactionId"] == OLD_TOPUP_ID
        assert (again.json()["balance"], again.json()["paidAt"]) == ("350.00", None)
        assert_problem(
            await top_up(api, ops, wallet, "251.00", "FWR-OLD-1"),
            409,
            "duplicate_gateway_reference",
        )
        too_much = await api.client.post(
            f"{API}/wallets/{wallet}/debits",
            json={"amount": "400.01", "reference": "too-much"},
            headers=ops,
        )
        assert_problem(too_much, 409, "insufficient_funds")
        spent = done(
            await api.client.post(
                f"{API}/wallets/{wallet}/debits",
                json={"amount": "400.00", "reference": "all-of-it"},
                headers=ops,
            )
        )
        assert spent["balance"] == "0.00"
    stored = await _rows(
        postgres_url,
        "SELECT version, event_type, schema_version FROM events"
        " WHERE aggregate_id = %s ORDER BY version",
        wallet,
    )
    assert [(t, s) for _, t, s in stored] == [
        ("wallet.opened", 1),
        (TOPPED_UP, 2),
        (TOPPED_UP, 1),
        (TOPPED_UP, 2),
        ("wallet.debited", 1),
    ]


async def test_v1_history_gives_the_balance_tables_of_the_v2_history(
    histories: Histories,
    postgres_url: str,
    cassandra_harness: CassandraHarness,
    cassandra_keyspace: str,
) -> None:
    config = cql_config(cassandra_harness, cassandra_keyspace)
    ks = config.keyspace
    with connect(config) as cql:
        migrate(cql.session, config)
        projector = BalanceProjector(cql.session, ks, concurrency=8)
        old_events = recorded_events(histories.old_url)
        assert {e.schema_version for e in old_events if e.event_type == TOPPED_UP} == {1}
        for batch in _batches(old_events, 4):
            assert projector.project(batch).unreadable == ()
        from_v1 = balance_snapshot(cql.session, ks, 1)
        assert from_v1["wallet_entries"], "the world has wallet movements"
        # The v2 history, rebuilt into the next version of the tables by the same projector.
        report = rebuild_balances(cql.session, ks, postgres_url, chunk_size=5, grace_s=0)
        assert report.bad == 0
        assert report.identical, report.comparisons
        assert balance_snapshot(cql.session, ks, report.new_version) == from_v1


def _batches(events: list[RecordedEvent], size: int) -> Iterator[list[RecordedEvent]]:
    for i in range(0, len(events), size):
        yield events[i : i + size]


async def _wallet(api: Api, user: str) -> str:
    body = created(
        await api.client.post(f"{API}/wallets", json={"userId": user}, headers=TOKENS.ops())
    )
    return str(body["id"])


async def _top_up_paid(api: Api, wallet: str, amount: str, reference: str, paid_at: str) -> Any:
    return await api.client.post(
        f"{API}/wallets/{wallet}/topups",
        json={"gateway": "fawry", "gatewayReference": reference, "amount": amount,
              "paidAt": paid_at},
        headers=TOKENS.ops(),
    )  # fmt: skip


async def _rows(conninfo: str, query: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(conninfo) as conn:
        return conn.execute(query, params).fetchall()


def _append_v1_top_up(
    conninfo: str, wallet: UUID, version: int, reference: str, amount: str, balance: str
) -> None:
    data = {
        "topup_id": OLD_TOPUP_ID,
        "gateway": "fawry",
        "gateway_reference": reference,
        "amount": amount,
        "balance_after": balance,
        "at": "2026-11-30T08:00:00Z",
        "postings": [
            {"account": "gateway_clearing:fawry", "amount": f"-{amount}"},
            {"account": f"member_wallet:{wallet}", "amount": amount},
        ],
    }
    with psycopg.connect(conninfo) as conn:
        conn.execute(
            "INSERT INTO events (event_id, aggregate_id, aggregate_type, event_type, version,"
            " event_data, timestamp) VALUES (gen_random_uuid(), %s, 'wallet', %s, %s, %s, now())",
            (wallet, TOPPED_UP, version, Jsonb(data)),
        )


def _store_old_snapshot(conninfo: str, wallet: UUID, version: int, owner: str) -> None:
    """A snapshot as the release before state version 3 took it: a state that validates as
    the current one too (no top-ups in it), with a balance the stream does not hold. Read,
    it would be believed; the state version makes it ignored."""
    state = WALLET.state.dump_python(
        WalletState(wallet, owner, "EGP", balance=Decimal("999999.00")), mode="json"
    )
    with psycopg.connect(conninfo) as conn:
        conn.execute(
            "INSERT INTO snapshots (aggregate_id, aggregate_type, version, schema_version, state)"
            " VALUES (%s, 'wallet', %s, 2, %s)",
            (wallet, version, Jsonb(state)),
        )
