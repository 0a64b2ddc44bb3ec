"""The CQL balance projection on the real servers (PostgreSQL, Kafka, Cassandra 5 standing in
for ScyllaDB): events written by the command service, projected by version-timestamped
idempotent upserts (docs/design.md §5), read back with CQL and checked by `balances verify`."""

from __future__ import annotations

import asyncio
import io
import random
import threading
import time
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

import psycopg
import pytest
from confluent_kafka import Producer

from cli import projections as ops
from cli.balances import migrate as cql_migrate
from cli.balances import verify
from command_service.relay.publisher import KafkaPublisher
from command_service.relay.relay import Relay
from infrastructure.cassandra.migrations import bundled_migrations, migrate
from infrastructure.cassandra.session import CqlConfig, CqlConnection
from infrastructure.eventstore.envelope import to_envelope
from infrastructure.eventstore.port import RecordedEvent
from infrastructure.postgres.locks import CQL_MIGRATIONS, advisory_lock
from projection_service.balances.consumer import DEFAULT_GROUP, BalanceConsumer
from projection_service.balances.parking import BalanceParking, Parked
from projection_service.balances.projector import BalanceProjector, write_timestamp
from projection_service.read_models.parking import KafkaLocation
from tests.api.support import Api
from tests.balances.support import TABLES, batches, recorded_events, seed, snapshot
from tests.integration.stream_processes import committed_offsets
from tests.isolation import isolated_settings

pytestmark = pytest.mark.integration


def _wallet(cql: CqlConnection, ks: str, wallet_id: str) -> Any:
    select = cql.session.prepare(
        f"SELECT balance, currency, version, WRITETIME(balance) AS wt "
        f"FROM {ks}.wallet_balances WHERE wallet_id = ?"
    )
    return cql.session.execute(select, (UUID(wallet_id),)).one()


def _lags(consumer: BalanceConsumer, topic: str) -> list[float]:
    return [
        s.value
        for metric in consumer.metrics.registry.collect()
        if metric.name == "kafka_consumer_lag"
        for s in metric.samples
        if s.labels["topic"] == topic
    ]


def _month(cql: CqlConnection, ks: str, card_id: str) -> list[Any]:
    select = cql.session.prepare(
        f"SELECT month, total_spent, version FROM {ks}.medcard_monthly_spend WHERE medcard_id = ?"
    )
    return list(cql.session.execute(select, (UUID(card_id),)))


def test_migrations_run_once_and_are_recorded(cql: CqlConnection, config: CqlConfig) -> None:
    ks = config.keyspace
    assert migrate(cql.session, config) == []  # the fixture applied them already
    names = {r.name for r in cql.session.execute(f"SELECT name FROM {ks}.cql_migrations")}
    assert names == {m.name for m in bundled_migrations()}
    tables = {
        r.table_name
        for r in cql.session.execute(
            "SELECT table_name FROM system_schema.tables WHERE keyspace_name = %s", (ks,)
        )
    }
    assert tables == {*TABLES, "cql_migrations"}


