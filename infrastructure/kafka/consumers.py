"""What every projection consumer group shares: its settings, its lag gauge, and how it
notices that the brokers are gone (and for how long)."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition
from prometheus_client import CollectorRegistry, Gauge

from infrastructure.logs import KAFKA_CLIENT_LOG
from infrastructure.outage import Outage

# librdkafka's word that a broker connection (or every one) is gone.
BROKERS_GONE = frozenset({KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN})
PROBE_TIMEOUT_S = 1.0


@dataclass
class BrokerWatch:
    """A consumer's view of a Kafka outage. librdkafka reconnects by itself but never says
    that the brokers are back, so while an outage is on, `check` asks the cluster for the
    topic's metadata after every poll: an answer ends the outage, no answer for longer than
    the budget raises OutageTooLong."""

    outage: Outage

    def on_error(self, error: KafkaError) -> None:
        """The consumer's `error_cb` (runs inside poll/consume)."""
        if error.code() in BROKERS_GONE and not self.outage.ongoing:
            self.outage.failed(error.str())  # the outage's first failure: never over budget

    def check(self, consumer: Consumer, topic: str) -> None:
        """Blocking (up to PROBE_TIMEOUT_S while Kafka is away): call it off the event loop."""
        if not self.outage.ongoing:
            return
        try:
            consumer.list_topics(topic, timeout=PROBE_TIMEOUT_S)
        except KafkaException as exc:
            self.outage.failed(exc)  # the probe's own timeout paces the next try
            return
        self.outage.recovered()


FETCH_WAIT_MS = 50


def group_consumer_config(
    brokers: str, group: str, watch: BrokerWatch | None = None
) -> dict[str, Any]:
    config: dict[str, Any] = {} if watch is None else {"error_cb": watch.on_error}
    return config | {
        "bootstrap.servers": brokers,
        "group.id": group,
        "logger": KAFKA_CLIENT_LOG,
        # Offsets are stored by the projection itself (PostgreSQL) or committed explicitly
        # after the writes succeed (CQL), never behind the application's back.
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "isolation.level": "read_committed",
        "partition.assignment.strategy": "cooperative-sticky",
        # A SIGKILLed worker never says goodbye: its partitions wait out the session timeout
        # (librdkafka's default 45 s). 10 s is well above a batch's duration.
        "session.timeout.ms": 10_000,
        "heartbeat.interval.ms": 3_000,
        # A fetch waits up to 50 ms for 256 KiB rather than returning each few events the
        # relay publishes: the broker's CPU goes mostly to requests, not bytes, at the
        # pipeline's rates (make bench-kafka: broker µs/event 0.52x with this alone, 0.34x with
        # the relay's batch interval; docs/benchmarks.md). It adds at most 50 ms of lag.
        "fetch.wait.max.ms": FETCH_WAIT_MS,
        "fetch.min.bytes": 262_144,
    }


WATERMARK_TIMEOUT_S = 2.0


def lag_gauge(registry: CollectorRegistry) -> Gauge:
    return Gauge(
        "kafka_consumer_lag",
        "Messages on the topic not yet projected (the seed's EventLag alert)",
        ["topic", "partition"],
        registry=registry,
    )


def report_lag(gauge: Gauge, consumer: Consumer, topic: str, messages: Sequence[Message]) -> None:
    """Lag of the partitions `messages` came from: the high watermark the last fetch brought
    (cached, no broker round trip; asked from the broker while the cache has none yet) less
    this consumer's position. Blocking: call it off the event loop."""
    partitions = {p for p in (m.partition() for m in messages) if p is not None}
    for partition in partitions:
        tp = TopicPartition(topic, partition)
        try:
            _, high = consumer.get_watermark_offsets(tp, cached=True)
            if high < 0:
                _, high = consumer.get_watermark_offsets(tp, timeout=WATERMARK_TIMEOUT_S)
            position = consumer.position([tp])[0].offset
        except KafkaException:
            continue
        if high >= 0 and position >= 0:
            gauge.labels(topic, str(partition)).set(max(0, high - position))


def forget_lag(gauge: Gauge, topic: str, partitions: Sequence[TopicPartition]) -> None:
    """Drops the lag of partitions this consumer no longer owns (revoked or lost in a
    rebalance): their new owner reports them, and a stale value here would alert forever."""
    for tp in partitions:
        # absent when this consumer never read the partition
        with suppress(KeyError):
            gauge.remove(topic, str(tp.partition))
