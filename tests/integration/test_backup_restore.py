"""The backup drill on a real PostgreSQL (scripts/backup.sh, i.e. `healthpay backup|restore`,
and scripts/pg.sh with a WAL archive): load claims, take a base backup, load more, project
them, destroy the server and its data, restore, and find every event again: all of them from
the base backup plus the archived WAL, with the read models as they were and as a rebuild
from the restored events makes them, and exactly those committed before the target time from
a point-in-time recovery. Timings are printed."""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest

from infrastructure.cassandra.migrations import migrate as migrate_cql
from infrastructure.cassandra.session import CqlConnection, connect
from infrastructure.eventstore.port import RecordedEvent
from infrastructure.postgres.migrations import migrate_sync
from infrastructure.postgres.pool import open_pool
from projection_service.balances.projector import BalanceProjector
from projection_service.balances.rebuild import rebuild_balances
from projection_service.rebuild import rebuild
from tests.api.support import Tokens, api_settings, claim, issue_card, running_api
from tests.balances.support import cql_config, recorded_events
from tests.balances.support import snapshot as cql_snapshot
from tests.integration.cassandra_harness import CassandraHarness
from tests.integration.postgres_harness import PG_SH
from tests.integration.server_scripts import free_port, run_script
from tests.projections.support import Snapshot, pool_snapshot, project

pytestmark = pytest.mark.integration

BACKUP_SH = PG_SH.with_name("backup.sh")


def _events(url: str) -> list[tuple[int, str, str, int, str]]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT position, aggregate_id::text, event_type, version, event_data::text"
            " FROM events ORDER BY position"
        ).fetchall()
    return [(r[0], r[1], r[2], r[3], r[4]) for r in rows]


def _fold(events: list[tuple[int, str, str, int, str]]) -> str:
    return hashlib.sha256(repr(events).encode()).hexdigest()


async def _load(url: str, cards: int, claims: int, tag: str) -> None:
    tokens = Tokens(api_settings())
    async with running_api("postgres", url) as api:
        for n in range(cards):
            card = await issue_card(api, tokens.ops(), f"member-{tag}-{n}")
            for c in range(claims):
                await claim(api, tokens.pharmacy(), card["id"], f"rx-{tag}-{n}-{c}", "10.00")


async def _archive_current_segment(url: str, archive: Path) -> None:
    """Closes the current WAL segment and waits until the archiver has copied it (else it
    would go within archive_timeout, 60 s)."""
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT pg_walfile_name(pg_switch_wal())").fetchone()
    assert row is not None
    deadline = time.monotonic() + 60
    while not (archive / row[0]).exists():
        assert time.monotonic() < deadline, f"{row[0]} never reached the archive"
        await asyncio.sleep(0.1)


async def _read_models(url: str, *, project_all: bool = False) -> tuple[Snapshot, bool]:
    """The read models (after projecting every event, if asked), and whether a rebuild from
    the events would give exactly them."""
    pool = await open_pool(url, 1, 2)
    try:
        if project_all:
            await project(pool, await _recorded(url))
        return await pool_snapshot(pool), (await rebuild(pool, dry_run=True)).identical
    finally:
        await pool.close()


async def _promoted(url: str) -> None:
    """A restored server answers reads while it replays; it writes once it has promoted."""
    deadline = time.monotonic() + 60
    while True:
        with psycopg.connect(url) as conn:
            row = conn.execute("SELECT pg_is_in_recovery()").fetchone()
        if row == (False,):
            return
        assert time.monotonic() < deadline, "the restored server never promoted"
        await asyncio.sleep(0.2)


async def _recorded(url: str) -> list[RecordedEvent]:
    async with running_api("postgres", url) as api:
        return await api.store.read_all(0, 100_000)


def _stop(data: Path) -> None:
    run_script(PG_SH, "stop", str(data))


def _restore(*args: str) -> str:
    data = run_script(BACKUP_SH, "restore", *args)
    return run_script(PG_SH, "start", data, str(free_port()))


