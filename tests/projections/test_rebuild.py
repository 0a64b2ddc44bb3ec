"""Rebuild from the event store into shadow tables, compare, swap (docs/design.md §5)."""

from __future__ import annotations

import asyncio
import random
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from uuid import UUID, uuid4

import psycopg
import pytest
from psycopg.types.json import Jsonb

from infrastructure.postgres.pool import Pool
from projection_service.read_models import PROJECTED_TABLES, SHADOW
from projection_service.rebuild import _LOCK_KEY as _REBUILD_LOCK
from projection_service.rebuild import RebuildProgress, RebuildRunningError, main, rebuild
from tests.api.support import Api, claim, created, running_api, top_up
from tests.projections.support import (
    TOKENS,
    World,
    pool_snapshot,
    project,
    rows,
    stored_events,
    write_world,
)

pytestmark = pytest.mark.integration

_SCHEMA = """
SELECT c.relname, c.relkind FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace
WHERE n.nspname = 'public' AND c.relkind IN ('r', 'i') ORDER BY 1
"""
_CONSTRAINTS = """
SELECT conrelid::regclass::text, conname, contype, pg_get_constraintdef(oid)
FROM pg_constraint WHERE connamespace = 'public'::regnamespace ORDER BY 1, 2
"""


@pytest.fixture
async def built(postgres_url: str, postgres_pool: Pool) -> World:
    """The world, projected incrementally in random batches as a consumer would."""
    async with running_api("postgres", postgres_url) as api:
        world = await write_world(api)
        events = await stored_events(api)
    rng = random.Random(7)
    while events:
        size = rng.randint(1, 6)
        await project(postgres_pool, events[:size])
        events = events[size:]
    return world


