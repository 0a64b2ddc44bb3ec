"""Apply the SQL migrations shipped in `schemas/sql`, each once, in name order.

Each file runs in its own transaction together with its row in `schema_migrations`, so a
failed file leaves nothing behind. A session advisory lock serialises concurrent runners
(several pods starting at once): the second waits, then finds the work done.
"""

from __future__ import annotations

import asyncio

from infrastructure.migration_files import MigrationFile, read_migration_files
from infrastructure.postgres.locks import SQL_MIGRATIONS, advisory_lock

# Arbitrary but fixed: every runner of this project must use the same key.

_CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
  name TEXT PRIMARY KEY,
  checksum TEXT NOT NULL,
  applied_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now()
)
"""


class MigrationError(RuntimeError):
    pass


Migration = MigrationFile


def bundled_migrations(package: str = "schemas.sql") -> list[Migration]:
    return read_migration_files(package, ".sql")


async def migrate(conninfo: str, migrations: list[Migration] | None = None) -> list[str]:
    """Apply the migrations not yet applied; return their names (empty when up to date).

    Runs the blocking `migrate_sync` in a worker thread: migrating is rare and short, and
    one implementation serves async services and plain scripts (even inside a running loop).
    """
    return await asyncio.to_thread(migrate_sync, conninfo, migrations)


def migrate_sync(conninfo: str, migrations: list[Migration] | None = None) -> list[str]:
    todo = bundled_migrations() if migrations is None else migrations
    applied_now: list[str] = []
    # Session lock: released by closing the connection, even when a migration fails.
    with advisory_lock(conninfo, SQL_MIGRATIONS) as conn:
        conn.execute(_CREATE_TABLE)
        applied: dict[str, str] = dict(
            conn.execute("SELECT name, checksum FROM schema_migrations").fetchall()
        )
        for migration in todo:
            known = applied.get(migration.name)
            if known is not None:
                # An applied file must never change: fix forward with a new file.
                if known != migration.checksum:
                    raise MigrationError(f"{migration.name} changed after it was applied")
                continue
            with conn.transaction():
                # No parameters: psycopg sends the file with the simple query protocol,
                # which accepts several statements at once.
                conn.execute(migration.text.encode())
                conn.execute(
                    "INSERT INTO schema_migrations (name, checksum) VALUES (%s, %s)",
                    (migration.name, migration.checksum),
                )
            applied_now.append(migration.name)
    return applied_now
