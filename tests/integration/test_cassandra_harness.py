"""The CQL behaviour the read-model projection relies on, against the real node the harness
starts (Cassandra 5.0 standing in for ScyllaDB), in the dialect both speak.

docs/design.md §5: no counters, no LWT; events carry absolute results and writes are upserts
`USING TIMESTAMP` derived from the event's order, so a replayed or reordered write can never
move a value backwards. Table names are qualified with the test's keyspace (no `USE`).
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import pytest
from cassandra.query import BatchStatement, BatchType  # type: ignore[import-untyped]

from tests.integration.cassandra_harness import CassandraHarness, parse_hosts

pytestmark = pytest.mark.integration


def _create_balances(session: Any, ks: str) -> None:
    session.execute(
        f"""
        CREATE TABLE {ks}.wallet_balance (
            wallet_id uuid PRIMARY KEY,
            balance decimal,
            month_spent decimal,
            version bigint
        )
        """
    )


def _upsert(ks: str) -> str:
    return (
        f"INSERT INTO {ks}.wallet_balance (wallet_id, balance, month_spent, version) "
        "VALUES (?, ?, ?, ?) USING TIMESTAMP ?"
    )


def _balance(session: Any, ks: str, wallet: uuid.UUID) -> tuple[Decimal, Decimal, int]:
    select = session.prepare(
        f"SELECT balance, month_spent, version FROM {ks}.wallet_balance WHERE wallet_id = ?"
    )
    row = session.execute(select, (wallet,)).one()
    assert row is not None
    return row.balance, row.month_spent, row.version


def test_node_answers_over_protocol_v4(cassandra_harness: CassandraHarness) -> None:
    cluster = cassandra_harness.new_cluster()
    try:
        row = cluster.connect().execute("SELECT release_version FROM system.local").one()
        assert cluster.protocol_version == 4
        assert row.release_version
    finally:
        cluster.shutdown()


def test_each_test_has_its_own_network_topology_keyspace(
    cassandra_harness: CassandraHarness, cassandra_session: Any, cassandra_keyspace: str
) -> None:
    row = cassandra_session.execute(
        "SELECT replication FROM system_schema.keyspaces WHERE keyspace_name = %s",
        (cassandra_keyspace,),
    ).one()
    assert row.replication["class"].endswith("NetworkTopologyStrategy")
    assert row.replication[cassandra_harness.datacenter] == "1"
    tables = cassandra_session.execute(
        "SELECT table_name FROM system_schema.tables WHERE keyspace_name = %s",
        (cassandra_keyspace,),
    )
    assert list(tables) == []


def test_decimal_round_trips_exactly(cassandra_session: Any, cassandra_keyspace: str) -> None:
    ks = cassandra_keyspace
    _create_balances(cassandra_session, ks)
    wallet = uuid.uuid4()
    amounts = [Decimal("0.10"), Decimal("-12.345"), Decimal("12345678901234567890.123456789")]
    upsert = cassandra_session.prepare(_upsert(ks))
    for version, amount in enumerate(amounts, start=1):
        cassandra_session.execute(upsert, (wallet, amount, amount * 2, version, version))
        balance, month_spent, _ = _balance(cassandra_session, ks, wallet)
        assert (balance, month_spent) == (amount, amount * 2)
        assert str(balance) == str(amount)  # the scale is kept: 0.10 stays 0.10


def test_older_timestamp_never_overwrites_newer(
    cassandra_session: Any, cassandra_keyspace: str
) -> None:
    """A reordered or replayed projection write is a no-op: the cell with the higher write
    timestamp wins whatever the order of arrival (the property the balance projection needs)."""
    ks = cassandra_keyspace
    _create_balances(cassandra_session, ks)
    wallet = uuid.uuid4()
    newer, older = 2_000_000, 1_000_000  # microseconds, as the projection derives them
    insert = (
        f"INSERT INTO {ks}.wallet_balance (wallet_id, balance, month_spent, version) "
        "VALUES (%s, %s, %s, %s) USING TIMESTAMP %s"
    )
    cassandra_session.execute(insert, (wallet, Decimal("150.25"), Decimal("49.75"), 7, newer))
    cassandra_session.execute(insert, (wallet, Decimal("999.99"), Decimal("0.00"), 3, older))
    assert _balance(cassandra_session, ks, wallet) == (Decimal("150.25"), Decimal("49.75"), 7)

    # The same through UPDATE, and through a prepared statement with the timestamp bound.
    cassandra_session.execute(
        f"UPDATE {ks}.wallet_balance USING TIMESTAMP %s SET balance = %s WHERE wallet_id = %s",
        (older + 1, Decimal("0"), wallet),
    )
    upsert = cassandra_session.prepare(_upsert(ks))
    cassandra_session.execute(upsert, (wallet, Decimal("1"), Decimal("1"), 1, older))
    assert _balance(cassandra_session, ks, wallet) == (Decimal("150.25"), Decimal("49.75"), 7)

    # A newer event does move it on; replaying that event changes nothing.
    for _ in range(2):
        cassandra_session.execute(
            upsert, (wallet, Decimal("100.25"), Decimal("99.75"), 8, newer + 1)
        )
        assert _balance(cassandra_session, ks, wallet) == (Decimal("100.25"), Decimal("99.75"), 8)

    row = cassandra_session.execute(
        f"SELECT WRITETIME(balance) AS written FROM {ks}.wallet_balance WHERE wallet_id = %s",
        (wallet,),
    ).one()
    assert row.written == newer + 1


def test_prepared_statements_and_a_single_partition_batch(
    cassandra_session: Any, cassandra_keyspace: str
) -> None:
    ks = cassandra_keyspace
    cassandra_session.execute(
        f"""
        CREATE TABLE {ks}.wallet_ledger (
            wallet_id uuid,
            seq bigint,
            amount decimal,
            balance_after decimal,
            PRIMARY KEY (wallet_id, seq)
        ) WITH CLUSTERING ORDER BY (seq DESC)
        """
    )
    insert = cassandra_session.prepare(
        f"INSERT INTO {ks}.wallet_ledger (wallet_id, seq, amount, balance_after) "
        "VALUES (?, ?, ?, ?) USING TIMESTAMP ?"
    )
    latest = cassandra_session.prepare(
        f"SELECT seq, balance_after FROM {ks}.wallet_ledger WHERE wallet_id = ? LIMIT ?"
    )
    assert [c.name for c in insert.column_metadata] == [
        "wallet_id",
        "seq",
        "amount",
        "balance_after",
        "[timestamp]",
    ]
    wallet = uuid.uuid4()

    batch = BatchStatement(batch_type=BatchType.UNLOGGED)
    balance = Decimal("500.00")
    for seq in range(1, 6):
        balance -= Decimal("12.50")
        batch.add(insert, (wallet, seq, Decimal("-12.50"), balance, seq))
    cassandra_session.execute(batch)

    rows = list(cassandra_session.execute(latest, (wallet, 2)))
    assert [(r.seq, r.balance_after) for r in rows] == [
        (5, Decimal("437.50")),
        (4, Decimal("450.00")),
    ]
    other = uuid.uuid4()
    cassandra_session.execute(insert, (other, 1, Decimal("1.00"), Decimal("1.00"), 1))
    assert [r.seq for r in cassandra_session.execute(latest, (other, 10))] == [1]


def test_restart_keeps_the_data(
    cassandra_harness: CassandraHarness, cassandra_keyspace: str
) -> None:
    if not cassandra_harness.owns_node:
        pytest.skip("the cluster of HEALTHPAY_TEST_SCYLLA_HOSTS is not ours to restart")
    ks = cassandra_keyspace
    wallet = uuid.uuid4()
    session = cassandra_harness.session()
    try:
        _create_balances(session, ks)
        session.execute(
            session.prepare(_upsert(ks)), (wallet, Decimal("42.42"), Decimal("7.58"), 3, 3_000_000)
        )
    finally:
        session.shutdown()

    hosts_before = cassandra_harness.hosts
    cassandra_harness.restart()
    assert cassandra_harness.hosts == hosts_before

    cluster = cassandra_harness.new_cluster()  # a client that never saw the node before
    try:
        session = cluster.connect()
        assert _balance(session, ks, wallet) == (Decimal("42.42"), Decimal("7.58"), 3)
        # And an older write still loses after the restart.
        session.execute(session.prepare(_upsert(ks)), (wallet, Decimal("0"), Decimal("0"), 1, 1))
        assert _balance(session, ks, wallet) == (Decimal("42.42"), Decimal("7.58"), 3)
    finally:
        cluster.shutdown()


def test_parse_hosts() -> None:
    assert parse_hosts("10.0.0.1:9043, scylla ,") == [("10.0.0.1", 9043), ("scylla", 9042)]
    with pytest.raises(ValueError, match="names no host"):
        parse_hosts(" , ")
