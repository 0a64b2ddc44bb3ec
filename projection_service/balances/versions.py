"""Versions of the CQL balance tables, so that they can be rebuilt while the live ones serve.

ScyllaDB/Cassandra cannot rename a table, so a rebuild writes a NEW VERSION of the tables
and then points readers at it through a registry row. Design choice (option (a)):

* Version 1 IS the seed's tables, `wallet_balances`, `medcard_monthly_spend`,
  `wallet_entries`, `medcard_spend_entries`, created by the migrations as before. Version N>1
  is the same four tables suffixed `_v<N>` (`wallet_balances_v2`, ...), created by the
  rebuild from the very CREATE TABLE statements of `schemas/cql` (the names rewritten), so
  migrations stay unchanged and still run on both ScyllaDB and Cassandra.
* The four tables are versioned TOGETHER: one registry row, `balance_table_versions`
  ('balances' -> N), is the single switch; a flip is one plain (non-LWT) write, atomic per
  row. No row, or no registry table at all (a keyspace never rebuilt), means version 1.
  The registry table is created by the first rebuild (IF NOT EXISTS), not by a migration:
  keyspaces that never rebuild see no change.
* Readers resolve the names through the registry: `BalanceProjector` (cached, re-read every
  `refresh_seconds`, and on restart) and `healthpay balances verify` (at start). A reader
  that queries the seed names directly keeps working until the first rebuild swaps, and then
  reads the retired version 1 (kept, never dropped: it belongs to the migrations).
* Retired suffixed versions are kept until the next real rebuild (a rollback is a registry write)
  and dropped when it starts; version 1 and the current version are never dropped.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from cassandra import InvalidRequest  # type: ignore[import-untyped]

from infrastructure.cassandra.migrations import DDL_TIMEOUT_S, bundled_migrations, statements

REGISTRY = "balance_table_versions"
TABLE_SET = "balances"
LOGICAL_TABLES = (
    "wallet_balances",
    "medcard_monthly_spend",
    "wallet_entries",
    "medcard_spend_entries",
)
_SUFFIX = re.compile(r"^(?P<name>[a-z_]+?)_v(?P<version>\d+)$")


def table_name(logical: str, version: int) -> str:
    """The physical table of `logical` in `version` (1: the seed's own name)."""
    if logical not in LOGICAL_TABLES:
        raise ValueError(f"not a versioned balance table: {logical!r}")
    if version < 1:
        raise ValueError(f"version must be positive, got {version}")
    return logical if version == 1 else f"{logical}_v{version}"


def current_version(session: Any, keyspace: str) -> int:
    """The version readers use now: the registry's, or 1 when nothing was ever rebuilt."""
    try:
        row = session.execute(
            f"SELECT version FROM {keyspace}.{REGISTRY} WHERE name = %s", (TABLE_SET,)
        ).one()
    except InvalidRequest:  # no registry table yet: the keyspace was never rebuilt
        return 1
    return 1 if row is None or row.version is None else int(row.version)


def ensure_registry(session: Any, keyspace: str) -> None:
    session.execute(
        f"CREATE TABLE IF NOT EXISTS {keyspace}.{REGISTRY} "
        "(name text PRIMARY KEY, version int, previous int, updated_at timestamp)",
        timeout=DDL_TIMEOUT_S,
    )


def set_current_version(session: Any, keyspace: str, version: int, previous: int) -> None:
    """The swap: one plain write of one row (no LWT; run one rebuild at a time)."""
    session.execute(
        f"INSERT INTO {keyspace}.{REGISTRY} (name, version, previous, updated_at) "
        "VALUES (%s, %s, %s, %s)",
        (TABLE_SET, version, previous, datetime.now(UTC)),
    )


def existing_versions(session: Any, keyspace: str) -> set[int]:
    """Versions whose tables (any of the four) exist in the keyspace."""
    rows = session.execute(
        "SELECT table_name FROM system_schema.tables WHERE keyspace_name = %s", (keyspace,)
    )
    found: set[int] = set()
    for row in rows:
        name = str(row.table_name)
        if name in LOGICAL_TABLES:
            found.add(1)
            continue
        match = _SUFFIX.match(name)
        if match and match["name"] in LOGICAL_TABLES:
            found.add(int(match["version"]))
    return found


def version_statements(keyspace: str, version: int) -> list[str]:
    """The four tables' CREATE statements, renamed to `version`'s tables: for each table the
    LAST of the migrations' statements creating it, so a table a later migration re-created
    in a new shape (0003: the card history by card) is made in that shape at once. The
    migrations' DROPs are not repeated: `create_version` drops a version's leftovers first."""
    if version < 2:
        raise ValueError("version 1 is created by the migrations")
    names = "|".join(LOGICAL_TABLES)
    pattern = re.compile(rf"\b{re.escape(keyspace)}\.({names})\b")
    creates: dict[str, str] = {}
    for migration in bundled_migrations():
        for statement in statements(migration, keyspace):
            match = pattern.search(statement)
            if match and statement.upper().startswith("CREATE TABLE"):
                creates[match[1]] = pattern.sub(
                    lambda m: f"{keyspace}.{m[1]}_v{version}", statement
                )
    return list(creates.values())


def create_version(session: Any, keyspace: str, version: int) -> None:
    """Fresh, empty tables for `version` (any leftovers of an aborted run are dropped)."""
    drop_version(session, keyspace, version, current=None)
    for statement in version_statements(keyspace, version):
        session.execute(statement, timeout=DDL_TIMEOUT_S)


def drop_version(session: Any, keyspace: str, version: int, current: int | None) -> None:
    if version == 1 or version == current:
        raise ValueError(f"refusing to drop version {version} (seed or current)")
    for logical in LOGICAL_TABLES:
        session.execute(
            f"DROP TABLE IF EXISTS {keyspace}.{table_name(logical, version)}",
            timeout=DDL_TIMEOUT_S,
        )
