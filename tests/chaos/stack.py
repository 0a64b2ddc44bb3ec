"""The whole write path on private servers, for runs that crash any piece of it.

PostgreSQL (durable: fsync and synchronous commit on, since it gets crash-stopped), a Kafka
broker and a Cassandra node, each of this run's own on free ports (the test harnesses'
servers, never `make up`'s), a fresh database, topic and keyspace; then the `healthpay`
processes over them (tests/integration/stream_processes.Fleet): command services, the relay,
the projection worker and the balance projection. `Stack.stop` takes everything down.
"""

from __future__ import annotations

import asyncio
import time
import zlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field

import httpx
import psycopg

from infrastructure.cassandra.migrations import migrate
from infrastructure.cassandra.session import CqlConfig, connect, parse_hosts
from projection_service.balances.consumer import DEFAULT_GROUP
from tests.integration.cassandra_harness import CassandraHarness
from tests.integration.kafka_harness import KafkaHarness
from tests.integration.postgres_harness import PostgresHarness
from tests.integration.stream_checks import STORED_OFFSETS
from tests.integration.stream_processes import (
    RELAY_BACKLOG,
    Fleet,
    HealthpayProcess,
    committed_offsets,
    end_offsets,
)

PARTITIONS = 3
KEYSPACE = "healthpay_chaos"


@dataclass
class Stack:
    postgres: PostgresHarness
    kafka: KafkaHarness
    cassandra: CassandraHarness
    postgres_url: str
    topic: str
    fleet: Fleet
    commands: list[HealthpayProcess] = field(default_factory=list)
    relay: HealthpayProcess | None = None
    worker: HealthpayProcess | None = None
    balances: HealthpayProcess | None = None

    @property
    def workers(self) -> list[HealthpayProcess]:
        """Every process that is not a command service (they talk to Kafka)."""
        return [p for p in (self.relay, self.worker, self.balances) if p is not None]

    async def start_processes(self, command_services: int = 2) -> None:
        """The command services first (the load is seeded through them), then the relay and
        both projections, each up and serving before this returns."""
        self.commands = list(
            await asyncio.gather(
                *(asyncio.to_thread(self.fleet.command_service) for _ in range(command_services))
            )
        )
        self.relay, self.worker, self.balances = await asyncio.gather(
            asyncio.to_thread(self.fleet.relay),
            asyncio.to_thread(self.fleet.worker),
            asyncio.to_thread(self.fleet.balance_projection),
        )

    async def drain(self, within: float) -> dict[int, int]:
        """Waits until the relay published every event and both consumer groups are at the end
        of the topic; returns its end offsets."""
        deadline = time.monotonic() + within
        async with await psycopg.AsyncConnection.connect(self.postgres_url, autocommit=True) as db:
            while True:
                backlog = await (await db.execute(RELAY_BACKLOG)).fetchone()
                ends = await asyncio.to_thread(
                    end_offsets, self.kafka.bootstrap, self.topic, PARTITIONS
                )
                rows = await (await db.execute(STORED_OFFSETS, (self.topic,))).fetchall()
                projected = {int(p): int(o) for p, o in rows}
                balanced = await asyncio.to_thread(
                    committed_offsets, self.kafka.bootstrap, DEFAULT_GROUP, self.topic, PARTITIONS
                )
                unpublished = backlog[0] if backlog else None
                unprojected = {p: e - projected.get(p, 0) for p, e in ends.items()}
                unbalanced = {p: e - balanced.get(p, 0) for p, e in ends.items()}
                if unpublished == 0 and max(*unprojected.values(), *unbalanced.values()) <= 0:
                    return ends
                if time.monotonic() > deadline:
                    raise TimeoutError(
                        f"not caught up within {within:.0f}s: {unpublished} events unpublished,"
                        f" behind by partition: read models {unprojected}, balances {unbalanced}"
                    )
                await asyncio.sleep(0.5)

    def client(self) -> httpx.AsyncClient:
        """A client that sends each write to the command service its card or wallet hashes to
        (as the edge does), or on to the next one while that one refuses connections."""
        transport = Spread([p.port for p in self.commands])
        return httpx.AsyncClient(base_url=self.commands[0].url, transport=transport, timeout=30)

    def cql_session(self) -> object:
        """A plain driver session of the harness's own (not the application's connect)."""
        return self.cassandra.session()

    def stop(self) -> None:
        self.fleet.stop_all()
        for server in (self.cassandra, self.kafka, self.postgres):
            with suppress(Exception):
                server.stop()


class Spread(httpx.AsyncBaseTransport):
    def __init__(self, ports: list[int]) -> None:
        self.ports = ports
        self.inner = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        # /api/v1/medcards/{id}/... or /api/v1/wallets/{id}/...: the id picks the process
        parts = request.url.path.split("/")
        key = parts[4] if len(parts) > 4 else request.url.path
        first = zlib.crc32(key.encode()) % len(self.ports)
        refused: httpx.ConnectError | None = None
        for step in range(len(self.ports)):
            request.url = request.url.copy_with(port=self.ports[(first + step) % len(self.ports)])
            try:
                return await self.inner.handle_async_request(request)
            except httpx.ConnectError as exc:  # nothing was sent: another process may take it
                refused = exc
        assert refused is not None
        raise refused

    async def aclose(self) -> None:
        await self.inner.aclose()


@asynccontextmanager
async def private_stack(jwt_secret: str, outage_budget_s: float = 60.0) -> AsyncIterator[Stack]:
    """The three servers, launched side by side; a database, a topic and a migrated keyspace;
    a Fleet configured for them (no process started yet). Everything stops on the way out."""
    launched = await asyncio.gather(
        asyncio.to_thread(PostgresHarness.launch, True),
        asyncio.to_thread(KafkaHarness.launch),
        asyncio.to_thread(CassandraHarness.launch),
        return_exceptions=True,
    )
    failures = [r for r in launched if isinstance(r, BaseException)]
    if failures:
        for server in launched:
            if not isinstance(server, BaseException):
                server.stop()
        raise failures[0]
    postgres, kafka, cassandra = launched
    assert isinstance(postgres, PostgresHarness)
    assert isinstance(kafka, KafkaHarness)
    assert isinstance(cassandra, CassandraHarness)
    fleet = Fleet("", jwt_secret)
    stack = Stack(postgres, kafka, cassandra, "", "", fleet)
    try:
        stack.postgres_url = postgres.create_database()
        stack.topic = await asyncio.to_thread(kafka.create_topic, PARTITIONS)
        config = CqlConfig(parse_hosts(cassandra.hosts), KEYSPACE, local_dc=cassandra.datacenter)

        def migrated() -> None:
            with connect(config) as cql:
                migrate(cql.session, config)

        await asyncio.to_thread(migrated)
        fleet.env = {
            **fleet.env,
            "POSTGRES_URL": stack.postgres_url,
            "KAFKA_BROKERS": kafka.bootstrap,
            "KAFKA_TOPIC": stack.topic,
            "SCYLLA_HOSTS": cassandra.hosts,
            "SCYLLA_KEYSPACE": KEYSPACE,
            "SCYLLA_DC": cassandra.datacenter,
            "OUTAGE_BUDGET_S": str(outage_budget_s),
        }
        yield stack
    finally:
        await asyncio.to_thread(stack.stop)
