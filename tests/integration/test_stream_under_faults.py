"""No loss, no duplicates, under faults: the event stream from REST to the read models.

Real processes over the real servers: one command service, `healthpay relay` and
`healthpay project` (PostgreSQL from the harness, a Kafka broker of this test's own, since
it is restarted). Paced load (new claims, the same prescription twice, conflicting bodies,
reversals, copayments from wallets, wallet top-ups) runs while the test restarts Kafka,
SIGKILLs the relay three times (while Kafka is down; after Kafka confirmed a batch but
before its checkpoint committed, so the batch goes out twice; wherever it is), two relays
running each time so a standby takes over, and SIGKILLs both of two projection workers
sharing the group (partitions move between live members first, then to two replacements).
Then, once everything caught up: every 2xx answer is an event in the store, the store is
exactly the topic deduplicated by event_id, and the read models are exactly what the store
says.

Timing: a SIGKILLed consumer does not leave its group. Its partitions move when its session
expires (librdkafka's default session.timeout.ms, 45 s; `healthpay project` sets none), so
the worker kills come close together, after the Kafka restart (a restarted coordinator
restarts the session clocks of the members it loads). A member killed after it rejoined a
pending rebalance is worse: it is carried into the next generation and must expire once
more (measured: a group stuck for ~90 s), so both are killed while the group is stable.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from confluent_kafka import ConsumerGroupState

from tests.integration.kafka_harness import KafkaHarness
from tests.integration.stream_checks import (
    STORED_OFFSETS,
    check_acknowledged_are_stored,
    check_read_models,
    check_topic_is_the_store,
    read_store,
)
from tests.integration.stream_processes import (
    FaultTimeline,
    Fleet,
    HealthpayProcess,
    end_offsets,
    fleet_of,
    group_members,
    launched_in_background,
    play_under_load,
    read_topic,
    seeded_load,
)

pytestmark = pytest.mark.integration

SECRET = "stream-faults-secret-0123456789abcdef0123"
PARTITIONS = 3
SESSION_EXPIRY_S = 75.0  # a SIGKILLed worker's partitions move after ~45 s; some slack
STEP_S = 30.0  # any other step of the scenario


# ------------------------------------------------------------------------ fixtures


@pytest.fixture
def private_kafka() -> Iterator[Future[KafkaHarness]]:
    """A broker of this test's own (it gets restarted), launched in the background while
    the command service starts; stopped and deleted afterwards."""
    with launched_in_background(KafkaHarness.launch, timeout=180) as launch:
        yield launch


@pytest.fixture
def fleet(postgres_url: str) -> Iterator[Fleet]:
    with fleet_of(postgres_url, SECRET) as processes:
        yield processes


@pytest.fixture
async def db(postgres_url: str) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as conn:
        yield conn


# ------------------------------------------------------------------------ the faults


_PUBLISHED = "SELECT coalesce(sum(published), 0) FROM relay_checkpoints"
_PROJECTED = "SELECT coalesce(sum(next_offset), 0) FROM projection_offsets"
_WAITING_CHECKPOINT = """
SELECT pid FROM pg_stat_activity
WHERE datname = current_database() AND wait_event_type = 'Lock'
  AND query LIKE '%INSERT INTO relay_checkpoints%'
