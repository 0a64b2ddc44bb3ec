"""The CQL balance projection under faults: nothing lost, nothing wrong, after SIGKILLs of
`healthpay project-balances` and a Cassandra restart, under sustained load.

Real processes over the real servers: one command service, `healthpay relay` and
`healthpay project-balances` (PostgreSQL and Kafka from the session's harnesses, a Cassandra
node of this test's own, since it is restarted). The paced load of the stream's fault test
(tests/integration/stream_load.py: claims, copayments from wallets, reversals, top-ups,
repeats) runs while the test SIGKILLs the balance projection three times (a replacement
starts each time) and restarts Cassandra once under the running projection (its batches fail
while the node is away, are re-read, and land once it is back). Then, once the relay published
every stored event and the group `healthpay-balances` committed the topic's end offsets,
`balances verify` reports no difference, and every wallet_balances / medcard_monthly_spend
row is what the stored events say (computed here from the events, not by verify's SQL).

Timing: a SIGKILLed member does not leave the group; its partitions move when its session
expires (the consumer sets session.timeout.ms=10 s), so each kill costs ~10-15 s.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest

from cli.balances import verify
from infrastructure.cassandra.migrations import migrate
from infrastructure.cassandra.session import CqlConfig, connect, parse_hosts
from projection_service.balances.consumer import DEFAULT_GROUP
from tests.integration.cassandra_harness import CassandraHarness
from tests.integration.stream_checks import (
    actual_balances,
    check_cql_tables,
    differences,
    expected_balances,
    read_store,
)
from tests.integration.stream_processes import (
    FaultTimeline,
    Fleet,
    HealthpayProcess,
    committed_offsets,
    end_offsets,
    fleet_of,
    launched_in_background,
    play_under_load,
    seeded_load,
)
from tests.isolation import isolated_settings

pytestmark = pytest.mark.integration

SECRET = "balance-faults-secret-0123456789abcdef01"
PARTITIONS = 3
KEYSPACE = "healthpay_balances_faults"
STEP_S = 30.0  # any one step of the scenario (a kill costs a 10 s session expiry)
APPLIED = "healthpay_balances_events_total"
FAILED = "healthpay_balances_batch_failures_total"


# ------------------------------------------------------------------------ fixtures


@pytest.fixture
def private_cassandra() -> Iterator[Future[CassandraHarness]]:
    """A node of this test's own (it gets restarted), launched in the background while the
    command service starts and the cards are issued; stopped and deleted afterwards."""
    with launched_in_background(CassandraHarness.launch, timeout=240) as launch:
        yield launch


@pytest.fixture
def fleet(postgres_url: str) -> Iterator[Fleet]:
    with fleet_of(postgres_url, SECRET) as processes:
        yield processes


@pytest.fixture
async def db(postgres_url: str) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as conn:
        yield conn


# ------------------------------------------------------------------------ the scenario


@dataclass(kw_only=True)
class Scenario(FaultTimeline):
    cassandra: CassandraHarness
    bootstrap: str
    topic: str

    async def metric(self, process: HealthpayProcess, name: str) -> float:
        return await asyncio.to_thread(process.metric, name)

    async def applies(self, process: HealthpayProcess, by: float, within: float = STEP_S) -> None:
        base = await self.metric(process, APPLIED)

        async def moved() -> bool:
            return await self.metric(process, APPLIED) >= base + by

        await self.until(f"{process.name} projected {by:.0f} more events", moved, within)

    async def start(self) -> HealthpayProcess:
        process = await asyncio.to_thread(self.fleet.balance_projection)
        self.note(f"started {process.name} (pid {process.pid})")
        return process

    async def run(self) -> None:
        relay = await asyncio.to_thread(self.fleet.relay)
        self.note(f"started {relay.name}")
        first = await self.start()
        await self.applies(first, 20)

        # 1: SIGKILL wherever it is; the replacement gets the partitions once the dead
        # member's session expired.
        await self.kill(first)
        second = await self.start()
        await self.applies(second, 20)

        # Cassandra goes away under the running projection and comes back with its data:
        # the batches meanwhile fail and are re-read; the driver reconnects.
        self.note("restarting cassandra")
        restart = asyncio.create_task(asyncio.to_thread(self.cassandra.restart))
        failures = await self.metric(second, FAILED)

        async def batch_failed() -> bool:
            if restart.done():
                restart.result()  # the restart's own failure, if any, surfaces here
            return await self.metric(second, FAILED) > failures

        await self.until("a balance batch failed (cassandra away)", batch_failed)
        await restart
        self.note("cassandra is back")
        await self.applies(second, 20)

        # 2 and 3: right after progress, twice (the second replacement dies as soon as it
        # has written something, likely between its writes and its offset commit).
        await self.kill(second)
        third = await self.start()
        await self.applies(third, 1)
        await self.kill(third)
        fourth = await self.start()
        await self.applies(fourth, 20)

    async def drain(self, within: float = 30.0) -> dict[int, int]:
        """Waits until the relay published the whole store and the balance group committed
        the topic's end offsets; returns them."""
        await self.relay_published_everything(within)
        ends: dict[int, int] = {}

        async def committed_all() -> bool:
            ends.update(
                await asyncio.to_thread(end_offsets, self.bootstrap, self.topic, PARTITIONS)
            )
            done = await asyncio.to_thread(
                committed_offsets, self.bootstrap, DEFAULT_GROUP, self.topic, PARTITIONS
            )
            return all(done.get(p, 0) >= end for p, end in ends.items())

        await self.until("the balance group committed the whole topic", committed_all, within)
        return ends


