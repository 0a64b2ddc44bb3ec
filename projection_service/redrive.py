"""Redrive: parked events applied once what parked them is fixed (`healthpay projections
redrive`).

A parked event's stream went on without it (parking.py), so the event cannot simply be fed
to the live projector again: its stream's cursor has passed it, and the projector would take
it for a duplicate. The one correct way to apply it now is the one a rebuild already takes:
replay the event store through today's code into new tables, compare, swap. A redrive is that
rebuild plus the bookkeeping of the dead letters: an event parked before it began that the
rebuild applied is redriven and its dead letter removed; one the rebuild parked again stays,
its attempts counted. Raw messages that never were an envelope have no event to replay: they
are reported and kept (the event store still holds whatever the relay meant to send).

The balance rebuild counts the events it could not read but does not name them, so its dead
letters are removed only when it read every event; otherwise all of them stay.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any
from uuid import UUID

import psycopg
from psycopg import AsyncConnection
from psycopg.rows import TupleRow

from infrastructure.postgres.pool import Pool
from projection_service.balances.parking import PROJECTION as BALANCES
from projection_service.balances.rebuild import BalanceRebuildReport, rebuild_balances
from projection_service.read_models.parking import DEFAULT_PROJECTION as READ_MODELS
from projection_service.rebuild import ProgressCallback, RebuildReport, rebuild

_PARKED = """
SELECT event_id FROM parked_events
WHERE projection = %s AND event_id IS NOT NULL ORDER BY position
"""
_RAW = "SELECT count(*) FROM parked_events WHERE projection = %s AND event_id IS NULL"
_REMOVE = "DELETE FROM parked_events WHERE projection = %s AND event_id = ANY(%s)"


@dataclass(frozen=True, slots=True)
class RedriveReport:
    projection: str
    redriven: tuple[UUID, ...]  # applied now; their dead letters removed (unless a dry run)
    still_parked: tuple[UUID, ...]  # refused again: kept, attempts counted
    unreadable: int  # raw messages, never an envelope: nothing to replay, kept
    rebuilt: bool  # a rebuild ran (there was something to redrive)
    swapped: bool  # ... and its tables are live (not a dry run)

    @property
    def ok(self) -> bool:
        return not self.still_parked


async def _parked(conn: AsyncConnection[TupleRow], projection: str) -> tuple[list[UUID], int]:
    ids = [row[0] for row in await (await conn.execute(_PARKED, (projection,))).fetchall()]
    raw = await (await conn.execute(_RAW, (projection,))).fetchone()
    return ids, int(raw[0]) if raw else 0


def _split(
    projection: str, parked: Sequence[UUID], refused: set[UUID], unreadable: int
) -> RedriveReport:
    return RedriveReport(
        projection,
        tuple(i for i in parked if i not in refused),
        tuple(i for i in parked if i in refused),
        unreadable,
        rebuilt=True,
        swapped=False,
    )


async def redrive_read_models(
    pool: Pool, *, dry_run: bool = False, progress: ProgressCallback | None = None
) -> tuple[RedriveReport, RebuildReport | None]:
    """Rebuild the read models if anything is parked, then drop the dead letters of the
    events the rebuild applied. Returns the rebuild's own report too (None: nothing to do)."""
    async with pool.connection() as conn:
        parked, unreadable = await _parked(conn, READ_MODELS)
    if not parked:
        return RedriveReport(READ_MODELS, (), (), unreadable, False, False), None
    rebuilt = await rebuild(pool, dry_run=dry_run, progress=progress)
    report = _split(READ_MODELS, parked, set(rebuilt.parked), unreadable)
    if rebuilt.swapped:
        async with pool.connection() as conn:
            await conn.execute(_REMOVE, (READ_MODELS, list(report.redriven)))
        report = replace(report, swapped=True)
    return report, rebuilt


def redrive_balances(
    session: Any,
    keyspace: str,
    conninfo: str,
    *,
    dry_run: bool = False,
    progress: ProgressCallback | None = None,
) -> tuple[RedriveReport, BalanceRebuildReport | None]:
    """The CQL balance tables' counterpart (blocking): a new table version replayed from the
    event store, compared and swapped in; dead letters dropped only if it read every event."""
    with psycopg.connect(conninfo, autocommit=True) as conn:
        parked = [row[0] for row in conn.execute(_PARKED, (BALANCES,)).fetchall()]
        raw = conn.execute(_RAW, (BALANCES,)).fetchone()
        unreadable = int(raw[0]) if raw else 0
        if not parked:
            return RedriveReport(BALANCES, (), (), unreadable, False, False), None
        rebuilt = rebuild_balances(session, keyspace, conninfo, dry_run=dry_run, progress=progress)
        refused = set(parked) if rebuilt.bad else set()
        report = _split(BALANCES, parked, refused, unreadable)
        if rebuilt.swapped:
            conn.execute(_REMOVE, (BALANCES, list(report.redriven)))
            report = replace(report, swapped=True)
    return report, rebuilt


def print_redrive(report: RedriveReport) -> None:
    if not report.rebuilt:
        print(f"{report.projection}: nothing parked, nothing to redrive", end="")
        print(f" ({report.unreadable} unreadable messages kept)" if report.unreadable else "")
        return
    done = "redriven" if report.swapped else "would be redriven (dry run)"
    print(f"{report.projection}: {len(report.redriven)} parked events {done}")
    for event_id in report.still_parked:
        print(f"  still parked: {event_id}")
    if report.unreadable:
        print(
            f"  {report.unreadable} unreadable messages (not an envelope) kept: nothing to replay"
        )
