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
from confluent_kafka import OFFSET_BEGINNING, Consumer, Message, TopicPartition
from prometheus_client import CollectorRegistry, Counter

from infrastructure.kafka.consumers import (
    forget_lag,
    group_consumer_config,
    lag_gauge,
    report_lag,
)
from infrastructure.postgres.pool import Pool
from projection_service.batches import batch_histograms, read_batch
from projection_service.offsets import save_offsets, stored_offsets
from projection_service.read_models.parking import DEFAULT_PROJECTION, apply_or_park, park_raw

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
