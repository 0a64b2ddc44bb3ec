"""Rebuild the CQL balance tables from the PostgreSQL event store while the live ones serve.

The CQL counterpart of projection_service/rebuild.py, with table VERSIONS instead of shadow
tables and a rename (CQL cannot rename; see balances/versions.py):

1. Create the next version's four tables (current + 1), empty.
2. Replay `events` in position order, chunk by chunk, through the very BalanceProjector the
   consumer runs (pinned to the new version). Writes are absolute, version-timestamped
   upserts, so applying an event twice or late is harmless.
3. Catch up: positions commit out of order, so every event of a transaction at or above the
   xmin horizon taken before the replay is applied again (idempotent).
4. Compare the current and the new version row for row (missing / extra / different, a few
   examples): the new version is what the event store says.
5. Unless a dry run: flip the registry to the new version, wait `grace_s` (at least the
   consumers' `refresh_seconds` plus a batch: until then a consumer may still write a batch
   to the old version), then catch up once more from the horizon taken before step 3's
   catch-up. From then on the consumers write the new version only.
   A dry run drops the new tables instead (unless `keep_new`).

The version swapped out is kept (a rollback is a registry write); a later real rebuild drops
every suffixed version but the current one before it starts (so at most the current, the
previous and the one being built exist). Version 1 (the seed's names) is never dropped.
One rebuild at a time per database (a PostgreSQL advisory lock).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import psycopg

from infrastructure.eventstore import log_reads
from infrastructure.eventstore.log_reads import LogKey
from projection_service.balances.projector import BalanceProjector
from projection_service.balances.versions import (
    LOGICAL_TABLES,
    create_version,
    current_version,
    drop_version,
    ensure_registry,
    existing_versions,
    set_current_version,
    table_name,
)
from projection_service.read_models.compare import (
    DifferenceKind,
    RowDifference,
    TableComparison,
)
from projection_service.rebuild import (
    ProgressCallback,
    RebuildProgress,
    RebuildRunningError,
    print_comparisons,
)

_LOCK_KEY = 0x4850426C52656264  # "HPBlRebd": not the read models' lock, both may run

# Primary-key columns per table, in key order (the rest are compared as values).
PRIMARY_KEYS: dict[str, tuple[str, ...]] = {
    "wallet_balances": ("wallet_id",),
    "medcard_monthly_spend": ("medcard_id", "month"),
    "wallet_entries": ("wallet_id", "version"),
    "medcard_spend_entries": ("medcard_id", "month", "version"),
}


@dataclass(frozen=True, slots=True)
class BalanceRebuildReport:
    events: int  # balance events applied to the new version (replay and catch-ups)
    bad: int  # balance events the projector could not read (logged, skipped)
    comparisons: tuple[TableComparison, ...]  # live = current version, shadow = new one
    previous_version: int
    new_version: int
    swapped: bool

    @property
    def identical(self) -> bool:
        return all(c.identical for c in self.comparisons)


def rebuild_balances(
    session: Any,
    keyspace: str,
    conninfo: str,
    *,
    dry_run: bool = False,
    keep_new: bool = False,
    chunk_size: int = 5000,
    examples: int = 3,
    grace_s: float = 10.0,
    progress: ProgressCallback | None = None,
) -> BalanceRebuildReport:
    """Rebuild into the next version, compare, and (unless `dry_run`) swap it in. Blocking."""
    report = progress or (lambda _: None)
    if not keyspace.isidentifier():
        raise ValueError(f"bad keyspace name {keyspace!r}")
    with psycopg.connect(conninfo, autocommit=True) as conn:
        locked = conn.execute("SELECT pg_try_advisory_lock(%s)", (_LOCK_KEY,)).fetchone()
        if not (locked and locked[0]):
            raise RebuildRunningError("another balance rebuild is running on this database")
        try:
            return _rebuild(
                session, keyspace, conn, dry_run, keep_new, chunk_size, examples, grace_s, report
            )
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))


def _rebuild(
    session: Any,
    keyspace: str,
    conn: psycopg.Connection[Any],
    dry_run: bool,
    keep_new: bool,
    chunk_size: int,
    examples: int,
    grace_s: float,
    report: ProgressCallback,
) -> BalanceRebuildReport:
    ensure_registry(session, keyspace)
    live = current_version(session, keyspace)
    found = existing_versions(session, keyspace)
    target = max({live, *found}) + 1
    previous = _previous(session, keyspace)
    # After a swap the current version becomes the previous one: older ones go (a dry run
    # keeps the rollback target too).
    keep = {1, live} if previous is None or not dry_run else {1, live, previous}
    for stale in sorted(found - keep):
        drop_version(session, keyspace, stale, current=live)
    create_version(session, keyspace, target)
    try:
        projector = BalanceProjector(session, keyspace, version=target)
        applied = bad = 0
        first = log_reads.horizon(conn)
        # 2. replay
        total = log_reads.last_position(conn)
        after = 0
        while events := log_reads.read_by_position(conn, after, chunk_size):
            after = events[-1].position
            result = projector.project(events)
            applied, bad = applied + result.events, bad + result.bad
            report(RebuildProgress("replay", after, max(total, after)))
        # 3. catch up
        late = log_reads.horizon(conn)
        a, b = _catch_up(conn, projector, first, chunk_size, report)
        applied, bad = applied + a, bad + b
        # 4. compare
        comparisons = []
        for done, logical in enumerate(LOGICAL_TABLES, start=1):
            comparisons.append(compare_versions(session, keyspace, logical, live, target, examples))
            report(RebuildProgress("compare", done, len(LOGICAL_TABLES)))
        # 5. swap
        if not dry_run:
            set_current_version(session, keyspace, target, previous=live)
            time.sleep(grace_s)
            a, b = _catch_up(conn, projector, late, chunk_size, report)
            applied, bad = applied + a, bad + b
            report(RebuildProgress("swap", a, a))
    except BaseException:
        if current_version(session, keyspace) != target and not keep_new:
            drop_version(session, keyspace, target, current=live)
        raise
    if dry_run and not keep_new:
        drop_version(session, keyspace, target, current=live)
    report(RebuildProgress("done", applied, applied))
    return BalanceRebuildReport(applied, bad, tuple(comparisons), live, target, not dry_run)


def compare_versions(
    session: Any, keyspace: str, logical: str, live: int, new: int, examples: int = 3
) -> TableComparison:
    """Row-for-row comparison of one table in two versions (whole-table scans)."""
    key_columns = PRIMARY_KEYS[logical]
    live_rows = _rows(session, keyspace, table_name(logical, live), key_columns)
    new_rows = _rows(session, keyspace, table_name(logical, new), key_columns)
    counts = {"missing": 0, "extra": 0, "different": 0}
    found: list[RowDifference] = []
    for key in sorted(set(live_rows) | set(new_rows), key=lambda k: tuple(map(str, k))):
        old, fresh = live_rows.get(key), new_rows.get(key)
        if old == fresh:
            continue
        kind: DifferenceKind = (
            "missing" if old is None else "extra" if fresh is None else "different"
        )
        counts[kind] += 1
        if sum(1 for d in found if d.kind == kind) < examples:
            found.append(RowDifference(kind, old, fresh))
    return TableComparison(
        logical, counts["missing"], counts["extra"], counts["different"], tuple(found)
    )


def print_balance_report(report: BalanceRebuildReport) -> None:
    print(
        f"\nbalances: applied {report.events} events, {report.bad} unreadable;"
        f" version {report.previous_version} -> {report.new_version}"
    )
    print_comparisons(report.comparisons, rebuilt="rebuilt")
    if report.swapped:
        print(f"swapped in: readers now use version {report.new_version}")
    else:
        print(f"dry run: version {report.previous_version} untouched")


# ----------------------------------------------------------------------------- internals


def _rows(
    session: Any, keyspace: str, table: str, key_columns: tuple[str, ...]
) -> dict[tuple[Any, ...], dict[str, Any]]:
    out: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in session.execute(f"SELECT * FROM {keyspace}.{table}"):
        values = row._asdict()
        key = tuple(values[c] for c in key_columns)
        out[key] = {k: _plain(v) for k, v in values.items()}
    return out


def _plain(value: Any) -> Any:
    # Numeric equality (350.0 == 350.00), but examples print like the read models' jsonb.
    return value.normalize() if isinstance(value, Decimal) else value


def _previous(session: Any, keyspace: str) -> int | None:
    row = session.execute(
        "SELECT previous FROM " + keyspace + ".balance_table_versions WHERE name = 'balances'"
    ).one()
    return None if row is None or row.previous is None else int(row.previous)


def _catch_up(
    conn: psycopg.Connection[Any],
    projector: BalanceProjector,
    horizon: int,
    chunk_size: int,
    report: ProgressCallback,
) -> tuple[int, int]:
    applied = bad = 0
    after = LogKey(horizon, 0)
    while True:
        events, after = log_reads.read_from(conn, after, chunk_size)
        if not events:
            return applied, bad
        result = projector.project(events)
        applied, bad = applied + result.events, bad + result.bad
        report(RebuildProgress("catch_up", applied, applied))
