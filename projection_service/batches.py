"""A batch of Kafka messages as both consumer groups read it (worker.py, balances/consumer.py).

Every message with a partition and offset moves that partition's next offset on, whether its
envelope decodes or not: what cannot be decoded is handed back to be parked, never re-read.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from uuid import UUID

from confluent_kafka import KafkaException, Message
from prometheus_client import CollectorRegistry, Histogram

from infrastructure.eventstore.envelope import MalformedEnvelope, from_envelope
from infrastructure.eventstore.port import RecordedEvent
from projection_service.read_models.parking import KafkaLocation


@dataclass(frozen=True, slots=True)
class Malformed:
    """A message that is not even an envelope: its bytes, where it was, and why."""

    location: KafkaLocation
    raw: bytes
    problem: str


@dataclass(slots=True)
class MessageBatch:
    events: list[RecordedEvent] = field(default_factory=list)
    locations: dict[UUID, KafkaLocation] = field(default_factory=dict)  # by event id
    malformed: list[Malformed] = field(default_factory=list)
    next_offsets: dict[int, int] = field(default_factory=dict)  # partition -> offset to commit


def read_batch(messages: Sequence[Message], topic: str, log: logging.Logger) -> MessageBatch:
    """Decode `messages`. A fatal consumer error raises; other errors are logged to `log`
    and skipped (they carry no offset). No `next_offsets`: nothing in it to commit."""
    batch = MessageBatch()
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
        batch.next_offsets[partition] = max(batch.next_offsets.get(partition, 0), offset + 1)
        location = KafkaLocation(topic, partition, offset)
        raw = message.value() or b""
        try:
            event = from_envelope(raw)
        except MalformedEnvelope as exc:
            batch.malformed.append(Malformed(location, raw, str(exc)))
            continue
        batch.events.append(event)
        batch.locations[event.event_id] = location
    return batch


# The groups consume up to 500 (balances) or 2000 (read models) messages a poll.
_BATCH_SIZE_BUCKETS = (1, 10, 50, 100, 250, 500, 1000, 2000, 5000)


def batch_histograms(
    registry: CollectorRegistry, prefix: str, *, size_help: str, seconds_help: str
) -> tuple[Histogram, Histogram]:
    """`<prefix>_batch_size` (messages per batch) and `<prefix>_batch_seconds`."""
    size = Histogram(
        f"{prefix}_batch_size", size_help, buckets=_BATCH_SIZE_BUCKETS, registry=registry
    )
    seconds = Histogram(f"{prefix}_batch_seconds", seconds_help, registry=registry)
    return size, seconds