async def test_a_rebuild_from_scratch_matches_the_incremental_build(
    built: World, postgres_pool: Pool
) -> None:
    steps: list[RebuildProgress] = []
    report = await rebuild(postgres_pool, dry_run=True, chunk_size=7, progress=steps.append)
    assert report.identical, [c for c in report.comparisons if not c.identical]
    assert [c.table for c in report.comparisons] == list(PROJECTED_TABLES)
    assert not report.swapped
    assert report.parked == ()
    [(events,)] = await rows(postgres_pool, "SELECT count(*) FROM events")
    assert report.events == events
    replayed = [s for s in steps if s.phase == "replay"]
    assert len(replayed) == -(-events // 7)
    assert replayed[-1].done == replayed[-1].total
    assert [s.phase for s in steps][-1] == "done"
    assert await rows(postgres_pool, "SELECT to_regclass('medcards__shadow')") == [(None,)]
    [(_position, count)] = await rows(
        postgres_pool, "SELECT position, events FROM projection_checkpoints"
    )
    assert count == events


async def test_corrupted_live_rows_show_up_and_a_swap_repairs_them(
    built: World, postgres_pool: Pool
) -> None:
    expected = await pool_snapshot(postgres_pool)
    schema = await rows(postgres_pool, _SCHEMA)
    constraints = await rows(postgres_pool, _CONSTRAINTS)
    async with postgres_pool.connection() as conn:
        await conn.execute(
            "UPDATE prescription_claims SET covered_amount = covered_amount + 1"
            " WHERE prescription_id = 'rx-spouse'"
        )
        await conn.execute("DELETE FROM ledger_postings WHERE leg = 2")
        await conn.execute(
            "INSERT INTO wallet_transactions (id, type, wallet_id, amount, balance_after, at,"
            " version, position) SELECT %s, 'debit', id, 1, 1, now(), 99, 99 FROM wallets"
            " WHERE id = %s",
            (uuid4(), UUID(built.wallet_b)),
        )

    report = await rebuild(postgres_pool, dry_run=True, keep_shadow=True, examples=2)
    found = {c.table: c for c in report.comparisons if not c.identical}
    assert set(found) == {"prescription_claims", "ledger_postings", "wallet_transactions"}
    claims = found["prescription_claims"]
    assert (claims.missing, claims.extra, claims.different) == (0, 0, 1)
    [example] = claims.examples
    assert example.live is not None
    assert example.shadow is not None
    assert float(example.live["covered_amount"]) == float(example.shadow["covered_amount"]) + 1
    ledger = found["ledger_postings"]
    assert ledger.missing > 2
    assert (ledger.extra, ledger.different) == (0, 0)
    assert len(ledger.examples) == 2
    assert all(e.live is None for e in ledger.examples)
    assert (found["wallet_transactions"].extra, found["wallet_transactions"].missing) == (1, 0)
    # a kept shadow is there to inspect, and the live tables were not touched
    [(shadow_claims,)] = await rows(
        postgres_pool, "SELECT count(*) FROM prescription_claims__shadow"
    )
    assert shadow_claims == len(expected["prescription_claims"])

    swapped = await rebuild(postgres_pool)
    assert swapped.swapped
    assert not swapped.identical  # it compared before swapping
    assert await pool_snapshot(postgres_pool) == expected
    # the same tables, indexes and constraints under the same names as the migration made
    assert await rows(postgres_pool, _SCHEMA) == schema
    assert await rows(postgres_pool, _CONSTRAINTS) == constraints
    again = await rebuild(postgres_pool, dry_run=True)
    assert again.identical
    [(last,)] = await rows(
        postgres_pool, "SELECT id FROM prescription_claims ORDER BY claimed_at DESC LIMIT 1"
    )
    assert last == UUID(built.last_claim)


async def test_a_rebuild_while_the_command_side_keeps_writing(
    postgres_url: str, postgres_pool: Pool
) -> None:
    """The command side keeps writing while the rebuild runs; after the swap, the consumer
    (going on from its offsets) finds what the swap brought in already applied."""
    async with running_api("postgres", postgres_url) as api:
        world = await write_world(api)
        await project(postgres_pool, await stored_events(api))

        async def keep_writing(api: Api) -> None:
            for n in range(15):
                created(await claim(api, TOKENS.pharmacy(), world.family_card, f"rx-{n}", "5"))
                created(await top_up(api, TOKENS.ops(), world.wallet_b, "1.00", f"f-{n}"))
                await asyncio.sleep(0)

        writer = asyncio.create_task(keep_writing(api))
        report = await rebuild(postgres_pool, chunk_size=3)
        await writer
        events = await stored_events(api)
    assert report.swapped
    # The consumer goes on from its offsets: whatever the swap brought in is a duplicate.
    await project(postgres_pool, events)
    live = await pool_snapshot(postgres_pool)
    check = await rebuild(postgres_pool, dry_run=True)
    assert check.identical, [c for c in check.comparisons if not c.identical]
    adjudications = [e for e in events if e.event_type == "medcard.claim_adjudicated"]
    assert len(live["prescription_claims"]) == len(adjudications) == 9 + 15


async def test_the_cli_dry_run_exits_non_zero_on_differences(
    built: World, postgres_url: str, postgres_pool: Pool, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await asyncio.to_thread(main, ["--dry-run", "--postgres-url", postgres_url]) == 0
    async with postgres_pool.connection() as conn:
        await conn.execute("UPDATE medcards SET status = 'SUSPENDED'")
    assert await asyncio.to_thread(main, ["--dry-run", "--postgres-url", postgres_url]) == 1
    out = capsys.readouterr().out
    assert "medcards" in out
    assert "different 3" in out
    assert "dry run" in out


async def test_the_shadow_tables_are_built_by_the_same_projector(
    built: World, postgres_pool: Pool
) -> None:
    report = await rebuild(postgres_pool, dry_run=True, keep_shadow=True)
    assert report.identical
    live = await pool_snapshot(postgres_pool)
    shadow = await pool_snapshot(postgres_pool, SHADOW)
    assert shadow == live
    assert replace(SHADOW).name("medcards") == "medcards__shadow"


async def test_an_event_committed_behind_the_replay_is_caught_up(
    postgres_url: str, postgres_pool: Pool
) -> None:
    """Positions commit out of order: an event whose transaction commits after the replay
    read past its position is found by the catch-up (transaction id above the horizon)."""
    async with running_api("postgres", postgres_url) as api:
        world = await write_world(api)
        await project(postgres_pool, await stored_events(api))
        wallet = UUID(world.wallet_b)
        [(version, balance)] = await rows(
            postgres_pool, "SELECT version, balance FROM wallets WHERE id = %s", wallet
        )
        late_id = uuid4()
        slow = psycopg.connect(postgres_url)  # a writer whose transaction stays open
        slow.execute(
            "INSERT INTO events (event_id, aggregate_id, aggregate_type, event_type, version,"
            " event_data, timestamp) VALUES (%s, %s, 'wallet', 'wallet.topped_up', %s, %s, now())",
            (late_id, wallet, version + 1, Jsonb(_top_up(wallet, balance))),
        )
        [(late_position,)] = slow.execute(
            "SELECT position FROM events WHERE event_id = %s", (late_id,)
        ).fetchall()
        created(await top_up(api, TOKENS.ops(), world.wallet_a, "2.00", "after-the-late-one"))
        [(newest,)] = await rows(postgres_pool, "SELECT max(position) FROM events")
        assert newest > late_position

    steps: list[RebuildProgress] = []

    def commit_once_the_replay_is_past(step: RebuildProgress) -> None:
        steps.append(step)
        if step.phase == "replay" and step.done >= newest and not slow.closed:
            slow.commit()
            slow.close()

    try:
        report = await rebuild(postgres_pool, chunk_size=4, progress=commit_once_the_replay_is_past)
    finally:
        slow.close()
    assert report.swapped
    assert any(s.phase == "catch_up" and s.done >= 1 for s in steps), steps
    [(new_balance,)] = await rows(
        postgres_pool, "SELECT balance FROM wallets WHERE id = %s", wallet
    )
    assert new_balance == balance + 1
    assert (await rebuild(postgres_pool, dry_run=True)).identical


def _top_up(wallet: UUID, balance: Decimal) -> dict[str, object]:
    return {
        "topup_id": str(uuid4()),
        "gateway": "fawry",
        "gateway_reference": "late-1",
        "amount": "1.00",
        "balance_after": str(balance + 1),
        "at": datetime.now(UTC).isoformat(),
        "postings": [
            {"account": "gateway_clearing:fawry", "amount": "-1.00"},
            {"account": f"member_wallet:{wallet}", "amount": "1.00"},
        ],
    }


async def test_only_one_rebuild_at_a_time(built: World, postgres_pool: Pool) -> None:
    async with postgres_pool.connection() as other:
        await other.execute("SELECT pg_advisory_lock(%s)", (_REBUILD_LOCK,))
        with pytest.raises(RebuildRunningError):
            await rebuild(postgres_pool, dry_run=True)
        await other.execute("SELECT pg_advisory_unlock(%s)", (_REBUILD_LOCK,))
    assert (await rebuild(postgres_pool, dry_run=True)).identical
