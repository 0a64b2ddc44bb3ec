"""Apply the CQL migrations shipped in `schemas/cql`, each once, in name order.

The keyspace is created first (IF NOT EXISTS, replication from CqlConfig), then each file's
statements run in order and the file is recorded in `<keyspace>.cql_migrations`. CQL has no
transactional DDL: every statement is `IF NOT EXISTS`, so a file that failed half-way is
simply run again. One migrator at a time: concurrent schema changes on ScyllaDB/Cassandra can
disagree, so `healthpay db migrate` queues CQL migrators on a PostgreSQL advisory lock
(infrastructure/postgres/locks.py).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from infrastructure.cassandra.session import CqlConfig
from infrastructure.migration_files import MigrationFile, read_migration_files

DDL_TIMEOUT_S = 60.0


class CqlMigrationError(RuntimeError):
    pass


CqlMigration = MigrationFile


def statements(migration: CqlMigration, keyspace: str) -> list[str]:
    """The file's statements, in order, for `keyspace` (CQL runs one statement at a time)."""
    lines = [ln for ln in migration.text.splitlines() if not ln.strip().startswith("--")]
    parts = "\n".join(lines).split(";")
    return [p.strip().replace("{keyspace}", keyspace) for p in parts if p.strip()]


def bundled_migrations(package: str = "schemas.cql") -> list[CqlMigration]:
    return read_migration_files(package, ".cql")


def migrate(
    session: Any, config: CqlConfig, migrations: list[CqlMigration] | None = None
) -> list[str]:
    """Applies what is not yet applied; returns the names applied (empty when up to date).
    A recorded migration whose file has since changed is an error, never re-run."""
    ks = config.keyspace
    if not ks.isidentifier():
        raise CqlMigrationError(f"bad keyspace name {ks!r}")
    session.execute(
        f"CREATE KEYSPACE IF NOT EXISTS {ks} WITH replication = {config.replication}",
        timeout=DDL_TIMEOUT_S,
    )
    session.execute(
        f"CREATE TABLE IF NOT EXISTS {ks}.cql_migrations "
        "(name text PRIMARY KEY, checksum text, applied_at timestamp)",
        timeout=DDL_TIMEOUT_S,
    )
    done = {
        row.name: row.checksum
        for row in session.execute(f"SELECT name, checksum FROM {ks}.cql_migrations")
    }
    applied: list[str] = []
    for migration in bundled_migrations() if migrations is None else migrations:
        recorded = done.get(migration.name)
        if recorded is not None:
            if recorded != migration.checksum:
                raise CqlMigrationError(f"{migration.name} changed after it was applied")
            continue
        for statement in statements(migration, ks):
            session.execute(statement, timeout=DDL_TIMEOUT_S)
        session.execute(
            f"INSERT INTO {ks}.cql_migrations (name, checksum, applied_at) VALUES (%s, %s, %s)",
            (migration.name, migration.checksum, datetime.now(UTC)),
        )
        applied.append(migration.name)
    return applied