"""
PROJECTION_GROUP = "healthpay-projections"  # ProjectionWorker's default group


@dataclass(kw_only=True)
class Scenario(FaultTimeline):
    kafka: KafkaHarness
    topic: str
    postgres_url: str

    async def progress(self, what: str, query: str, by: int, within: float = STEP_S) -> None:
        base = await self.value(query)

        async def moved() -> bool:
            return await self.value(query) >= base + by

        await self.until(what, moved, within)

    async def batches(self, *workers: HealthpayProcess) -> int:
        counts = [
            await asyncio.to_thread(w.metric, "healthpay_projection_batch_size_count")
            for w in workers
        ]
        return int(sum(counts))

    async def start(self, kind: Callable[[], HealthpayProcess]) -> HealthpayProcess:
        process = await asyncio.to_thread(kind)
        self.note(f"started {process.name} (pid {process.pid})")
        return process

    async def active_relay(self) -> HealthpayProcess:
        """Waits for exactly one relay to be active, and for it to publish."""
        found: list[HealthpayProcess] = []

        async def one_active() -> bool:
            relays = list(self.fleet.relays())
            active = [
                r for r in relays if await asyncio.to_thread(r.metric, "healthpay_relay_active")
            ]
            assert len(active) <= 1, f"{[r.name for r in active]} active at once\n{self.report()}"
            found[:] = active
            return bool(active)

        await self.until("one relay is active", one_active)
        await self.progress(f"{found[0].name} publishes", _PUBLISHED, 10)
        return found[0]

    async def run(self) -> None:
        relay, first = await asyncio.gather(
            self.start(self.fleet.relay), self.start(self.fleet.worker)
        )
        await self.progress("relay1 publishes", _PUBLISHED, 30)
        await self.progress("worker projects", _PROJECTED, 30)

        # Kafka goes away under load and comes back with its data. Meanwhile a second
        # worker joins the group, and the active relay (its batch unconfirmed) is SIGKILLed
        # while Kafka is down; two relays start: one takes over, the other stands by.
        self.note("restarting kafka")
        restart = asyncio.create_task(asyncio.to_thread(self.kafka.restart))
        joining = asyncio.create_task(self.start(self.fleet.worker))

        async def kafka_down() -> bool:
            return not await asyncio.to_thread(_accepts, self.kafka.bootstrap)

        await self.until("kafka is down", kafka_down)
        await self.kill(relay)
        await asyncio.gather(self.start(self.fleet.relay), self.start(self.fleet.relay))
        await restart
        self.note("kafka is back")
        second = await joining
        relay = await self.active_relay()

        # Both workers hold partitions (they moved between live members), then both are
        # SIGKILLed while the group is stable (see the module's docstring) and two
        # replacements start.
        await self.group_settles(members=2)
        await self.progress("two workers project", _PROJECTED, 20)
        await self.kill(first)
        await self.kill(second)
        replacements = asyncio.gather(self.start(self.fleet.worker), self.start(self.fleet.worker))

        # The active relay dies after Kafka confirmed its batch, before its checkpoint
        # commits: the standby publishes that batch again.
        await self.kill_relay_before_its_checkpoint(relay)
        relay = await self.active_relay()
        await self.start(self.fleet.relay)
        # ...and the next active one dies wherever it is.
        await self.kill(relay)
        relay = await self.active_relay()
        await self.start(self.fleet.relay)

        third, fourth = await replacements

        async def replacements_apply() -> bool:
            return await self.batches(third, fourth) > 0

        await self.until(
            "the dead workers' partitions moved to the replacements",
            replacements_apply,
            SESSION_EXPIRY_S,
        )
        await self.group_settles(members=2)
        await self.progress("projection resumed", _PROJECTED, 50)

    async def group_settles(self, members: int) -> None:
        """Waits until the group is stable with `members` members, each holding partitions,
        all partitions held."""

        async def settled() -> bool:
            state, held = await asyncio.to_thread(
                group_members, self.kafka.bootstrap, PROJECTION_GROUP
            )
            every = sorted(p for partitions in held for p in partitions)
            return (
                state is ConsumerGroupState.STABLE
                and len(held) == members
                and all(held)
                and every == list(range(PARTITIONS))
            )

        await self.until(f"the group is stable with {members} members holding partitions", settled)

    async def kill_relay_before_its_checkpoint(self, relay: HealthpayProcess) -> None:
        """Holds writes to relay_checkpoints (a table lock takes no transaction id, so the
        relay's commit-safe horizon does not move) until the relay waits to store its
        checkpoint, i.e. after Kafka confirmed the batch; SIGKILLs it there, and its
        server-side session too (a backend notices a vanished client only when it next talks
        to it, so the waiting INSERT would otherwise still commit once the lock goes)."""
        async with await psycopg.AsyncConnection.connect(self.postgres_url) as blocker:
            await blocker.execute("LOCK TABLE relay_checkpoints IN EXCLUSIVE MODE")
            waiting: list[int] = []

            async def relay_waits() -> bool:
                rows = await (await self.db.execute(_WAITING_CHECKPOINT)).fetchall()
                waiting[:] = [int(r[0]) for r in rows]
                return bool(waiting)

            await self.until(f"{relay.name} published a batch, waits to checkpoint it", relay_waits)
            await self.kill(relay)
            await self.db.execute("SELECT pg_terminate_backend(%s, 10000)", (waiting[0],))
            await blocker.rollback()

    async def drain(self, within: float = 45.0) -> dict[int, int]:
        """Waits until the relay published the whole store and the workers consumed the
        whole topic; returns the topic's end offsets."""
        await self.relay_published_everything(within)
        ends: dict[int, int] = {}

        async def projected_all() -> bool:
            ends.update(
                await asyncio.to_thread(end_offsets, self.kafka.bootstrap, self.topic, PARTITIONS)
            )
            rows = await (await self.db.execute(STORED_OFFSETS, (self.topic,))).fetchall()
            stored = {int(p): int(o) for p, o in rows}
            return all(stored.get(p, 0) >= end for p, end in ends.items())

        await self.until("the workers consumed the whole topic", projected_all, within)
        return ends


def _accepts(bootstrap: str) -> bool:
    host, _, port = bootstrap.split(",")[0].rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=0.5).close()
    except OSError:
        return False
    return True


# ------------------------------------------------------------------------ the test


async def test_no_event_is_lost_or_doubled_under_faults(
    postgres_url: str,
    private_kafka: Future[KafkaHarness],
    fleet: Fleet,
    db: psycopg.AsyncConnection[Any],
) -> None:
    async with seeded_load(fleet, SECRET) as load:
        kafka = await asyncio.to_thread(private_kafka.result, 180)
        topic = await asyncio.to_thread(kafka.create_topic, PARTITIONS)
        fleet.use_kafka(kafka.bootstrap, topic)
        scenario = await play_under_load(
            load,
            lambda running: Scenario(
                fleet=fleet,
                load=running,
                db=db,
                step_seconds=STEP_S,
                kafka=kafka,
                topic=topic,
                postgres_url=postgres_url,
            ),
        )
    ends = await scenario.drain()
    await scenario.stop_fleet()
    print(sorted(load.statuses.items()))

    assert load.unexpected == [], load.unexpected[:20]
    assert load.statuses[("claim", 201)] >= 300, load.statuses
    stored = await asyncio.to_thread(read_store, postgres_url)
    topic_ends, messages = await asyncio.to_thread(read_topic, kafka.bootstrap, topic, PARTITIONS)
    assert topic_ends == ends
    check_acknowledged_are_stored(load.acks, stored)
    check_topic_is_the_store(stored, messages)
    await asyncio.to_thread(check_read_models, postgres_url, topic, stored, ends)
