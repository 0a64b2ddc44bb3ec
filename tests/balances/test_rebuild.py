"""Rebuilding the CQL balance tables from the event store into a new table version, on the
real servers (PostgreSQL, Cassandra 5 standing in for ScyllaDB): identical to the
incremental projection, corrupted rows reported by a dry run and fixed by a real one, the
projector following the swap, and the CLI hook."""

from __future__ import annotations

import io
from decimal import Decimal
from uuid import UUID

import pytest

from cli.balances import verify
from cli.projections import run_rebuild
from infrastructure.cassandra.session import CqlConfig, CqlConnection
from projection_service.balances.projector import BalanceProjector, write_timestamp
from projection_service.balances.rebuild import rebuild_balances
from projection_service.balances.versions import (
    current_version,
    existing_versions,
    table_name,
    version_statements,
)
from projection_service.rebuild import RebuildProgress
from tests.api.support import Api, Tokens, api_settings, created, top_up
from tests.balances.support import recorded_events, seed, snapshot
from tests.isolation import isolated_settings

pytestmark = pytest.mark.integration


def _balance(cql: CqlConnection, ks: str, version: int, wallet_id: str) -> Decimal | None:
    row = cql.session.execute(
        f"SELECT balance FROM {ks}.{table_name('wallet_balances', version)} WHERE wallet_id = %s",
        (UUID(wallet_id),),
    ).one()
    return None if row is None else Decimal(row.balance)


def test_versioned_ddl_is_the_migrations_renamed() -> None:
    statements = version_statements("ks", 3)
    assert len(statements) == 4
    assert all("ks.wallet_balances " not in s for s in statements)
    assert any("CREATE TABLE IF NOT EXISTS ks.wallet_balances_v3 (" in s for s in statements)
    assert any("ks.medcard_spend_entries_v3" in s for s in statements)
    # the newest shape of a table a later migration re-created, not the first one
    history = next(s for s in statements if "ks.medcard_spend_entries_v3" in s)
    assert "PRIMARY KEY (medcard_id, month, version)" in history
    assert not any(s.upper().startswith("DROP") for s in statements)
    with pytest.raises(ValueError, match="migrations"):
        version_statements("ks", 1)


async def test_rebuild_from_scratch_equals_the_incremental_projection(
    api: Api, postgres_url: str, cql: CqlConnection, config: CqlConfig, projector: BalanceProjector
) -> None:
    await seed(api)
    ks = config.keyspace
    events = recorded_events(postgres_url)
    for i in range(0, len(events), 2):  # incrementally, in small batches
        projector.project(events[i : i + 2])
    incremental = snapshot(cql.session, ks, 1)
    assert current_version(cql.session, ks) == 1

    steps: list[RebuildProgress] = []
    report = rebuild_balances(
        cql.session, ks, postgres_url, chunk_size=3, grace_s=0, progress=steps.append
    )
    assert report.identical, report.comparisons
    assert report.swapped
    assert (report.previous_version, report.new_version) == (1, 2)
    assert report.bad == 0
    assert report.events == len(events) - 1
    assert current_version(cql.session, ks) == 2
    # Same values, same write times: the same projector code wrote them.
    assert snapshot(cql.session, ks, 2) == incremental
    replay = [s for s in steps if s.phase == "replay"]
    assert len(replay) >= 3
    assert replay[-1].done == replay[-1].total == events[-1].position
    assert [s.phase for s in steps if s.phase == "compare"] == ["compare"] * 4
    assert steps[-1].phase == "done"
    settings = isolated_settings(postgres_url=postgres_url, scylla_keyspace=ks)
    out = io.StringIO()
    assert verify(settings, config, out) == 0, out.getvalue()  # verify reads version 2


async def test_dry_run_reports_a_corrupted_row_and_a_real_rebuild_fixes_it(
    api: Api, postgres_url: str, cql: CqlConnection, config: CqlConfig, projector: BalanceProjector
) -> None:
    seeded = await seed(api)
    ks = config.keyspace
    projector.project(recorded_events(postgres_url))
    # A write that wins over every projected one (a later timestamp), and a lost row.
    corrupt = cql.session.prepare(
        f"UPDATE {ks}.wallet_balances USING TIMESTAMP ? SET balance = ? WHERE wallet_id = ?"
    )
    cql.session.execute(corrupt, (write_timestamp(100), Decimal("1.00"), UUID(seeded.wallet_id)))
    cql.session.execute(
        f"DELETE FROM {ks}.medcard_monthly_spend WHERE medcard_id = %s", (UUID(seeded.card_id),)
    )

    dry = rebuild_balances(cql.session, ks, postgres_url, dry_run=True, grace_s=0)
    assert not dry.swapped
    assert not dry.identical
    by_table = {c.table: c for c in dry.comparisons}
    wallets, months = by_table["wallet_balances"], by_table["medcard_monthly_spend"]
    assert (wallets.missing, wallets.extra, wallets.different) == (0, 0, 1)
    assert (months.missing, months.extra, months.different) == (1, 0, 0)
    assert by_table["wallet_entries"].identical
    assert by_table["medcard_spend_entries"].identical
    example = wallets.examples[0]
    assert example.kind == "different"
    assert example.live is not None
    assert example.shadow is not None
    assert (example.live["balance"], example.shadow["balance"]) == (1, seeded.balance)
    assert months.examples[0].live is None
    assert months.examples[0].shadow is not None
    assert months.examples[0].shadow["total_spent"] == seeded.month_spent
    # Nothing swapped, the rebuilt tables are gone, the live ones still corrupted.
    assert current_version(cql.session, ks) == 1
    assert existing_versions(cql.session, ks) == {1}
    assert _balance(cql, ks, 1, seeded.wallet_id) == Decimal("1.00")

    real = rebuild_balances(cql.session, ks, postgres_url, grace_s=0)
    assert real.swapped
    assert real.new_version == 2
    assert not real.identical
    assert current_version(cql.session, ks) == 2
    assert _balance(cql, ks, 2, seeded.wallet_id) == seeded.balance
    settings = isolated_settings(postgres_url=postgres_url, scylla_keyspace=ks)
    out = io.StringIO()
    assert verify(settings, config, out) == 0, out.getvalue()
    # The next dry run finds nothing to fix.
    again = rebuild_balances(cql.session, ks, postgres_url, dry_run=True, grace_s=0)
    assert again.identical
    assert (again.previous_version, again.new_version) == (2, 3)
    assert current_version(cql.session, ks) == 2


