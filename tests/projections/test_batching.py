"""A batch folds each card's and wallet's events into one row change per table (issue 10):
whatever a batch holds of one stream, the rows are exactly those of one event at a time."""

from __future__ import annotations

import random
from collections import Counter
from datetime import date
from typing import Any
from uuid import UUID

import pytest
from psycopg import sql

from infrastructure.eventstore.port import RecordedEvent
from infrastructure.postgres.pool import Pool
from projection_service.read_models import PROJECTED_TABLES
from tests.api.support import (
    API,
    Api,
    beneficiary_body,
    claim,
    created,
    done,
    issue_card,
    open_wallet,
    running_api,
    set_copay_consent,
    top_up,
)
from tests.projections.support import TOKENS, Snapshot, pool_snapshot, project, stored_events

pytestmark = pytest.mark.integration

CLAIMS = 40


async def write_busy_card(api: Api) -> tuple[str, str]:
    """One card and its member's wallet, each with a long stream: claims of every outcome
    (with items, for dependants, copayments from the wallet, one declined by the consent),
    reversals, dependants added and removed, a suspension, a renewal, top-ups, a purchase
    and consent changes."""
    admin, ops, pharmacy = TOKENS.admin(), TOKENS.ops(), TOKENS.pharmacy()
    member = TOKENS.member("member-busy")
    rng = random.Random(10)

    async def post(path: str, body: dict[str, Any] | None = None, headers: Any = admin) -> Any:
        return done(await api.client.post(f"{API}{path}", json=body, headers=headers))

    card = (await issue_card(api, admin, "member-busy", card_type="gold"))["id"]
    wallet = (await open_wallet(api, ops, "member-busy"))["id"]
    created(await top_up(api, ops, wallet, "400.00", "busy-1"))
    done(await set_copay_consent(api, member, wallet, "60.00", "250.00"))
    spouse = await post(f"/medcards/{card}/beneficiaries", beneficiary_body(serial="0041"))
    child = await post(
        f"/medcards/{card}/beneficiaries",
        beneficiary_body(date(2014, 6, 2), relationship="child", name="Mona", serial="0051"),
    )
    charged: list[str] = []
    for n in range(CLAIMS):
        extra: dict[str, Any] = {"payCopaymentFromWallet": n % 3 == 0}
        if n % 4 == 1:
            extra["items"] = [
                {"drugCode": "D-7", "drugName": "Concor", "quantity": 2, "unitPrice": "12.50"},
                {"drugCode": "D-8", "drugName": "Nexium", "quantity": 1, "unitPrice": "31.25"},
            ]
        if n % 5 == 2:
            extra["beneficiaryId"] = spouse["id"]
        total = "56.25" if "items" in extra else f"{rng.randint(20, 400)}.{rng.randint(0, 99):02d}"
        answer = created(await claim(api, pharmacy, card, f"rx-busy-{n}", total, **extra))
        if answer["decision"] != "rejected":
            charged.append(answer["claimId"])
        if n == 12:
            await post(f"/medcards/{card}/suspend", {"reason": "lost card"})
        if n == 14:
            await post(f"/medcards/{card}/reactivate")
        if n == 20:
            await api.client.delete(
                f"{API}/medcards/{card}/beneficiaries/{child['id']}", headers=admin
            )
            done(await set_copay_consent(api, member, wallet, "5.00", "250.00"))
        if n == 25:
            created(await top_up(api, ops, wallet, "150.00", "busy-2", "paymob"))
            done(await set_copay_consent(api, member, wallet, "80.00", "400.00"))
        if n % 7 == 6:
            await post(f"/medcards/{card}/claims/{charged.pop(0)}/reversal", {"reason": "x"})
    await post(f"/wallets/{wallet}/debits", {"amount": "10.00", "reference": "order-busy"})
    await post(f"/medcards/{card}/renew")
    await post(f"/medcards/{card}/claims/{charged.pop()}/reversal")
    return card, wallet


@pytest.fixture
async def busy(postgres_url: str) -> tuple[str, str, list[RecordedEvent]]:
    async with running_api("postgres", postgres_url) as api:
        card, wallet = await write_busy_card(api)
        return card, wallet, await stored_events(api)


async def _truncate(pool: Pool) -> None:
    async with pool.connection() as conn:
        names = sql.SQL(", ").join(sql.Identifier(t) for t in PROJECTED_TABLES)
        await conn.execute(sql.SQL("TRUNCATE {}").format(names))


async def _one_at_a_time(pool: Pool, events: list[RecordedEvent]) -> Snapshot:
    for event in events:
        assert (await project(pool, [event])).applied == 1
    return await pool_snapshot(pool)


async def test_one_batch_of_a_busy_card_and_wallet_equals_one_event_at_a_time(
    postgres_pool: Pool, busy: tuple[str, str, list[RecordedEvent]]
) -> None:
    card, wallet, events = busy
    per_stream = Counter(e.aggregate_id for e in events)
    assert per_stream[UUID(card)] > CLAIMS
    assert per_stream[UUID(wallet)] > 15
    kinds = Counter(e.event_type for e in events)
    assert {"medcard.claim_reversed", "wallet.refunded", "wallet.copay_declined"} <= set(kinds)

    one_by_one = await _one_at_a_time(postgres_pool, events)
    await _truncate(postgres_pool)
    result = await project(postgres_pool, events)
    assert (result.applied, result.duplicates, result.held) == (len(events), 0, 0)
    assert await pool_snapshot(postgres_pool) == one_by_one


async def test_batches_cut_anywhere_in_the_streams_equal_one_event_at_a_time(
    postgres_pool: Pool, busy: tuple[str, str, list[RecordedEvent]]
) -> None:
    """A batch may start in the middle of a stream: the rows it patches were written by
    earlier batches (a reversal of a claim two batches back, a consent kept from before)."""
    _, _, events = busy
    one_by_one = await _one_at_a_time(postgres_pool, events)
    for seed in (1, 2):
        await _truncate(postgres_pool)
        rng = random.Random(seed)
        rest = list(events)
        while rest:
            size = rng.randint(2, 30)
            await project(postgres_pool, rest[:size])
            rest = rest[size:]
        assert await pool_snapshot(postgres_pool) == one_by_one, f"seed {seed}"


async def test_the_busy_card_row_is_its_last_events(
    postgres_pool: Pool, busy: tuple[str, str, list[RecordedEvent]]
) -> None:
    card, wallet, events = busy
    await project(postgres_pool, events)
    stream = [e for e in events if e.aggregate_id == UUID(card)]
    last_spend = next(e for e in reversed(stream) if "month_spent_after" in e.data)
    async with postgres_pool.connection() as conn:
        cur = await conn.execute(
            "SELECT status, version, last_position, current_month_spent::text FROM medcards"
            " WHERE id = %s",
            (UUID(card),),
        )
        assert await cur.fetchone() == (
            "ACTIVE",
            len(stream),
            stream[-1].position,
            last_spend.data["month_spent_after"],
        )
        money = [e for e in events if e.aggregate_id == UUID(wallet) and "balance_after" in e.data]
        cur = await conn.execute("SELECT balance::text FROM wallets WHERE id = %s", (UUID(wallet),))
        assert await cur.fetchone() == (money[-1].data["balance_after"],)
