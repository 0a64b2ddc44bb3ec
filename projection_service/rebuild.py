"""Rebuild every read model from the PostgreSQL event store, while the live ones keep serving.

1. Create `<table>__shadow` LIKE each live table, empty, with only its unique indexes (the
   others and the foreign keys are built after step 3: cheaper than row by row).
2. Replay the `events` table in position order into the shadows, chunk by chunk, each chunk
   one transaction through the very projector the consumer uses (tables=SHADOW).
3. Catch up: an event whose transaction committed after the replay read past its position
   has a transaction id at or above the replay's starting xmin horizon; those not yet in
   the shadows are applied (the projector's per-stream ordering puts them in place).
4. Compare shadow and live row for row (missing / extra / different, with examples).
5. Unless it is a dry run: one transaction locks live and shadow tables, catches up once
   more (nothing can land in the live tables now), and renames the shadows into place.
   The consumer then resumes from its stored offsets; what the shadows already hold it
   finds at or below the streams' versions, a no-op.

Usage: python -m projection_service.rebuild [--dry-run] [--postgres-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal
from uuid import UUID

from psycopg import AsyncConnection
from psycopg.errors import DeadlockDetected, LockNotAvailable
from psycopg.rows import TupleRow

from infrastructure.eventstore import log_reads
from infrastructure.eventstore.log_reads import LogKey
from infrastructure.eventstore.port import RecordedEvent
from infrastructure.postgres.pool import Pool, open_pool
from infrastructure.settings import Settings, SettingsError
from projection_service.read_models import SHADOW, ApplyResult, apply_or_park, replay
from projection_service.read_models.compare import TableComparison, compare_table
from projection_service.read_models.shadow import (
    add_indexes_and_foreign_keys,
    create_shadow,
    drop_shadow,
    lock_tables,
    swap,
)
from projection_service.read_models.tables import PROJECTED_TABLES

CHECKPOINT = "read_models.rebuild"
# Session advisory lock: two rebuilds would drop each other's shadow tables.
_LOCK_KEY = 0x4850526562756C64  # "HPRebuld"
Phase = Literal["replay", "catch_up", "compare", "swap", "done"]

_CHECKPOINT = """
INSERT INTO projection_checkpoints (projection, position, events, updated_at)
VALUES (%s, %s, %s, now())
ON CONFLICT (projection) DO UPDATE
SET position = excluded.position, events = excluded.events, updated_at = now()
"""


class RebuildRunningError(RuntimeError):
    pass


@dataclass(frozen=True, slots=True)
class RebuildProgress:
    phase: Phase
    done: int  # replay: last position read; compare: tables compared; else events applied
    total: int  # replay: the highest position when it started; compare: tables


ProgressCallback = Callable[[RebuildProgress], None]


@dataclass(frozen=True, slots=True)
class RebuildReport:
    events: int  # applied to the shadow tables
    parked: tuple[UUID, ...]
    comparisons: tuple[TableComparison, ...]  # before the swap's last catch-up
    swapped: bool

    @property
    def identical(self) -> bool:
        return all(c.identical for c in self.comparisons)


async def rebuild(
    pool: Pool,
    *,
    dry_run: bool = False,
    keep_shadow: bool = False,
    chunk_size: int = 5000,
    examples: int = 3,
    lock_timeout_ms: int = 5000,
    progress: ProgressCallback | None = None,
) -> RebuildReport:
    """Rebuild into shadow tables, compare, and (unless `dry_run`) swap them in. Takes two
    connections of `pool` (one applies, one reads ahead)."""
    if pool.max_size < 2:
        raise ValueError("a rebuild needs a pool of at least 2 connections")
    report = progress or (lambda _: None)
    async with pool.connection() as conn:
        cur = await conn.execute("SELECT pg_try_advisory_lock(%s)", (_LOCK_KEY,))
        if not (await cur.fetchone() or (False,))[0]:
            raise RebuildRunningError("another rebuild is running on this database")
        try:
            await create_shadow(conn)
            try:
                first = await log_reads.horizon_async(conn)
                async with pool.connection() as reader:
                    result = await _replay(conn, reader, chunk_size, report)
                late = await log_reads.horizon_async(conn)
                result += await _catch_up(conn, LogKey(first, 0), chunk_size, report)
                await add_indexes_and_foreign_keys(conn)
                comparisons = []
                for done, table in enumerate(PROJECTED_TABLES, start=1):
                    comparisons.append(await compare_table(conn, table, examples=examples))
                    report(RebuildProgress("compare", done, len(PROJECTED_TABLES)))
                if not dry_run:
                    result += await _swap(
                        conn, LogKey(late, 0), chunk_size, lock_timeout_ms, report
                    )
            except BaseException:
                if not keep_shadow:
                    await _drop_quietly(conn)
                raise
            if dry_run and not keep_shadow:
                await drop_shadow(conn)
        finally:
            await conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
    report(RebuildProgress("done", result.applied, result.applied))
    return RebuildReport(result.applied, result.parked, tuple(comparisons), not dry_run)


async def _replay(
    conn: AsyncConnection[TupleRow],
    reader: AsyncConnection[TupleRow],
    chunk_size: int,
    report: ProgressCallback,
) -> ApplyResult:
    """The store in position order into the shadows; `reader` reads the next chunk while
    `conn` applies this one (PostgreSQL serves the read while Python builds the rows)."""
    total = await log_reads.last_position_async(conn)
    result = ApplyResult()
    next_chunk = asyncio.ensure_future(log_reads.read_by_position_async(reader, 0, chunk_size))
    try:
        while events := await next_chunk:
            after = events[-1].position
            next_chunk = asyncio.ensure_future(
                log_reads.read_by_position_async(reader, after, chunk_size)
            )
            result += await _apply_chunk(conn, events, after, result.applied)
            report(RebuildProgress("replay", after, max(total, after)))
    finally:
        if not next_chunk.done():
            next_chunk.cancel()
            with contextlib.suppress(BaseException):
                await next_chunk
    return result


async def _catch_up(
    conn: AsyncConnection[TupleRow],
    after: LogKey,
    chunk_size: int,
    report: ProgressCallback,
) -> ApplyResult:
    """Apply what committed behind the replay (see read_models/replay.py)."""
    result = ApplyResult()
    while True:
        events, after = await replay.read_catch_up(conn, SHADOW, after, chunk_size)
        if not events:
            return result
        result += await _apply_chunk(conn, events, None, result.applied)
        report(RebuildProgress("catch_up", result.applied, result.applied))


async def _swap(
    conn: AsyncConnection[TupleRow],
    after: LogKey,
    chunk_size: int,
    lock_timeout_ms: int,
    report: ProgressCallback,
    attempts: int = 5,
) -> ApplyResult:
    for attempt in range(1, attempts + 1):
        try:
            async with conn.transaction():
                # Readers queue behind a waiting ACCESS EXCLUSIVE request: wait briefly, retry.
                await conn.execute(
                    "SELECT set_config('lock_timeout', %s, true)", (f"{int(lock_timeout_ms)}ms",)
                )
                await lock_tables(conn)
                result = await _catch_up(conn, after, chunk_size, report)
                await swap(conn)
            report(RebuildProgress("swap", result.applied, result.applied))
            return result
        except (LockNotAvailable, DeadlockDetected):
            if attempt == attempts:
                raise
            await asyncio.sleep(0.5 * attempt)
    raise AssertionError("unreachable")


async def _apply_chunk(
    conn: AsyncConnection[TupleRow],
    events: list[RecordedEvent],
    position: int | None,
    applied_before: int,
) -> ApplyResult:
    async with conn.transaction():
        result = await apply_or_park(conn, events, tables=SHADOW)
        if position is not None:
            await conn.execute(_CHECKPOINT, (CHECKPOINT, position, applied_before + result.applied))
    return result


async def _drop_quietly(conn: AsyncConnection[TupleRow]) -> None:
    with contextlib.suppress(Exception):  # the original error matters more
        await drop_shadow(conn)


# ------------------------------------------------------------------------------------ CLI


def _print_progress(step: RebuildProgress) -> None:
    if step.phase == "replay" and step.total:
        print(f"\rreplay {step.done}/{step.total} ({100 * step.done // step.total}%)", end="")
    elif step.phase != "replay":
        print(f"\n{step.phase}: {step.done}/{step.total}", end="")


def print_comparisons(comparisons: Iterable[TableComparison], *, rebuilt: str) -> None:
    """One line per table, then its example rows; `rebuilt` labels the rebuilt copy's side."""
    for c in comparisons:
        state = (
            "identical"
            if c.identical
            else f"missing {c.missing}, extra {c.extra}, different {c.different}"
        )
        print(f"  {c.table:<24} {state}")
        for example in c.examples:
            print(f"    {example.kind}: live={example.live} {rebuilt}={example.shadow}")


