"""Migration 0006 reserves what the events already hold, and the service then keeps to it.

The history is written as the service wrote it before reservations existed (plain appends),
including the clashes that made them necessary: two cards with one number, one gateway
reference on two wallets. The migration keeps each key for its first event.
"""

from __future__ import annotations

from decimal import Decimal
from uuid import UUID, uuid4

import psycopg
import pytest
from psycopg.types.json import Jsonb

from domain.events import DomainEvent
from domain.medcard import state as card_state
from domain.medcard.commands import ReactivateCard, SuspendCard
from domain.uniqueness import gateway_reference_key, prescription_key
from domain.wallet.model import TopUp
from infrastructure.eventstore.postgres import PostgresEventStore
from infrastructure.postgres.migrations import bundled_migrations, migrate
from infrastructure.postgres.pool import open_pool
from tests.api.support import Tokens, api_settings, assert_problem, claim, running_api, top_up
from tests.integration.postgres_harness import PostgresHarness
from tests.unit.builders import PHARMACY, T0, Ledger, issue
from tests.unit.builders import claim as claim_command

pytestmark = pytest.mark.integration
BACKFILL = "0006_unique_references.sql"


@pytest.fixture
def url_before_0006(postgres_harness: PostgresHarness) -> str:
    url = postgres_harness.create_database()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP SCHEMA public CASCADE")
        conn.execute("CREATE SCHEMA public")
    return url


def write(url: str, kind: str, stream: UUID, log: list[DomainEvent]) -> None:
    """Appends as the events table alone held them (before 0006 there is no reservations)."""
    with psycopg.connect(url) as conn:
        for version, event in enumerate(log, start=1):
            conn.execute(
                "INSERT INTO events (event_id, aggregate_id, aggregate_type, event_type, version,"
                " event_data, timestamp, schema_version) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                (
                    uuid4(),
                    stream,
                    kind,
                    event.event_type,
                    version,
                    Jsonb(event.payload()),
                    T0,
                    event.schema_version,
                ),
            )


def write_all(url: str, *ledgers: Ledger) -> None:
    for ledger in ledgers:
        write(url, "medcard", ledger.state.card_id, ledger.card_log)
        write(url, "wallet", ledger.purse.wallet_id, ledger.wallet_log)


async def test_the_backfill_reserves_the_first_holder_of_each_key(url_before_0006: str) -> None:
    url = url_before_0006
    await migrate(url, [m for m in bundled_migrations() if m.name != BACKFILL])
    # one card number, twice
    first, second = Ledger.with_card(issue(user_id="u-1")), Ledger.with_card(issue(user_id="u-2"))
    assert first.state.card_number == second.state.card_number
    charged = first.claim(claim_command("100.00", prescription_id="rx-a")).claim
    first.run(SuspendCard(at=T0))
    first.claim(claim_command("100.00", prescription_id="rx-b"))  # rejected
    first.run(ReactivateCard(at=T0))
    undone = first.claim(claim_command("100.00", prescription_id="rx-c")).claim
    first.reverse(undone.claim_id)
    again = first.claim(claim_command("100.00", prescription_id="rx-d")).claim
    first.reverse(again.claim_id)
    recharged = first.claim(claim_command("100.00", prescription_id="rx-d")).claim
    for ledger in (first, second):
        ledger.open_wallet()
        reference = TopUp(uuid4(), "fawry", "FWR-OLD", Decimal("50.00"), T0)
        ledger.run_wallet(reference)  # on both wallets: the clash of the old code
    write_all(url, first, second)
    assert await migrate(url) == [BACKFILL]
    pool = await open_pool(url, min_size=1, max_size=2)
    try:
        store = PostgresEventStore(pool)

        card_id = first.state.card_id
        holders = {
            rx: await store.reserved_by(*prescription_key(card_id, rx))
            for rx in ("rx-a", "rx-b", "rx-c", "rx-d")
        }
        assert {rx: h.data["claim_id"] if h else None for rx, h in holders.items()} == {
            "rx-a": str(charged.claim_id),
            "rx-b": None,
            "rx-c": None,
            "rx-d": str(recharged.claim_id),
        }
        number = await store.reserved_by("card_number", first.state.card_number)
        reference_holder = await store.reserved_by(*gateway_reference_key("fawry", "FWR-OLD"))
    finally:
        await pool.close()
    assert number is not None
    assert number.aggregate_id == first.state.card_id
    assert reference_holder is not None
    assert reference_holder.aggregate_id == first.purse.wallet_id


async def test_the_service_keeps_to_the_backfilled_keys(
    url_before_0006: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = url_before_0006
    await migrate(url, [m for m in bundled_migrations() if m.name != BACKFILL])
    ledger, other = Ledger.with_card(issue(user_id="u-1")), Ledger.with_card(issue(user_id="u-2"))
    charged = ledger.claim(claim_command("100.00", prescription_id="rx-old")).claim
    assert charged.pharmacy_id == PHARMACY
    for holder in (ledger, other):
        holder.open_wallet()
    ledger.run_wallet(TopUp(uuid4(), "paymob", "PM-OLD", Decimal("50.00"), T0))
    write_all(url, ledger, other)
    await migrate(url)

    # No claim in any card's window: every question about an earlier claim goes to the store.
    monkeypatch.setattr(card_state, "CLAIM_WINDOW", 0)
    tokens = Tokens(api_settings())
    async with running_api("postgres", url) as api:
        card = str(ledger.state.card_id)
        retry = await claim(api, tokens.pharmacy(), card, "rx-old", "100.00")
        assert retry.status_code == 200, retry.text
        assert retry.json()["claimId"] == str(charged.claim_id)
        other_body = claim(api, tokens.pharmacy(), card, "rx-old", "90.00")
        assert_problem(await other_body, 409, "duplicate_prescription")
        taken = top_up(api, tokens.ops(), str(other.purse.wallet_id), "50.00", "PM-OLD", "paymob")
        assert_problem(await taken, 409, "gateway_reference_taken")
