"""Fixtures for the balance projection: a migrated keyspace of the test's own and the
command service over the test's PostgreSQL database."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from infrastructure.cassandra.migrations import migrate
from infrastructure.cassandra.session import CqlConfig, CqlConnection, connect
from projection_service.balances.projector import BalanceProjector
from tests.api.support import Api, running_api
from tests.balances.support import cql_config
from tests.integration.cassandra_harness import CassandraHarness


@pytest.fixture
def config(cassandra_harness: CassandraHarness, cassandra_keyspace: str) -> CqlConfig:
    return cql_config(cassandra_harness, cassandra_keyspace)


@pytest.fixture
def cql(config: CqlConfig) -> Iterator[CqlConnection]:
    with connect(config) as connection:
        migrate(connection.session, config)
        yield connection


@pytest.fixture
def projector(cql: CqlConnection, config: CqlConfig) -> BalanceProjector:
    return BalanceProjector(cql.session, config.keyspace, concurrency=8)


@pytest.fixture
async def api(postgres_url: str) -> AsyncIterator[Api]:
    async with running_api("postgres", postgres_url) as running:
        yield running