def print_report(report: RebuildReport) -> None:
    print(f"\napplied {report.events} events, parked {len(report.parked)}")
    print_comparisons(report.comparisons, rebuilt="shadow")
    print("swapped in" if report.swapped else "dry run: live tables untouched")


async def _main(args: argparse.Namespace) -> RebuildReport:
    pool = await open_pool(args.postgres_url, min_size=1, max_size=2)
    try:
        return await rebuild(
            pool,
            dry_run=args.dry_run,
            keep_shadow=args.keep_shadow,
            chunk_size=args.chunk_size,
            progress=_print_progress,
        )
    finally:
        await pool.close()


def main(argv: list[str] | None = None) -> int:
    try:
        postgres_url = Settings.from_env().postgres_url
    except SettingsError as exc:
        print(f"rebuild: {exc}", file=sys.stderr)
        return 2
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--postgres-url", default=postgres_url)
    parser.add_argument("--dry-run", action="store_true", help="compare only, never swap")
    parser.add_argument("--keep-shadow", action="store_true", help="keep shadows of a dry run")
    parser.add_argument("--chunk-size", type=int, default=5000)
    report = asyncio.run(_main(parser.parse_args(argv)))
    print_report(report)
    # A dry run that finds differences fails, so that a scheduled check can alert.
    return 0 if report.swapped or report.identical else 1


if __name__ == "__main__":
    sys.exit(main())
