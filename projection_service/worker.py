"""`healthpay project`: the consumer group that builds the PostgreSQL read models.

Each batch from Kafka is applied in ONE PostgreSQL transaction together with the offsets it
covers; on (re)assignment a worker seeks to the offsets stored there, not to Kafka's
committed ones. A crash anywhere therefore re-reads at most the uncommitted batch, and the
read models' version guards make that a no-op. Poison events are parked, not looped on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import psycopg
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, Message, TopicPartition
from prometheus_client import CollectorRegistry, Counter, Histogram

from infrastructure.eventstore.envelope import MalformedEnvelope, from_envelope
from infrastructure.eventstore.port import RecordedEvent
from infrastructure.kafka.consumers import (
    forget_lag,
    group_consumer_config,
    lag_gauge,
    report_lag,
)
from infrastructure.postgres.pool import Pool
from projection_service.offsets import save_offsets, stored_offsets
from projection_service.read_models.parking import (
    DEFAULT_PROJECTION,
    KafkaLocation,
    apply_or_park,
    park_raw,
)

log = logging.getLogger("healthpay.projections")


@dataclass
class WorkerMetrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        self.lag = lag_gauge(self.registry)
        self.batch = Histogram(
            "healthpay_projection_batch_size",
            "Messages per applied batch",
            buckets=(1, 10, 50, 100, 250, 500, 1000),
            registry=self.registry,
        )
        self.duration = Histogram(
            "healthpay_projection_batch_seconds",
            "Time to apply one batch and its offsets",
            registry=self.registry,
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
    batch_size: int = 500
    poll_seconds: float = 0.2
    metrics: WorkerMetrics = field(default_factory=WorkerMetrics)

    async def run(self, stop: asyncio.Event) -> None:
        consumer = Consumer(group_consumer_config(self.brokers, self.group))
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
                if messages:
                    await self.apply(messages)
                    await asyncio.to_thread(
                        report_lag, self.metrics.lag, consumer, self.topic, messages
                    )
        finally:
            await asyncio.to_thread(consumer.close)

    def _forget(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        forget_lag(self.metrics.lag, self.topic, partitions)

    def _seek_to_stored(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        with psycopg.connect(self.conninfo, autocommit=True) as conn:
            stored = stored_offsets(conn, self.projection, self.topic)
        for tp in partitions:
            tp.offset = stored.get(tp.partition, OFFSET_BEGINNING)
        consumer.incremental_assign(partitions)
        log.info("assigned %s", {tp.partition: tp.offset for tp in partitions})

    async def apply(self, messages: Sequence[Message]) -> None:
        events: list[RecordedEvent] = []
        where: dict[object, KafkaLocation] = {}
        malformed: list[tuple[Message, str]] = []
        next_offsets: dict[int, int] = {}
        for message in messages:
            error = message.error()
            if error is not None:
                if error.fatal():
                    raise KafkaException(error)
                log.warning("consumer error: %s", error)
                continue
            partition, offset = message.partition(), message.offset()
            if partition is None or offset is None:  # only error messages lack them
                continue
            next_offsets[partition] = max(next_offsets.get(partition, 0), offset + 1)
            try:
                event = from_envelope(message.value() or b"")
            except MalformedEnvelope as exc:
                malformed.append((message, str(exc)))
                continue
            events.append(event)
            where[event.event_id] = KafkaLocation(self.topic, partition, offset)
        if not next_offsets:
            return
        with self.metrics.duration.time():
            async with self.pool.connection() as conn, conn.transaction():
                for message, problem in malformed:
                    await park_raw(
                        conn,
                        message.value() or b"",
                        problem,
                        projection=self.projection,
                        location=KafkaLocation(
                            self.topic, message.partition() or 0, message.offset() or 0
                        ),
                    )
                result = await apply_or_park(
                    conn,
                    events,
                    projection=self.projection,
                    locate=lambda e: where.get(e.event_id),
                )
                await save_offsets(conn, self.projection, self.topic, next_offsets)
        self.metrics.batch.observe(len(messages))
        self.metrics.applied.inc(result.applied)
        self.metrics.parked.inc(len(result.parked) + len(malformed))