# ------------------------------------------------------------------------ the test


async def test_balances_survive_projection_kills_and_a_cassandra_restart(
    postgres_url: str,
    kafka_bootstrap: str,
    kafka_topic: str,
    private_cassandra: Future[CassandraHarness],
    fleet: Fleet,
    db: psycopg.AsyncConnection[Any],
) -> None:
    async with seeded_load(fleet, SECRET) as load:
        cassandra = await asyncio.to_thread(private_cassandra.result, 240)
        config = CqlConfig(parse_hosts(cassandra.hosts), KEYSPACE, local_dc=cassandra.datacenter)

        def migrated() -> None:
            with connect(config) as cql:
                migrate(cql.session, config)

        await asyncio.to_thread(migrated)
        fleet.use_kafka(kafka_bootstrap, kafka_topic)
        fleet.env = {
            **fleet.env,
            "SCYLLA_HOSTS": cassandra.hosts,
            "SCYLLA_KEYSPACE": KEYSPACE,
            "SCYLLA_DC": cassandra.datacenter,
        }
        scenario = await play_under_load(
            load,
            lambda running: Scenario(
                fleet=fleet,
                load=running,
                db=db,
                step_seconds=STEP_S,
                cassandra=cassandra,
                bootstrap=kafka_bootstrap,
                topic=kafka_topic,
            ),
        )
    await scenario.drain()
    await scenario.stop_fleet()
    print(sorted(load.statuses.items()))

    assert load.unexpected == [], load.unexpected[:20]
    assert load.statuses[("claim", 201)] >= 200, load.statuses
    assert load.statuses[("topup", 201)] >= 20, load.statuses

    settings = isolated_settings(postgres_url=postgres_url, scylla_keyspace=KEYSPACE)
    out = io.StringIO()
    found = await asyncio.to_thread(verify, settings, config, out)
    assert found == 0, out.getvalue()

    stored = await asyncio.to_thread(read_store, postgres_url)
    exp_wallets, exp_months = expected_balances(stored)
    assert len(exp_wallets) == len(load.wallets)
    assert len(exp_months) >= len(load.cards) // 2
    with connect(config) as cql:
        act_wallets, act_months = await asyncio.to_thread(actual_balances, cql.session, KEYSPACE)
        assert differences(exp_wallets, act_wallets) == []
        assert differences(exp_months, act_months) == []
        await asyncio.to_thread(check_cql_tables, cql.session, KEYSPACE, stored)
