"""The migration runner against the real PostgreSQL."""

from __future__ import annotations

import asyncio

import psycopg
import pytest

from infrastructure.postgres.migrations import (
    Migration,
    MigrationError,
    bundled_migrations,
    migrate,
)
from tests.integration.postgres_harness import PostgresHarness

pytestmark = pytest.mark.integration


@pytest.fixture
def empty_url(postgres_harness: PostgresHarness) -> str:
    """A database without any migration applied (the per-test ones come migrated)."""
    url = postgres_harness.create_database()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP SCHEMA public CASCADE")
        conn.execute("CREATE SCHEMA public")
    return url


def test_bundled_files_load_in_name_order() -> None:
    names = [m.name for m in bundled_migrations()]
    assert names[0] == "0001_event_store.sql"
    assert names == sorted(names)


async def test_applies_each_file_once(empty_url: str) -> None:
    assert await migrate(empty_url) == [m.name for m in bundled_migrations()]
    assert await migrate(empty_url) == []
    with psycopg.connect(empty_url) as conn:
        tables = {r[0] for r in conn.execute("SELECT tablename FROM pg_tables")}
    assert {"events", "snapshots", "idempotency_keys", "schema_migrations"} <= tables


async def test_concurrent_runners_apply_once(empty_url: str) -> None:
    results = await asyncio.gather(*(migrate(empty_url) for _ in range(4)))
    assert sorted(len(r) for r in results) == [0, 0, 0, len(bundled_migrations())]


async def test_a_changed_file_is_refused(empty_url: str) -> None:
    await migrate(empty_url)
    first = bundled_migrations()[0]
    with pytest.raises(MigrationError, match="changed"):
        await migrate(empty_url, [Migration(first.name, first.text + "\n-- edited\n")])


async def test_a_failing_file_leaves_nothing_behind(empty_url: str) -> None:
    await migrate(empty_url)
    broken = Migration("9999_broken.sql", "CREATE TABLE half (id int); SELECT 1/0;")
    with pytest.raises(psycopg.errors.DivisionByZero):
        await migrate(empty_url, [*bundled_migrations(), broken])
    with psycopg.connect(empty_url) as conn:
        assert conn.execute("SELECT to_regclass('half')").fetchone() == (None,)
        names = [r[0] for r in conn.execute("SELECT name FROM schema_migrations")]
    assert "9999_broken.sql" not in names
