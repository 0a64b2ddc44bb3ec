"""The notifier's consumer group (`healthpay-notifier`): events in, SMS out, each message
exactly once per (event, recipient, kind) as far as this side can make it.

1. A batch from Kafka becomes outbox rows (and contact updates) in ONE PostgreSQL
   transaction; only after it committed are the batch's Kafka offsets committed. A crash in
   between re-reads the batch, and the outbox's key makes the re-read insert nothing.
2. A sender loop leases due `pending` rows, sends each through the SmsSender port and marks
   it `sent` with the provider's message id (or `failed` when refused; an outage leaves it
   pending with a back-off). A restart sends only what is not marked sent.

The one window left: a process killed after Cequens accepted a message and before its row
was marked sent sends it again once the lease ends (Cequens' API has no idempotency key).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from confluent_kafka import Consumer, KafkaException, Message, TopicPartition
from prometheus_client import CollectorRegistry, Counter

from domain.upcasting import event_from_payload
from infrastructure.eventstore.port import RecordedEvent
from infrastructure.kafka.consumers import BrokerWatch, group_consumer_config, lag_gauge, report_lag
from infrastructure.outage import POSTGRES_UNAVAILABLE, Outage
from infrastructure.postgres.pool import Pool
from infrastructure.sms.port import Sms, SmsRefused, SmsSender, SmsUnavailable
from projection_service.batches import read_batch
from projection_service.notifier import outbox
from projection_service.notifier.messages import RELEVANT, derive
from projection_service.notifier.templates import Language, needs_unicode, render

log = logging.getLogger("healthpay.notifier")
GROUP = "healthpay-notifier"


@dataclass
class NotifierMetrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        self.lag = lag_gauge(self.registry)
        name = "healthpay_sms_messages_total"
        self.messages = Counter(
            name,
            "Messages by outcome: stored, duplicate, opted_out, unroutable, sent, failed, retried",
            ["outcome"],
            registry=self.registry,
        )


@dataclass
class Notifier:
    pool: Pool
    sender: SmsSender
    brokers: str
    topic: str
    low_balance: Decimal
    default_language: Language = "ar"
    group: str = GROUP
    batch_size: int = 500
    poll_seconds: float = 0.2
    send_batch: int = 50
    idle_seconds: float = 0.2
    metrics: NotifierMetrics = field(default_factory=NotifierMetrics)
    outage_budget_s: float = 60.0

    def __post_init__(self) -> None:
        self.postgres = Outage("postgresql", self.outage_budget_s)
        self.postgres_sends = Outage("postgresql", self.outage_budget_s)
        self.kafka = BrokerWatch(Outage("kafka", self.outage_budget_s))

    async def run(self, stop: asyncio.Event) -> None:
        sending = asyncio.create_task(self._send_until(stop))
        # A sender that ends (an outage past its budget, a bug) stops the consumer too, and
        # its error ends `run`: a notifier that stores messages and never sends them would
        # look alive while doing half its work.
        sending.add_done_callback(lambda _: stop.set())
        try:
            await self._consume_until(stop)
        finally:
            stop.set()
            await sending

    async def _consume_until(self, stop: asyncio.Event) -> None:
        consumer = Consumer(group_consumer_config(self.brokers, self.group, self.kafka))
        consumer.subscribe([self.topic])
        try:
            while not stop.is_set():
                messages = await asyncio.to_thread(
                    consumer.consume, self.batch_size, self.poll_seconds
                )
                await asyncio.to_thread(self.kafka.check, consumer, self.topic)
                if not messages:
                    continue
                offsets = await self._store_through_outages(messages, stop)
                if offsets is None:
                    return
                if offsets:
                    await self._commit(consumer, offsets)
                await asyncio.to_thread(
                    report_lag, self.metrics.lag, consumer, self.topic, messages
                )
        finally:
            await asyncio.to_thread(consumer.close)

    async def _commit(self, consumer: Consumer, offsets: list[TopicPartition]) -> None:
        """A commit that fails (a rebalance took the partitions, the brokers went away) only
        means the batch is read again, which the outbox's key makes a no-op."""
        try:
            await asyncio.to_thread(consumer.commit, offsets=offsets, asynchronous=False)
        except KafkaException as exc:
            log.warning("offsets not committed (the batch will be read again): %s", exc)

    async def _store_through_outages(
        self, messages: Sequence[Message], stop: asyncio.Event
    ) -> list[TopicPartition] | None:
        """The batch's offsets once its rows are stored; None if stopped before."""
        while True:
            try:
                offsets = await self.store(messages)
            except POSTGRES_UNAVAILABLE as exc:
                if await _stopped_within(stop, self.postgres.failed(exc)):
                    return None
                continue
            self.postgres.recovered()
            return offsets

    async def store(self, messages: Sequence[Message]) -> list[TopicPartition]:
        batch = read_batch(messages, self.topic, log)
        for bad in batch.malformed:
            log.warning("skipped a malformed envelope", extra={"error": bad.problem})
        outcomes: list[str] = []
        async with self.pool.connection() as conn, conn.transaction():
            for recorded in batch.events:
                if recorded.event_type in RELEVANT:
                    outcomes += await self._store_event(conn, recorded)
        # counted once committed: a batch retried after an outage counts once
        for outcome in outcomes:
            self.metrics.messages.labels(outcome).inc()
        return [TopicPartition(self.topic, p, o) for p, o in sorted(batch.next_offsets.items())]

    async def _store_event(self, conn: outbox.Conn, recorded: RecordedEvent) -> list[str]:
        """The event's contacts and messages stored; the outcome of each message."""
        try:
            event = event_from_payload(recorded.event_type, recorded.schema_version, recorded.data)
        except Exception as exc:  # poison: the projections park it; no message from it
            log.warning(
                "skipped an unreadable event: %s", exc, extra={"event_id": str(recorded.event_id)}
            )
            return []
        derived = derive(recorded.aggregate_id, event, self.low_balance)
        await outbox.save_contacts(conn, derived)
        outcomes: list[str] = []
        for intent in derived.intents:
            target = await outbox.resolve(conn, intent.to)
            if target is None:
                outcomes.append("unroutable")
                log.warning(
                    "no phone known for a %s message",
                    intent.kind,
                    extra={"event_id": str(recorded.event_id)},
                )
                continue
            card_id, phone = target
            language, opted_out = await outbox.preference(conn, card_id)
            if opted_out:
                outcomes.append("opted_out")
                continue
            chosen: Language = language or self.default_language
            row = outbox.OutboxRow(
                recorded.event_id,
                phone,
                intent.kind,
                card_id,
                intent.once_key,
                chosen,
                render(intent.kind, chosen, intent.amounts),
            )
            stored = await outbox.insert(conn, row)
            outcomes.append("stored" if stored else "duplicate")
        return outcomes

    async def _send_until(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                sent = await self.send_due()
            except POSTGRES_UNAVAILABLE as exc:
                if await _stopped_within(stop, self.postgres_sends.failed(exc)):
                    return
                continue
            self.postgres_sends.recovered()
            if sent == 0 and await _stopped_within(stop, self.idle_seconds):
                return

    async def send_due(self) -> int:
        """Sends one lease of due rows; how many were tried."""
        async with self.pool.connection() as conn:
            async with conn.transaction():
                due = await outbox.lease_due(conn, self.send_batch)
            for row in due:
                sms = Sms(row.recipient, row.body, needs_unicode(row.body))
                try:
                    provider_id = await self.sender.send(sms)
                except SmsRefused as exc:
                    await outbox.mark_failed(conn, row, str(exc), final=True)
                    self.metrics.messages.labels("failed").inc()
                    log.warning("SMS refused: %s", exc, extra={"event_id": str(row.event_id)})
                    continue
                except SmsUnavailable as exc:
                    await outbox.mark_failed(conn, row, str(exc), final=False)
                    self.metrics.messages.labels("retried").inc()
                    continue
                await outbox.mark_sent(conn, row, provider_id)
                self.metrics.messages.labels("sent").inc()
        return len(due)


async def _stopped_within(stop: asyncio.Event, seconds: float) -> bool:
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except TimeoutError:
        return False
    return True
