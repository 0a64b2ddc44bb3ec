"""The consumer settings every projection group shares."""

from __future__ import annotations

from typing import Any


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
