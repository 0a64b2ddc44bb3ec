"""Where the relay sends events: Kafka in production, a list in unit tests."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from confluent_kafka import KafkaError, Message, Producer

from infrastructure.eventstore.envelope import stored_envelope
from infrastructure.eventstore.rows import StoredEvent
from infrastructure.logs import KAFKA_CLIENT_LOG


class PublishFailed(RuntimeError):
    """Not every event of the batch was confirmed: the checkpoint must not move."""


class ProducerBroken(RuntimeError):
    """The idempotent producer hit a fatal error and cannot publish again. Not a
    PublishFailed: the relay must exit, releasing its lock to a standby, not retry forever."""


class Publisher(Protocol):
    def publish(self, events: Sequence[StoredEvent]) -> None:
        """Returns only when every event is durably accepted; raises PublishFailed otherwise."""

    def close(self) -> None: ...


class KafkaPublisher:
    """Idempotent producer, acks=all, key = aggregate id (so one aggregate stays in order on
    one partition)."""

    def __init__(self, brokers: str, topic: str, timeout_seconds: float = 30.0) -> None:
        self.topic = topic
        self.timeout = timeout_seconds
        self.producer = Producer(
            {
                "bootstrap.servers": brokers,
                "logger": KAFKA_CLIENT_LOG,
                "enable.idempotence": True,
                "acks": "all",
                "linger.ms": 5,
                "compression.type": "lz4",
                "message.timeout.ms": int(timeout_seconds * 1000),
            }
        )

    def publish(self, events: Sequence[StoredEvent]) -> None:
        failures: list[KafkaError] = []

        def delivered(error: KafkaError | None, message: Message) -> None:
            if error is not None:
                failures.append(error)

        for event in events:
            while True:
                try:
                    self.producer.produce(
                        self.topic,
                        key=str(event.aggregate_id).encode(),
                        value=stored_envelope(event),  # the stored JSON, not re-encoded
                        on_delivery=delivered,
                    )
                    break
                except BufferError:  # local queue full: let deliveries drain, then go on
                    self.producer.poll(0.1)
        left = self.producer.flush(self.timeout)
        fatal = [f for f in failures if f.fatal()]
        if fatal:
            raise ProducerBroken(str(fatal[0]))
        if left or failures:
            raise PublishFailed(f"{left} undelivered, {len(failures)} failed: {failures[:3]}")

    def close(self) -> None:
        self.producer.flush(self.timeout)


class ListPublisher:
    """Keeps what was published, for tests of the relay's reading and checkpointing."""

    def __init__(self) -> None:
        self.published: list[StoredEvent] = []
        self.fail_next = False

    def publish(self, events: Sequence[StoredEvent]) -> None:
        if self.fail_next:
            self.fail_next = False
            raise PublishFailed("told to fail")
        self.published.extend(events)

    def close(self) -> None:
        pass
