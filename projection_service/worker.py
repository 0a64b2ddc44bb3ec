"""`healthpay project`: the consumer group that builds the PostgreSQL read models.

Each batch from Kafka is applied in ONE PostgreSQL transaction together with the offsets it
covers; on (re)assignment a worker seeks to the offsets stored there, not to Kafka's
committed ones. A crash anywhere therefore re-reads at most the uncommitted batch, and the
read models' version guards make that a no-op. Poison events are parked, not looped on.

A lost PostgreSQL (a restart, a crash) is ridden out: the batch in hand is applied again
with back-off until it commits (it either committed whole, offsets included, or not at
all, so a retry after a commit whose answer was lost changes nothing). Kafka's brokers
going away is watched the same way (infrastructure/kafka/consumers.BrokerWatch). Either
outage, past the budget, ends `run` with OutageTooLong.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import psycopg
from confluent_kafka import OFFSET_BEGINNING, Consumer, Message, TopicPartition
from prometheus_client import CollectorRegistry, Counter

from infrastructure.kafka.consumers import (
    BrokerWatch,
    forget_lag,
    group_consumer_config,
    lag_gauge,
    report_lag,
)
from infrastructure.logs import event_fields
from infrastructure.outage import POSTGRES_UNAVAILABLE, Outage
from infrastructure.postgres.pool import Pool
from projection_service.batches import MessageBatch, batch_histograms, read_batch
from projection_service.offsets import save_offsets, stored_offsets
from projection_service.read_models.parking import DEFAULT_PROJECTION, apply_or_park, park_raw
from projection_service.read_models.projector import ApplyResult

log = logging.getLogger("healthpay.projections")


@dataclass
class WorkerMetrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        self.lag = lag_gauge(self.registry)
        self.batch, self.duration = batch_histograms(
            self.registry,
            "healthpay_projection",
            size_help="Messages per applied batch",
            seconds_help="Time to apply one batch and its offsets",
        )
        self.applied = Counter(
            "healthpay_projection_events_total", "Events applied", registry=self.registry
        )
        self.parked = Counter(
            "healthpay_projection_parked_total", "Events parked", registry=self.registry
        )


@dataclass
class ProjectionWorker:
    pool: Pool
    conninfo: str
    brokers: str
    topic: str
    group: str = "healthpay-projections"
    projection: str = DEFAULT_PROJECTION
    # Bigger batches fold more events per row and per statement (fewer transactions and
    # round trips per event); a poll still returns after `poll_seconds` with what it has.
    batch_size: int = 2000
    poll_seconds: float = 0.2
    metrics: WorkerMetrics = field(default_factory=WorkerMetrics)
    outage_budget_s: float = 60.0

    def __post_init__(self) -> None:
        self.postgres = Outage("postgresql", self.outage_budget_s)
        self.kafka = BrokerWatch(Outage("kafka", self.outage_budget_s))

    async def run(self, stop: asyncio.Event) -> None:
        consumer = Consumer(group_consumer_config(self.brokers, self.group, self.kafka))
        consumer.subscribe(
            [self.topic],
            on_assign=self._seek_to_stored,
            on_revoke=self._forget,
            on_lost=self._forget,
        )
        try:
            while not stop.is_set():
                messages = await asyncio.to_thread(
                    consumer.consume, self.batch_size, self.poll_seconds
                )
                await asyncio.to_thread(self.kafka.check, consumer, self.topic)
                if messages and await self._apply_through_outages(messages, stop):
                    await asyncio.to_thread(
                        report_lag, self.metrics.lag, consumer, self.topic, messages
                    )
        finally:
            await asyncio.to_thread(consumer.close)

    def _forget(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        forget_lag(self.metrics.lag, self.topic, partitions)

    async def _apply_through_outages(
        self, messages: Sequence[Message], stop: asyncio.Event
    ) -> bool:
        """`apply`, retried while PostgreSQL is away; False if stopped before it committed
        (the batch is then re-read by whoever owns its partitions next)."""
        while True:
            try:
                await self.apply(messages)
            except POSTGRES_UNAVAILABLE as exc:
                delay = self.postgres.failed(exc)
                try:
                    await asyncio.wait_for(stop.wait(), delay)
                    return False
                except TimeoutError:
                    continue
            self.postgres.recovered()
            return True

    def _seek_to_stored(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        stored = self._stored_offsets()
        for tp in partitions:
            tp.offset = stored.get(tp.partition, OFFSET_BEGINNING)
        consumer.incremental_assign(partitions)
        log.info("assigned %s", {tp.partition: tp.offset for tp in partitions})

    def _stored_offsets(self) -> dict[int, int]:
        """Blocking (it runs inside the consumer's poll, as the rebalance callback)."""
        while True:
            try:
                with psycopg.connect(self.conninfo, autocommit=True, connect_timeout=10) as conn:
                    stored = stored_offsets(conn, self.projection, self.topic)
            except POSTGRES_UNAVAILABLE as exc:
                time.sleep(self.postgres.failed(exc))
                continue
            self.postgres.recovered()
            return stored

    async def apply(self, messages: Sequence[Message]) -> None:
        batch = read_batch(messages, self.topic, log)
        if not batch.next_offsets:
            return
        with self.metrics.duration.time():
            async with self.pool.connection() as conn, conn.transaction():
                for bad in batch.malformed:
                    await park_raw(
                        conn,
                        bad.raw,
                        bad.problem,
                        projection=self.projection,
                        location=bad.location,
                    )
                result = await apply_or_park(
                    conn,
                    batch.events,
                    projection=self.projection,
                    locate=lambda e: batch.locations.get(e.event_id),
                )
                await save_offsets(conn, self.projection, self.topic, batch.next_offsets)
        self.metrics.batch.observe(len(messages))
        self.metrics.applied.inc(result.applied)
        self.metrics.parked.inc(len(result.parked) + len(batch.malformed))
        _log_committed(batch, result)


def _log_committed(batch: MessageBatch, result: ApplyResult) -> None:
    """After the commit: every parked event at WARNING, and at DEBUG every other event of the
    batch (applied, or a duplicate no-op, or held behind a gap: the batch line counts each),
    with its correlation id. Nothing per event unless DEBUG is on."""
    parked = set(result.parked)
    for bad in batch.malformed:
        where = bad.location
        log.warning(
            "parked a malformed envelope",
            extra={"partition": where.partition, "offset": where.offset, "error": bad.problem},
        )
    for event_id in result.parked:
        event = next((e for e in batch.events if e.event_id == event_id), None)
        fields = event_fields(event) if event is not None else {"event_id": str(event_id)}
        log.warning("parked an event (parked_events has why)", extra=fields)
    if not log.isEnabledFor(logging.DEBUG):
        return
    for event in batch.events:
        if event.event_id not in parked:
            log.debug("projected %s", event.event_type, extra=event_fields(event))
    log.debug(
        "committed a batch",
        extra={
            "applied": result.applied,
            "duplicates": result.duplicates,
            "held": result.held,
            "released": result.released,
            "offsets": batch.next_offsets,
        },
    )
