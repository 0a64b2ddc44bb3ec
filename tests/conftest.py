"""Fixtures for every test package: the real PostgreSQL (integration/postgres_harness.py);
the session's environment names none of the local stack's endpoints (tests/isolation.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from infrastructure.postgres.pool import Pool, open_pool
from tests.integration.postgres_harness import PostgresHarness, shared_harness
from tests.isolation import scrub_environment

pytest_plugins = [
    "tests.integration.kafka_harness",
    "tests.integration.cassandra_harness",
]

# Before any test runs: an endpoint a test does not name reaches nothing (tests/isolation.py).
scrub_environment()


@pytest.fixture(scope="session")
def postgres_harness() -> Iterator[PostgresHarness]:
    harness = shared_harness()
    yield harness
    harness.stop()


@pytest.fixture
def postgres_url(postgres_harness: PostgresHarness) -> Iterator[str]:
    """Conninfo of a fresh, migrated database of its own for this test."""
    url = postgres_harness.create_database()
    yield url
    postgres_harness.drop_database(url)


@pytest.fixture
async def postgres_pool(postgres_url: str) -> AsyncIterator[Pool]:
    pool = await open_pool(postgres_url, min_size=1, max_size=8)
    yield pool
    await pool.close()
