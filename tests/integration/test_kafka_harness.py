"""The real Kafka broker of scripts/kafka.sh, as the relay and the projections will use it:
an idempotent producer (acks=all) writes keyed events, a consumer group reads them back in
per-key order, and a broker restart on the same directory keeps them."""

from __future__ import annotations

import time
import uuid
from collections import defaultdict
from collections.abc import Iterator

import pytest
from confluent_kafka import Consumer, KafkaError, Message, Producer, TopicPartition

from tests.integration.kafka_harness import KafkaHarness, TopicFactory

pytestmark = pytest.mark.integration

KEYS = [f"card-{n}" for n in range(12)]
PER_KEY = 25


def _produce(bootstrap: str, topic: str, keys: list[str], per_key: int) -> dict[str, int]:
    """Interleaved `key:seq` messages; returns each key's partition (from the delivery reports)."""
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "acks": "all",
            "enable.idempotence": True,
            "linger.ms": 5,
        }
    )
    errors: list[KafkaError] = []
    partitions: dict[str, set[int]] = defaultdict(set)

    def delivered(err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            errors.append(err)
            return
        partition = msg.partition()
        assert partition is not None
        partitions[_key(msg)].add(partition)

    for seq in range(per_key):
        for key in keys:
            producer.produce(topic, key=key, value=f"{key}:{seq}", on_delivery=delivered)
        producer.poll(0)
    assert producer.flush(30) == 0, "messages left undelivered"
    assert errors == []
    assert all(len(p) == 1 for p in partitions.values()), "a key was spread over partitions"
    return {key: p.pop() for key, p in partitions.items()}


def _consume_all(bootstrap: str, topic: str, expected: int) -> list[Message]:
    """Reads `expected` messages as a fresh consumer group and commits them."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"healthpay-test-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    try:
        consumer.subscribe([topic])
        messages: list[Message] = []
        deadline = time.monotonic() + 60
        while len(messages) < expected and time.monotonic() < deadline:
            for msg in consumer.consume(num_messages=500, timeout=0.5):
                error = msg.error()
                assert error is None, error
                messages.append(msg)
        assert len(messages) == expected, f"read {len(messages)} of {expected}"
        consumer.commit(asynchronous=False)
        # Group offsets landed in __consumer_offsets (replication factor 1 on one node).
        committed = consumer.committed(
            [TopicPartition(topic, p.partition) for p in consumer.assignment()], timeout=10
        )
        ends = {
            p.partition: consumer.get_watermark_offsets(p, timeout=10)[1]
            for p in consumer.assignment()
        }
        assert {c.partition: c.offset for c in committed} == ends
        return messages
    finally:
        consumer.close()


def _key(msg: Message) -> str:
    key = msg.key()
    assert isinstance(key, bytes)
    return key.decode()


def _by_key(messages: list[Message]) -> dict[str, list[str]]:
    values: dict[str, list[str]] = defaultdict(list)
    for msg in messages:
        value = msg.value()
        assert isinstance(value, bytes)
        values[_key(msg)].append(value.decode())
    return values


def _expected(keys: list[str], per_key: int) -> dict[str, list[str]]:
    return {key: [f"{key}:{seq}" for seq in range(per_key)] for key in keys}


def test_idempotent_producer_and_consumer_group_keep_per_key_order(
    kafka_bootstrap: str, kafka_topic_factory: TopicFactory
) -> None:
    topic = kafka_topic_factory(3)
    partition_of = _produce(kafka_bootstrap, topic, KEYS, PER_KEY)
    assert set(partition_of.values()) == {0, 1, 2}, "12 keys should reach all 3 partitions"

    messages = _consume_all(kafka_bootstrap, topic, len(KEYS) * PER_KEY)

    assert _by_key(messages) == _expected(KEYS, PER_KEY)  # all of them, in order, no duplicate
    assert all(partition_of[_key(m)] == m.partition() for m in messages)


def test_topics_are_never_auto_created(kafka_harness: KafkaHarness) -> None:
    missing = f"healthpay.test.missing.{uuid.uuid4().hex[:8]}"
    producer = Producer({"bootstrap.servers": kafka_harness.bootstrap, "message.timeout.ms": 2000})
    errors: list[KafkaError | None] = []
    producer.produce(missing, value=b"x", on_delivery=lambda err, _msg: errors.append(err))
    producer.flush(10)
    assert len(errors) == 1
    assert errors[0] is not None
    assert missing not in kafka_harness.admin.list_topics(timeout=10).topics


@pytest.fixture
def own_broker() -> Iterator[KafkaHarness]:
    """A broker of this test's own: restarting the session's one would disturb other tests."""
    harness = KafkaHarness.launch()
    yield harness
    harness.stop()


def test_restart_on_the_same_directory_keeps_the_messages(own_broker: KafkaHarness) -> None:
    topic = own_broker.create_topic(3)
    _produce(own_broker.bootstrap, topic, KEYS, PER_KEY)
    before = own_broker.bootstrap

    own_broker.restart()

    assert own_broker.bootstrap == before
    _produce(own_broker.bootstrap, topic, KEYS[:1], 1)  # and it takes writes again
    messages = _consume_all(own_broker.bootstrap, topic, len(KEYS) * PER_KEY + 1)
    expected = _expected(KEYS, PER_KEY)
    expected[KEYS[0]].append(f"{KEYS[0]}:0")
    assert _by_key(messages) == expected
