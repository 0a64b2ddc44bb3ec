"""`healthpay project-balances`: the consumer group that keeps the CQL balances current.

At-least-once: a batch's CQL writes finish first, then its offsets are committed to Kafka
(synchronously). A crash in between re-delivers the batch, and the projector's writes are
idempotent (absolute values, version-derived timestamps), so re-delivery changes nothing.
A batch whose writes (or whose offset commit) fail is re-read from its first offsets after a
back-off; malformed envelopes and unreadable balance events are parked in PostgreSQL
(balances/parking.py), logged and counted, never looped on.

The back-off is an outage's (infrastructure/outage.py): failures in a row, of the CQL
store, of PostgreSQL (parking) or of Kafka (the commit, or every broker gone), for longer
than the budget end `run` with OutageTooLong.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from confluent_kafka import Consumer, KafkaException, Message, TopicPartition
from prometheus_client import CollectorRegistry, Counter

from infrastructure.eventstore.port import RecordedEvent
from infrastructure.kafka.consumers import (
    BrokerWatch,
    forget_lag,
    group_consumer_config,
    lag_gauge,
    report_lag,
)
from infrastructure.logs import event_fields
from infrastructure.outage import POSTGRES_UNAVAILABLE, Outage
from projection_service.balances.parking import BalanceParking, Parked
from projection_service.balances.projector import (
    BalanceProjector,
    ProjectResult,
    is_balance_event,
)
from projection_service.batches import batch_histograms, read_batch

log = logging.getLogger("healthpay.balances")

DEFAULT_GROUP = "healthpay-balances"


@dataclass
class BalanceMetrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        self.lag = lag_gauge(self.registry)
        self.batch, self.duration = batch_histograms(
            self.registry,
            "healthpay_balances",
            size_help="Messages per projected batch",
            seconds_help="Time to write one batch",
        )
        self.applied = Counter(
            "healthpay_balances_events_total", "Balance events written", registry=self.registry
        )
        self.bad = Counter(
            "healthpay_balances_bad_total",
            "Malformed envelopes and unreadable balance events (logged, skipped)",
            registry=self.registry,
        )
        self.failures = Counter(
            "healthpay_balances_batch_failures_total",
            "Batches whose writes failed and were re-read",
            registry=self.registry,
        )


@dataclass
class BalanceConsumer:
    projector: BalanceProjector
    brokers: str
    topic: str
    group: str = DEFAULT_GROUP
    batch_size: int = 500
    poll_seconds: float = 0.2
    metrics: BalanceMetrics = field(default_factory=BalanceMetrics)
    # where what can never be projected is kept (None: only logged and counted)
    parking: BalanceParking | None = None
    outage_budget_s: float = 60.0

    def __post_init__(self) -> None:
        self.cql = Outage("cql", self.outage_budget_s)
        self.postgres = Outage("postgresql", self.outage_budget_s)
        self.kafka = BrokerWatch(Outage("kafka", self.outage_budget_s))

    async def run(self, stop: asyncio.Event) -> None:
        consumer = Consumer(group_consumer_config(self.brokers, self.group, self.kafka))
        consumer.subscribe([self.topic], on_revoke=self._forget, on_lost=self._forget)
        try:
            while not stop.is_set():
                messages = await asyncio.to_thread(
                    consumer.consume, self.batch_size, self.poll_seconds
                )
                await asyncio.to_thread(self.kafka.check, consumer, self.topic)
                if messages:
                    await self._apply_or_rewind(consumer, messages)
        finally:
            await asyncio.to_thread(consumer.close)

    async def _apply_or_rewind(self, consumer: Consumer, messages: Sequence[Message]) -> None:
        try:
            await self.apply(consumer, messages)
        except KafkaException as exc:
            if exc.args[0].fatal():
                raise
            # the writes landed but the commit did not: re-reading rewrites the same cells
            failure, delay = str(exc), self.kafka.outage.failed(exc)
        except Exception as exc:
            outage = self.postgres if isinstance(exc, POSTGRES_UNAVAILABLE) else self.cql
            failure, delay = f"{type(exc).__name__}: {exc}", outage.failed(exc)
        else:
            self.cql.recovered()
            self.postgres.recovered()
            return
        self.metrics.failures.inc()
        log.warning("balance batch failed (%s); re-reading it in %.1fs", failure, delay)
        await asyncio.to_thread(self._rewind, consumer, messages)
        await asyncio.sleep(delay)

    async def apply(self, consumer: Consumer, messages: Sequence[Message]) -> None:
        batch = read_batch(messages, self.topic, log)
        dead: list[Parked] = []
        for bad in batch.malformed:
            where = bad.location
            log.error("malformed envelope at %s/%s: %s", where.partition, where.offset, bad.problem)
            dead.append(Parked(where, f"malformed envelope: {bad.problem}", raw=bad.raw))
        if not batch.next_offsets:
            return
        with self.metrics.duration.time():
            result = await asyncio.to_thread(self.projector.project, batch.events)
        dead += [Parked(batch.locations[e.event_id], why, event=e) for e, why in result.unreadable]
        if self.parking is not None:
            await asyncio.to_thread(self.parking.park, dead)
        # Only now, with every write acknowledged and every dead letter kept, do the offsets
        # move on.
        await asyncio.to_thread(
            consumer.commit,
            offsets=[TopicPartition(self.topic, p, o) for p, o in batch.next_offsets.items()],
            asynchronous=False,
        )
        await asyncio.to_thread(report_lag, self.metrics.lag, consumer, self.topic, messages)
        self.metrics.batch.observe(len(messages))
        self.metrics.applied.inc(result.events)
        self.metrics.bad.inc(len(dead))
        _log_committed(batch.events, result, parked=self.parking is not None)

    def _forget(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        forget_lag(self.metrics.lag, self.topic, partitions)

    def _rewind(self, consumer: Consumer, messages: Sequence[Message]) -> None:
        first: dict[int, int] = {}
        for m in messages:
            p, o = m.partition(), m.offset()
            if m.error() is None and p is not None and o is not None:
                first[p] = min(first.get(p, o), o)
        for partition, offset in first.items():
            try:
                consumer.seek(TopicPartition(self.topic, partition, offset))
            except KafkaException as exc:  # partition revoked meanwhile: its new owner re-reads
                log.warning("cannot rewind partition %s: %s", partition, exc)


def _log_committed(events: Sequence[RecordedEvent], result: ProjectResult, *, parked: bool) -> None:
    """After the commit: each unreadable event at WARNING (parked, or only counted when there
    is no parking) and, at DEBUG only, each balance event written, with its correlation id."""
    for event, why in result.unreadable:
        what = "parked a balance event" if parked else "skipped a balance event"
        log.warning(what, extra={**event_fields(event), "error": why})
    if not log.isEnabledFor(logging.DEBUG):
        return
    unreadable = {event.event_id for event, _ in result.unreadable}
    for event in events:
        if is_balance_event(event) and event.event_id not in unreadable:
            log.debug("projected %s", event.event_type, extra=event_fields(event))
