"""`healthpay projections status|rebuild|redrive`."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg
from confluent_kafka import Consumer, KafkaException, TopicPartition

from cli.progress import ProgressBar
from infrastructure.eventstore.envelope import MalformedEnvelope, from_envelope
from infrastructure.eventstore.log_queries import event_count, relay_progress
from infrastructure.postgres.pool import open_pool
from infrastructure.settings import Settings
from projection_service.balances.consumer import DEFAULT_GROUP as BALANCES_GROUP
from projection_service.rebuild import RebuildProgress, print_report, rebuild
from projection_service.redrive import (
    RedriveReport,
    print_redrive,
    redrive_balances,
    redrive_read_models,
)

_OFFSETS = """
SELECT projection, partition, next_offset, updated_at FROM projection_offsets
WHERE topic = %s ORDER BY projection, partition
"""
_PARKED = """
SELECT projection, count(*), max(parked_at) FROM parked_events GROUP BY projection
"""
_PARKED_LATEST = """
SELECT parked_at, event_type, event_id, error FROM parked_events ORDER BY parked_at DESC LIMIT 5
"""


@dataclass(frozen=True, slots=True)
class PartitionLag:
    partition: int
    next_offset: int
    end_offset: int | None
    oldest_unprojected_age: float | None


def status(settings: Settings) -> int:
    topic = settings.kafka_topic
    with psycopg.connect(settings.postgres_url, autocommit=True) as conn:
        relays = relay_progress(conn)
        offsets = conn.execute(_OFFSETS, (topic,)).fetchall()
        parked = conn.execute(_PARKED).fetchall()
        latest_parked = conn.execute(_PARKED_LATEST).fetchall()
        total_events = event_count(conn)
    print(f"event store: {total_events} events")
    print("\nrelay (event store -> Kafka)")
    if not relays:
        print("  no relay has published yet")
    for name, published, updated, behind, oldest in relays:
        age = f"{time.time() - oldest.timestamp():.1f} s" if oldest else "0 s"
        print(
            f"  {name}: published {published}, behind {behind} events (lag {age}),"
            f" at {updated:%H:%M:%S}"
        )
    print(f"\nprojections (Kafka topic {topic} -> PostgreSQL)")
    by_projection: dict[str, list[tuple[int, int]]] = {}
    for projection, partition, next_offset, _updated in offsets:
        by_projection.setdefault(projection, []).append((partition, next_offset))
    if not by_projection:
        print("  nothing projected yet")
    for projection, partitions in by_projection.items():
        lags = _kafka_lags(settings, topic, partitions)
        total = sum((p.end_offset or 0) - p.next_offset for p in lags if p.end_offset is not None)
        ages = [p.oldest_unprojected_age for p in lags if p.oldest_unprojected_age is not None]
        seconds = f"{max(ages):.1f} s" if ages else "0 s"
        print(f"  {projection}: lag {total} events, {seconds}")
        for p in lags:
            end = "?" if p.end_offset is None else str(p.end_offset)
            print(f"    partition {p.partition}: next offset {p.next_offset} of {end}")
    _print_balances(settings, topic)
    print("\nparked events")
    if not parked:
        print("  none")
    for projection, count, last in parked:
        print(f"  {projection}: {count} (latest {last:%Y-%m-%d %H:%M:%S})")
    for at, event_type, event_id, error in latest_parked:
        print(f"    {at:%H:%M:%S} {event_type or '?'} {event_id or '-'}: {error[:120]}")
    return 0


def _print_balances(settings: Settings, topic: str) -> None:
    print(f"\nbalances (Kafka topic {topic} -> CQL, consumer group {BALANCES_GROUP})")
    lags = _committed_lags(settings, topic, BALANCES_GROUP)
    if lags is None:
        print("  Kafka unreachable: lag unknown")
        return
    if all(committed is None for _, committed, _ in lags):
        print("  nothing committed yet")
    total = sum(end - (committed or 0) for _, committed, end in lags)
    print(f"  lag {total} events")
    for partition, committed, end in lags:
        shown = "-" if committed is None else str(committed)
        print(f"    partition {partition}: committed {shown} of {end}")


def _looking_consumer(settings: Settings, group: str) -> Consumer:
    """A consumer that only looks (offsets, watermarks, one message): reading a group's
    offsets does not join the group, and nothing is ever committed."""
    return Consumer(
        {
            "bootstrap.servers": ",".join(settings.kafka_brokers),
            "group.id": group,
            "enable.auto.commit": False,
            "socket.timeout.ms": 3000,
        }
    )


def _committed_lags(
    settings: Settings, topic: str, group: str
) -> list[tuple[int, int | None, int]] | None:
    """(partition, the group's committed offset or None, end offset) for every partition of
    `topic`; None when Kafka does not answer. The balances group commits in Kafka itself
    (after its CQL writes), so this asks Kafka, not PostgreSQL."""
    consumer = _looking_consumer(settings, group)
    try:
        found = consumer.list_topics(topic, timeout=3.0).topics.get(topic)
        if found is None or found.error is not None:
            return []
        wanted = [TopicPartition(topic, p) for p in sorted(found.partitions)]
        result = []
        for tp in consumer.committed(wanted, timeout=3.0):
            _, end = consumer.get_watermark_offsets(TopicPartition(topic, tp.partition), 3.0)
            result.append((tp.partition, tp.offset if tp.offset >= 0 else None, end))
        return result
    except KafkaException:
        return None
    finally:
        consumer.close()


def _kafka_lags(
    settings: Settings, topic: str, partitions: list[tuple[int, int]]
) -> list[PartitionLag]:
    consumer = _looking_consumer(settings, "healthpay-status")
    try:
        result = []
        for partition, next_offset in partitions:
            tp = TopicPartition(topic, partition, next_offset)
            try:
                _, end = consumer.get_watermark_offsets(tp, timeout=3.0)
            except KafkaException:
                result.append(PartitionLag(partition, next_offset, None, None))
                continue
            age = _age_at(consumer, tp) if end > next_offset else None
            result.append(PartitionLag(partition, next_offset, end, age))
        return result
    finally:
        consumer.close()


def _age_at(consumer: Consumer, tp: TopicPartition) -> float | None:
    """Age of the first message not yet projected (how far behind in seconds)."""
    consumer.assign([tp])
    message = consumer.poll(3.0)
    if message is None or message.error() is not None:
        return None
    try:
        return time.time() - from_envelope(message.value() or b"").timestamp.timestamp()
    except MalformedEnvelope:
        return None


def run_rebuild(settings: Settings, name: str, dry_run: bool, *, redrive: bool = False) -> int:
    """A rebuild, or (`redrive`) a rebuild only where events are parked, which then drops
    the dead letters of those it applied (projection_service/redrive.py)."""
    if name not in {"all", "read_models", "balances"}:
        print(f"unknown projection {name!r}: known are read_models, balances (all)")
        return 2
    code = 0
    if name in {"all", "read_models"}:
        code = max(code, _rebuild_read_models(settings, dry_run, redrive))
    if name in {"all", "balances"}:
        code = max(code, _rebuild_balances(settings, dry_run, name == "balances", redrive))
    return code


def run_redrive(settings: Settings, name: str, dry_run: bool) -> int:
    return run_rebuild(settings, name, dry_run, redrive=True)


def _progress_bar() -> tuple[ProgressBar, Callable[[RebuildProgress], None]]:
    bar = ProgressBar("replay")

    def progress(step: RebuildProgress) -> None:
        bar.update(step.done, step.total, label=step.phase)

    return bar, progress


def _rebuild_read_models(settings: Settings, dry_run: bool, redrive: bool) -> int:
    bar, progress = _progress_bar()

    async def go() -> int:
        pool = await open_pool(settings.postgres_url, 1, 2)
        try:
            if redrive:
                redriven, report = await redrive_read_models(
                    pool, dry_run=dry_run, progress=progress
                )
            else:
                redriven, report = None, await rebuild(pool, dry_run=dry_run, progress=progress)
        finally:
            await pool.close()
        bar.finish()
        return _outcome(report, redriven, print_report)

    return asyncio.run(go())


def _rebuild_balances(settings: Settings, dry_run: bool, required: bool, redrive: bool) -> int:
    """The CQL balance tables: a new table version, compared, then the registry flipped.
    Under `all`, an unreachable CQL store is reported and skipped (deployments without one)."""
    from cassandra.cluster import NoHostAvailable  # type: ignore[import-untyped]

    from infrastructure.cassandra.session import CqlConfig, connect
    from projection_service.balances.rebuild import print_balance_report, rebuild_balances

    bar, progress = _progress_bar()
    config = CqlConfig.from_settings(settings)
    try:
        connection = connect(config)
    except NoHostAvailable as exc:
        if required:
            raise
        print(f"\nbalances: SKIPPED, CQL store {settings.scylla_hosts} unreachable: {exc}")
        return 0
    with connection as cql:
        args = (cql.session, config.keyspace, settings.postgres_url)
        if redrive:
            redriven, report = redrive_balances(*args, dry_run=dry_run, progress=progress)
        else:
            redriven, report = None, rebuild_balances(*args, dry_run=dry_run, progress=progress)
    bar.finish()
    return _outcome(report, redriven, print_balance_report)


def _outcome(report: Any, redriven: RedriveReport | None, show: Callable[[Any], None]) -> int:
    """Prints the rebuild's report, then the redrive's. A rebuild fails when a dry run finds
    differences (so a scheduled check can alert); a redrive when events stay parked."""
    if report is not None:
        show(report)
    if redriven is None:
        return 0 if report.swapped or report.identical else 1
    print_redrive(redriven)
    return 0 if redriven.ok else 1
