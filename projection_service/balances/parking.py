"""Dead letters of the CQL balance projection, kept where the read models keep theirs:
PostgreSQL's parked_events, projection "balances" (`healthpay projections status` lists both).

What is parked never blocks the partition: the batch's offsets move past it once it is kept.
The CQL rows need no marker to go on (every write is an absolute value at a version-derived
timestamp, so later events of the stream still set each total right). Parking is idempotent,
so a batch re-delivered after a crash parks nothing twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import psycopg

from infrastructure.eventstore.port import RecordedEvent
from projection_service.read_models.parking import (
    PARK_EVENT,
    PARK_RAW,
    KafkaLocation,
    park_event_params,
)

PROJECTION = "balances"


@dataclass(frozen=True, slots=True)
class Parked:
    """A message that can never be projected: an event that cannot be read, or raw bytes
    that are not even an envelope."""

    location: KafkaLocation
    error: str
    event: RecordedEvent | None = None
    raw: bytes | None = None


class BalanceParking:
    def __init__(self, conninfo: str) -> None:
        self.conninfo = conninfo

    def park(self, parked: Sequence[Parked]) -> None:
        """Blocking (call it from a thread); one transaction for the batch's dead letters."""
        if not parked:
            return
        with psycopg.connect(self.conninfo, autocommit=True) as conn, conn.transaction():
            for p in parked:
                if p.event is None:
                    where = (p.location.topic, p.location.partition, p.location.offset)
                    conn.execute(PARK_RAW, (PROJECTION, *where, p.error, p.raw or b""))
                else:
                    conn.execute(
                        PARK_EVENT, park_event_params(PROJECTION, p.event, p.location, p.error)
                    )