@pytest.fixture
def workdir() -> Iterator[Path]:
    """Under /tmp itself: the server runs as `postgres`, who cannot enter pytest's tmp_path."""
    path = Path(tempfile.mkdtemp(prefix="healthpay-backup-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def cql(cassandra_harness: CassandraHarness, cassandra_keyspace: str) -> Iterator[CqlConnection]:
    config = cql_config(cassandra_harness, cassandra_keyspace)
    with connect(config) as connection:
        migrate_cql(connection.session, config)
        yield connection


def _balances_rebuilt(cql: CqlConnection, keyspace: str, url: str) -> Any:
    """The CQL balance tables rebuilt from the restored event store (they are not backed up):
    a new table version, swapped in; its rows."""
    report = rebuild_balances(cql.session, keyspace, url, grace_s=0)
    assert report.swapped
    assert report.bad == 0
    return cql_snapshot(cql.session, keyspace, report.new_version)


async def test_base_backup_and_wal_archive_restore_every_event(
    workdir: Path, cql: CqlConnection, cassandra_keyspace: str
) -> None:
    tmp_path = workdir
    archive, source = tmp_path / "wal-archive", tmp_path / "pg"
    env = {**os.environ, "PG_FSYNC": "on", "PG_WAL_ARCHIVE": str(archive)}
    url = run_script(PG_SH, "start", str(source), str(free_port()), env=env)
    restored: list[Path] = []
    try:
        migrate_sync(url)
        await _load(url, cards=5, claims=4, tag="before")
        started = time.monotonic()
        base = run_script(BACKUP_SH, "base", url, str(tmp_path / "backups"))
        backup_s = time.monotonic() - started
        at_backup = _events(url)

        await _load(url, cards=5, claims=4, tag="after")  # only in the WAL archive
        await asyncio.sleep(1.1)  # the target lies strictly between two commits
        target = datetime.now(UTC).isoformat(sep=" ")
        await asyncio.sleep(1.1)
        at_target = _events(url)
        await _load(url, cards=2, claims=2, tag="late")  # after the target
        everything = _events(url)
        projected, replayable = await _read_models(url, project_all=True)
        assert replayable
        BalanceProjector(cql.session, cassandra_keyspace).project(recorded_events(url))
        balances = cql_snapshot(cql.session, cassandra_keyspace)
        assert balances["wallet_balances"] == []  # claims only: the cards' months
        assert len(balances["medcard_spend_entries"]) == len(projected["prescription_claims"])
        assert len(projected["prescription_claims"]) == 5 * 4 + 5 * 4 + 2 * 2
        await _archive_current_segment(url, archive)
        assert len(at_backup) < len(at_target) < len(everything)
        _stop(source)
        shutil.rmtree(source)  # the disaster: server and data gone

        started = time.monotonic()
        restored.append(tmp_path / "full")
        full = _restore(base, str(restored[-1]), str(archive))
        full_s = time.monotonic() - started
        assert _events(full) == everything, "the base backup plus the archive lost events"
        await _promoted(full)
        assert await _read_models(full) == (projected, True)
        started = time.monotonic()
        assert _balances_rebuilt(cql, cassandra_keyspace, full) == balances
        cql_s = time.monotonic() - started

        started = time.monotonic()
        restored.append(tmp_path / "pitr")
        pitr = _restore(base, str(restored[-1]), str(archive), target)
        pitr_s = time.monotonic() - started
        assert _fold(_events(pitr)) == _fold(at_target), "point-in-time recovery missed the mark"

        restored.append(tmp_path / "base-only")
        only_base = _restore(base, str(restored[-1]))
        assert _events(only_base) == at_backup
        print(
            f"\nbackup drill: {len(everything)} events; base backup {backup_s:.1f} s; "
            f"restore + replay to the end {full_s:.1f} s ({len(everything)} events back); "
            f"to {target} {pitr_s:.1f} s ({len(at_target)} events, "
            f"{len(everything) - len(at_target)} after the target left out); base alone: "
            f"{len(at_backup)} events; CQL balances rebuilt from the restored store {cql_s:.1f} s"
        )
    finally:
        for data in [source, *restored]:
            if (data / "PG_VERSION").exists():
                _stop(data)
