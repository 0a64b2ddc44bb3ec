"""The relay: publishes every committed event to Kafka, in commit-safe order, exactly as stored.

One relay is active at a time: it holds a PostgreSQL advisory lock on a connection of its
own for as long as it runs. Others wait on that lock and take over when the holder's
connection goes away (the process died or lost the database). The checkpoint moves only
after Kafka confirmed the whole batch, so a crash re-publishes at most one batch: consumers
deduplicate by aggregate version.

A lost database (a restart, a crash) is reconnected with back-off, the lock taken anew (a
standby may hold it by then) and the checkpoint re-read; a Kafka that does not confirm is
retried from the same checkpoint. Either outage, past the budget, ends `run` with
OutageTooLong (infrastructure/outage.py).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import orjson
import psycopg
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from command_service.relay.publisher import Publisher, PublishFailed
from command_service.relay.tail import load_checkpoint, save_checkpoint
from infrastructure.eventstore.log_reads import LogKey, read_committed
from infrastructure.eventstore.rows import StoredEvent
from infrastructure.outage import POSTGRES_UNAVAILABLE, Outage

log = logging.getLogger("healthpay.relay")
RELAY_LOCK = 0x4850_5245  # advisory lock key: one active relay per database


@dataclass
class RelayMetrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        self.published = Counter(
            "healthpay_relay_published_events_total", "Events published", registry=self.registry
        )
        self.batch = Histogram(
            "healthpay_relay_batch_size",
            "Events per published batch",
            buckets=(1, 10, 50, 100, 250, 500, 1000, 2000),
            registry=self.registry,
        )
        self.lag = Gauge(
            "healthpay_relay_lag_seconds",
            "Age of the oldest event not yet published (0 when caught up)",
            registry=self.registry,
        )
        self.active = Gauge(
            "healthpay_relay_active", "1 while this relay holds the lock", registry=self.registry
        )


@dataclass
class Relay:
    conninfo: str
    publisher: Publisher
    name: str = "kafka"
    batch_size: int = 1000
    idle_wait: float = 0.02
    # A batch at most every 50 ms while not behind: each publish is a produce request the
    # broker pays for whatever its size, and acks=all makes a step quick enough to send a few
    # events each time (make bench-kafka: 0.46x the broker's CPU per event with this alone).
    # Adds at most 50 ms to the projections' lag; a full batch (a backlog) goes on at once.
    batch_interval: float = 0.05
    metrics: RelayMetrics = field(default_factory=RelayMetrics)
    outage_budget_s: float = 60.0

    def __post_init__(self) -> None:
        self.postgres = Outage("postgresql", self.outage_budget_s)
        self.kafka = Outage("kafka", self.outage_budget_s)

    def run(self, stop: threading.Event) -> None:
        """Publishes until `stop` is set; raises OutageTooLong when the database or Kafka
        stays away for longer than the outage budget."""
        while not stop.is_set():
            try:
                self._run_connected(stop)
                return
            except POSTGRES_UNAVAILABLE as exc:
                stop.wait(self.postgres.failed(exc))

    def _run_connected(self, stop: threading.Event) -> None:
        with psycopg.connect(self.conninfo, autocommit=True, connect_timeout=10) as lock_conn:
            if not self._wait_for_lock(lock_conn, stop):
                return
            self.metrics.active.set(1)
            try:
                with psycopg.connect(self.conninfo, autocommit=True, connect_timeout=10) as conn:
                    self._publish_until(stop, conn, lock_conn)
            finally:
                self.metrics.active.set(0)

    def _wait_for_lock(
        self, lock_conn: psycopg.Connection[tuple[object, ...]], stop: threading.Event
    ) -> bool:
        announced = False
        while not stop.is_set():
            row = lock_conn.execute("SELECT pg_try_advisory_lock(%s)", (RELAY_LOCK,)).fetchone()
            self.postgres.recovered()
            if row is not None and row[0]:
                log.info("relay %s is active", self.name)
                return True
            if not announced:
                log.info("another relay is active; standing by")
                announced = True
            stop.wait(1.0)
        return False

    def _publish_until(
        self,
        stop: threading.Event,
        conn: psycopg.Connection[tuple[object, ...]],
        lock_conn: psycopg.Connection[tuple[object, ...]],
    ) -> None:
        checkpoint = load_checkpoint(conn, self.name)
        last_lock_check = time.monotonic()
        while not stop.is_set():
            if time.monotonic() - last_lock_check > 1.0:
                # The lock lives as long as its connection: if that is gone, so is our right
                # to publish (another relay may already be active).
                lock_conn.execute("SELECT 1")
                last_lock_check = time.monotonic()
            started = time.monotonic()
            checkpoint, count = self.step(conn, checkpoint)
            self.postgres.recovered()
            if count == 0:
                stop.wait(self.idle_wait)
            elif count < self.batch_size:
                stop.wait(max(0.0, self.batch_interval - (time.monotonic() - started)))

    def step(
        self, conn: psycopg.Connection[tuple[object, ...]], after: LogKey
    ) -> tuple[LogKey, int]:
        """Publishes the next batch; returns the new checkpoint and how many went out."""
        batch = read_committed(conn, after, self.batch_size)
        if not batch:
            self.metrics.lag.set(0)
            return after, 0
        events = [event for _, event in batch]
        # the oldest event not yet on Kafka: set before publishing, so an outage shows as a
        # growing lag instead of the last value before it
        self.metrics.lag.set(max(0.0, time.time() - events[0].timestamp.timestamp()))
        try:
            self.publisher.publish(events)
        except PublishFailed as exc:
            delay = self.kafka.failed(exc)
            log.warning("publish failed (%s); retrying from the same checkpoint", exc)
            time.sleep(delay)
            return after, 0
        self.kafka.recovered()
        checkpoint = batch[-1][0]
        save_checkpoint(conn, self.name, checkpoint, len(events))
        self.metrics.published.inc(len(events))
        self.metrics.batch.observe(len(events))
        _log_published(events)
        return checkpoint, len(events)


def _log_published(events: Sequence[StoredEvent]) -> None:
    """One line per batch: its positions and the correlation ids of its events, each once, in
    the order they went out (a claim's card and wallet events share one). At DEBUG only:
    otherwise a level check per batch and nothing per event (the relay's cost per event; it
    passes the stored metadata through undecoded, and only this line decodes it)."""
    if not log.isEnabledFor(logging.DEBUG):
        return
    correlation_ids = dict.fromkeys(
        orjson.loads(e.metadata_json).get("correlation_id") for e in events
    )
    log.debug(
        "published %d events",
        len(events),
        extra={
            "first_position": events[0].position,
            "last_position": events[-1].position,
            "correlation_ids": [c for c in correlation_ids if c is not None],
        },
    )