def test_cql_migrators_queue_on_the_postgres_lock(
    cql: CqlConnection, config: CqlConfig, postgres_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every pod's deploy step may run `healthpay db migrate`: the CQL part waits its turn."""
    fresh = replace(config, keyspace=f"{config.keyspace}_queued")
    settings = isolated_settings(postgres_url=postgres_url)
    result: list[int] = []
    try:
        with advisory_lock(postgres_url, CQL_MIGRATIONS):  # another migrator is at work
            waiting = threading.Thread(target=lambda: result.append(cql_migrate(settings, fresh)))
            waiting.start()
            waiting.join(timeout=2.0)
            assert waiting.is_alive()  # queued behind the lock, nothing applied
            assert (
                cql.session.execute(
                    "SELECT keyspace_name FROM system_schema.keyspaces WHERE keyspace_name = %s",
                    (fresh.keyspace,),
                ).one()
                is None
            )
        waiting.join(timeout=120)
        assert result == [0]
        names = {
            r.name for r in cql.session.execute(f"SELECT name FROM {fresh.keyspace}.cql_migrations")
        }
        assert names == {m.name for m in bundled_migrations()}
        assert "applied:" in capsys.readouterr().out
    finally:
        cql.session.execute(f"DROP KEYSPACE IF EXISTS {fresh.keyspace}", timeout=60)


def test_migrate_creates_the_keyspace_with_network_topology(
    cql: CqlConnection, config: CqlConfig
) -> None:
    fresh = replace(config, keyspace=f"{config.keyspace}_new")
    try:
        assert len(migrate(cql.session, fresh)) == len(bundled_migrations())
        row = cql.session.execute(
            "SELECT replication FROM system_schema.keyspaces WHERE keyspace_name = %s",
            (fresh.keyspace,),
        ).one()
        assert row.replication["class"].endswith("NetworkTopologyStrategy")
        assert row.replication[config.local_dc] == "1"
    finally:
        cql.session.execute(f"DROP KEYSPACE IF EXISTS {fresh.keyspace}", timeout=60)


async def test_events_reach_cql_through_kafka(
    api: Api,
    postgres_url: str,
    kafka_bootstrap: str,
    kafka_topic: str,
    cql: CqlConnection,
    config: CqlConfig,
    projector: BalanceProjector,
    capsys: pytest.CaptureFixture[str],
) -> None:
    seeded = await seed(api)
    ks = config.keyspace
    stop_relay = threading.Event()
    relay = Relay(postgres_url, KafkaPublisher(kafka_bootstrap, kafka_topic), idle_wait=0.01)
    relay_thread = threading.Thread(target=relay.run, args=(stop_relay,))
    relay_thread.start()
    stop = asyncio.Event()
    consumer = BalanceConsumer(projector, kafka_bootstrap, kafka_topic, poll_seconds=0.1)
    task = asyncio.create_task(consumer.run(stop))
    try:
        deadline = time.monotonic() + 60
        while True:
            row = await asyncio.to_thread(_wallet, cql, ks, seeded.wallet_id)
            months = await asyncio.to_thread(_month, cql, ks, seeded.card_id)
            # while it owns its partitions; reported after a batch's writes and commit
            lags = _lags(consumer, kafka_topic)
            if (
                row is not None
                and row.balance == seeded.balance
                and [m.total_spent for m in months] == [seeded.month_spent]
                and lags
            ):
                break
            assert time.monotonic() < deadline, (row, months, lags)
            await asyncio.sleep(0.1)
    finally:
        stop.set()
        await task
        stop_relay.set()
        await asyncio.to_thread(relay_thread.join, 30)
    events = recorded_events(postgres_url)
    wallet_events = [e for e in events if str(e.aggregate_id) == seeded.wallet_id]
    assert row.currency == wallet_events[0].data["currency"]  # written by wallet.opened
    assert row.version == wallet_events[-1].version
    assert row.wt == write_timestamp(wallet_events[-1].version)
    entries = list(
        cql.session.execute(
            f"SELECT version, amount, balance_after FROM {ks}.wallet_entries WHERE wallet_id = %s",
            (UUID(seeded.wallet_id),),
        )
    )
    assert [(e.amount, e.balance_after) for e in entries] == [
        (Decimal("30.00"), Decimal("409.50")),
        (Decimal("-120.50"), Decimal("379.50")),
        (Decimal("500.00"), Decimal("500.00")),
    ]
    month = months[0].month
    spend = list(
        cql.session.execute(
            f"SELECT event_type, amount, month_spent_after FROM {ks}.medcard_spend_entries "
            "WHERE medcard_id = %s AND month = %s",
            (UUID(seeded.card_id), month),
        )
    )
    assert [(s.event_type, s.amount, s.month_spent_after) for s in spend] == [
        ("medcard.claim_reversed", Decimal("-315.00"), Decimal("90.00")),
        ("medcard.claim_adjudicated", Decimal("90.00"), Decimal("405.00")),
        ("medcard.claim_adjudicated", Decimal("315.00"), Decimal("315.00")),
    ]
    # The balances group committed its offsets (after the writes): every event, once.
    committed = await asyncio.to_thread(
        committed_offsets, kafka_bootstrap, DEFAULT_GROUP, kafka_topic, 3
    )
    assert sum(committed.values()) == len(events)
    settings = isolated_settings(postgres_url=postgres_url, scylla_keyspace=ks)
    assert verify(settings, config, io.StringIO()) == 0

    # its lag on /metrics (what it reports: tests/integration/test_consumer_lag.py; a
    # rebalance may have dropped a caught-up partition's value) is gone once it let the
    # partitions go, and `healthpay projections status` shows the group caught up
    assert all(0 <= lag <= len(events) for lag in lags)
    assert _lags(consumer, kafka_topic) == []
    status = settings.model_copy(
        update={"kafka_brokers": (kafka_bootstrap,), "kafka_topic": kafka_topic}
    )
    assert await asyncio.to_thread(ops.status, status) == 0
    out = capsys.readouterr().out
    balances = out[out.index(f"consumer group {DEFAULT_GROUP}") :]
    assert "lag 0 events" in balances.splitlines()[1]


async def test_out_of_order_and_duplicated_events_give_the_in_order_result(
    api: Api, postgres_url: str, cql: CqlConnection, config: CqlConfig, projector: BalanceProjector
) -> None:
    seeded = await seed(api)
    events = recorded_events(postgres_url)
    ks = config.keyspace

    for batch in batches(events, 3):
        projector.project(batch)
    in_order = snapshot(cql.session, ks)
    for table in TABLES:
        cql.session.execute(f"TRUNCATE {ks}.{table}", timeout=60)
    assert all(rows == [] for rows in snapshot(cql.session, ks).values())

    shuffled = events * 3  # every event delivered three times
    random.Random(7).shuffle(shuffled)
    shuffled.sort(key=lambda e: -e.version)  # and the newest of each stream first
    for batch in batches(shuffled, 2):
        projector.project(batch)
    assert snapshot(cql.session, ks) == in_order
    assert _wallet(cql, ks, seeded.wallet_id).balance == seeded.balance
    assert [m.total_spent for m in _month(cql, ks, seeded.card_id)] == [seeded.month_spent]


async def test_replaying_the_whole_stream_twice_changes_nothing(
    api: Api, postgres_url: str, cql: CqlConnection, config: CqlConfig, projector: BalanceProjector
) -> None:
    await seed(api)
    events = recorded_events(postgres_url)
    result = projector.project(events)
    assert result.bad == 0
    assert result.skipped == 1  # medcard.issued is not a balance event
    first = snapshot(cql.session, config.keyspace)
    for _ in range(2):
        projector.project(events)
        assert snapshot(cql.session, config.keyspace) == first
    # An old prefix replayed late (a rewound consumer) moves nothing backwards either.
    projector.project(events[:3])
    assert snapshot(cql.session, config.keyspace) == first


async def test_verify_matches_then_reports_a_corrupted_row(
    api: Api, postgres_url: str, cql: CqlConnection, config: CqlConfig, projector: BalanceProjector
) -> None:
    seeded = await seed(api)
    projector.project(recorded_events(postgres_url))
    ks = config.keyspace
    settings = isolated_settings(postgres_url=postgres_url, scylla_keyspace=ks)
    out = io.StringIO()
    assert verify(settings, config, out) == 0, out.getvalue()

    # Corrupt the wallet (a write that wins: a later timestamp) and lose the card-month row.
    corrupt = cql.session.prepare(
        f"UPDATE {ks}.wallet_balances USING TIMESTAMP ? SET balance = ? WHERE wallet_id = ?"
    )
    cql.session.execute(corrupt, (write_timestamp(100), Decimal("1.00"), UUID(seeded.wallet_id)))
    cql.session.execute(
        f"DELETE FROM {ks}.medcard_monthly_spend WHERE medcard_id = %s",
        (UUID(seeded.card_id),),
    )
    out = io.StringIO()
    assert verify(settings, config, out) == 1
    report = out.getvalue()
    assert f"wallet_balances {seeded.wallet_id}: event store 409.50, CQL 1.00" in report
    assert f"medcard_monthly_spend {seeded.card_id}" in report
    assert "event store 90.00, CQL None" in report
    assert "2 difference(s)" in report


def _top_up_without_balance_after(position: int) -> RecordedEvent:
    """A balance event without the absolute value the projection writes."""
    return RecordedEvent(
        position=position, event_id=uuid4(), aggregate_id=uuid4(), aggregate_type="wallet",
        event_type="wallet.topped_up", schema_version=1, version=2,
        data={"amount": "5.00"}, metadata={}, timestamp=datetime.now(UTC),
    )  # fmt: skip


def test_a_balance_event_without_its_absolute_value_is_skipped_not_fatal(
    projector: BalanceProjector,
) -> None:
    result = projector.project([_top_up_without_balance_after(1)])
    assert (result.events, result.bad, result.statements) == (0, 1, 0)


async def test_what_can_never_be_projected_is_parked_in_postgres_and_passed(
    postgres_url: str,
    kafka_bootstrap: str,
    kafka_topic: str,
    projector: BalanceProjector,
    capsys: pytest.CaptureFixture[str],
) -> None:
    broken = _top_up_without_balance_after(7)
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    producer.produce(kafka_topic, value=b"not an envelope", partition=0)
    producer.produce(kafka_topic, value=to_envelope(broken), partition=0)
    assert producer.flush(30) == 0

    stop = asyncio.Event()
    consumer = BalanceConsumer(
        projector,
        kafka_bootstrap,
        kafka_topic,
        group="balances-parking-test",
        poll_seconds=0.1,
        parking=BalanceParking(postgres_url),
    )
    task = asyncio.create_task(consumer.run(stop))

    def parked() -> list[tuple[Any, ...]]:
        with psycopg.connect(postgres_url) as conn:
            return conn.execute(
                "SELECT event_id, event_type, partition, kafka_offset, error, raw, attempts"
                " FROM parked_events WHERE projection = 'balances' ORDER BY kafka_offset"
            ).fetchall()

    try:
        deadline = time.monotonic() + 60
        while len(await asyncio.to_thread(parked)) < 2:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.1)
    finally:
        stop.set()
        await task

    raw, event = await asyncio.to_thread(parked)
    assert (raw[0], raw[2], raw[3], bytes(raw[5])) == (None, 0, 0, b"not an envelope")
    assert raw[4].startswith("malformed envelope")
    assert (event[0], event[1], event[2], event[3]) == (broken.event_id, broken.event_type, 0, 1)
    assert "balance_after" in event[4]
    # the partition went on past them: the group's offset is after both
    committed = await asyncio.to_thread(
        committed_offsets, kafka_bootstrap, "balances-parking-test", kafka_topic, 1
    )
    assert committed == {0: 2}

    # parked once however often it is delivered (a crash between parking and committing)
    parking = BalanceParking(postgres_url)
    location_raw = KafkaLocation(kafka_topic, 0, 0)
    await asyncio.to_thread(parking.park, [Parked(location_raw, "again", raw=b"not an envelope")])
    assert len(await asyncio.to_thread(parked)) == 2

    settings = isolated_settings(postgres_url=postgres_url)
    assert await asyncio.to_thread(ops.status, settings) == 0
    assert "balances: 2" in capsys.readouterr().out
