"""`healthpay kafka create-topic`: the events topic (KAFKA_TOPIC) with KAFKA_PARTITIONS
partitions, the one place the stack's topic gets its partition count (scripts/up.sh and
docker-compose's kafka-init both run it)."""

from __future__ import annotations

import sys
import time

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic  # what .admin re-exports untyped

from infrastructure.settings import Settings


def create_topic(settings: Settings, replication_factor: int, timeout_s: float = 60.0) -> int:
    """Creates the topic, or accepts it as it is when it has the partition count asked for;
    returns once every partition has a leader (1 when it has another count)."""
    name, partitions = settings.kafka_topic, settings.kafka_partitions
    admin = AdminClient({"bootstrap.servers": ",".join(settings.kafka_brokers)})
    future = admin.create_topics([NewTopic(name, partitions, replication_factor)])[name]
    try:
        future.result(timeout=timeout_s)
        print(f"created {name} ({partitions} partitions)", file=sys.stderr)
    except KafkaException as exc:
        if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
            raise
    deadline = time.monotonic() + timeout_s
    while True:
        topic = admin.list_topics(name, timeout=10).topics[name]
        if topic.error is None and len(topic.partitions) != partitions:
            # Adding partitions moves keys (aggregates) to other partitions while events of
            # theirs are still in the old ones: a decision for an operator, not for a script.
            print(
                f"{name} exists with {len(topic.partitions)} partitions, not {partitions}"
                " (KAFKA_PARTITIONS): recreate the topic or set KAFKA_PARTITIONS to its count",
                file=sys.stderr,
            )
            return 1
        if topic.error is None and all(p.leader >= 0 for p in topic.partitions.values()):
            print(name)
            return 0
        if time.monotonic() > deadline:
            print(f"{name}: partitions without a leader after {timeout_s} s", file=sys.stderr)
            return 1
        time.sleep(0.2)