async def test_the_projector_writes_to_the_new_version_after_the_swap(
    api: Api, postgres_url: str, cql: CqlConnection, config: CqlConfig
) -> None:
    seeded = await seed(api)
    ks = config.keyspace
    # A running consumer's projector, re-reading the registry before every batch.
    live = BalanceProjector(cql.session, ks, concurrency=8, refresh_seconds=0)
    before = recorded_events(postgres_url)
    live.project(before)
    assert live.version == 1

    report = rebuild_balances(cql.session, ks, postgres_url, grace_s=0)
    assert report.swapped
    assert report.identical

    tokens = Tokens(api_settings())
    created(await top_up(api, tokens.ops(), seeded.wallet_id, "0.50", "fawry-after-swap"))
    new = [e for e in recorded_events(postgres_url) if e.position > before[-1].position]
    assert len(new) == 1
    live.project(new)
    assert live.version == 2
    expected = seeded.balance + Decimal("0.50")
    assert _balance(cql, ks, 2, seeded.wallet_id) == expected
    assert _balance(cql, ks, 1, seeded.wallet_id) == seeded.balance  # retired, untouched
    # A restarted consumer starts on version 2; a cached one moves on when it re-reads.
    assert BalanceProjector(cql.session, ks).version == 2
    cached = BalanceProjector(cql.session, ks, refresh_seconds=3600)
    report = rebuild_balances(cql.session, ks, postgres_url, grace_s=0)
    assert report.new_version == 3
    assert report.identical
    assert not cached.refresh()
    assert cached.version == 2
    assert cached.refresh(force=True)
    assert cached.version == 3
    # A third rebuild drops version 2 (older than the previous), never version 1.
    rebuild_balances(cql.session, ks, postgres_url, grace_s=0)
    assert existing_versions(cql.session, ks) == {1, 3, 4}
    assert current_version(cql.session, ks) == 4


async def test_the_cli_rebuilds_balances(
    api: Api,
    postgres_url: str,
    cql: CqlConnection,
    config: CqlConfig,
    projector: BalanceProjector,
    capsys: pytest.CaptureFixture[str],
) -> None:
    seeded = await seed(api)
    ks = config.keyspace
    projector.project(recorded_events(postgres_url))
    cql.session.execute(
        f"DELETE FROM {ks}.wallet_balances WHERE wallet_id = %s", (UUID(seeded.wallet_id),)
    )
    settings = isolated_settings(
        postgres_url=postgres_url,
        scylla_hosts=tuple(f"{h}:{p}" for h, p in config.hosts),
        scylla_keyspace=ks,
    )
    env_dc = config.local_dc
    assert env_dc  # CqlConfig.from_settings reads SCYLLA_DC: the harness's DC must match
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SCYLLA_DC", env_dc)
        assert run_rebuild(settings, "balances", dry_run=True) == 1
        out = capsys.readouterr().out
        assert "wallet_balances          missing 1, extra 0, different 0" in out
        assert "dry run: version 1 untouched" in out
        assert run_rebuild(settings, "balances", dry_run=False) == 0
        assert "swapped in: readers now use version 2" in capsys.readouterr().out
    assert _balance(cql, ks, 2, seeded.wallet_id) == seeded.balance


async def test_redrive_applies_a_parked_balance_event_and_drops_its_dead_letter(
    api: Api, postgres_url: str, cql: CqlConnection, config: CqlConfig, projector: BalanceProjector
) -> None:
    """A top-up the projection of the day parked (a fault since fixed) is missing from the
    wallet's balance; the redrive replays the store into a new version, which holds it."""
    import psycopg

    from projection_service.balances.parking import BalanceParking, Parked
    from projection_service.read_models import KafkaLocation
    from projection_service.redrive import redrive_balances

    seeded = await seed(api)
    ks = config.keyspace
    events = recorded_events(postgres_url)
    [last_top_up] = [e for e in events if e.event_type == "wallet.topped_up"][-1:]
    projector.project([e for e in events if e is not last_top_up])
    wallet = str(last_top_up.aggregate_id)
    assert wallet == seeded.wallet_id
    assert _balance(cql, ks, 1, wallet) != seeded.balance  # the parked top-up is missing
    location = KafkaLocation("healthpay.events.wallet", 0, last_top_up.position)
    BalanceParking(postgres_url).park([Parked(location, "a fault since fixed", last_top_up)])

    report, rebuilt = redrive_balances(cql.session, ks, postgres_url)

    assert rebuilt is not None
    assert (rebuilt.swapped, rebuilt.bad) == (True, 0)
    assert (report.redriven, report.still_parked) == ((last_top_up.event_id,), ())
    assert _balance(cql, ks, current_version(cql.session, ks), wallet) == seeded.balance
    with psycopg.connect(postgres_url) as conn:
        assert conn.execute("SELECT count(*) FROM parked_events").fetchone() == (0,)
