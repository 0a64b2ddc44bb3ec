"""What every projection consumer group shares: its settings and its lag gauge."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import suppress
from typing import Any

from confluent_kafka import Consumer, KafkaException, Message, TopicPartition
from prometheus_client import CollectorRegistry, Gauge


def group_consumer_config(brokers: str, group: str) -> dict[str, Any]:
    return {
        "bootstrap.servers": brokers,
        "group.id": group,
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
