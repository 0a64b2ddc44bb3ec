"""The lag a projection consumer reports, against a real broker: the partition's end less
the consumer's position, from the first batch on (before any fetch statistics exist)."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import Consumer, Message, Producer, TopicPartition
from prometheus_client import CollectorRegistry

from infrastructure.kafka.consumers import lag_gauge, report_lag

pytestmark = pytest.mark.integration


def test_the_lag_is_what_is_left_on_the_partition(kafka_bootstrap: str, kafka_topic: str) -> None:
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    for n in range(10):
        producer.produce(kafka_topic, value=b"%d" % n, partition=1)
    assert producer.flush(30) == 0

    consumer = Consumer(
        {
            "bootstrap.servers": kafka_bootstrap,
            "group.id": "lag-test",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )
    registry = CollectorRegistry()
    gauge = lag_gauge(registry)

    def lag() -> float | None:
        return registry.get_sample_value(
            "kafka_consumer_lag", {"topic": kafka_topic, "partition": "1"}
        )

    def consume(count: int) -> list[Message]:
        """Exactly `count` messages; fails if they do not come within 30 s."""
        got: list[Message] = []
        deadline = time.monotonic() + 30
        while len(got) < count:
            assert time.monotonic() < deadline, f"{len(got)} of {count} messages in 30 s"
            got += consumer.consume(count - len(got), timeout=1)
        return got

    try:
        consumer.assign([TopicPartition(kafka_topic, 1, 0)])
        first = consume(4)
        report_lag(gauge, consumer, kafka_topic, first)
        assert lag() == 6

        rest = consume(6)
        report_lag(gauge, consumer, kafka_topic, rest)
        assert lag() == 0
    finally:
        consumer.close()
