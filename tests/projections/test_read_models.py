"""The read models built from events written by the real command service (docs/design.md §5-6)."""

from __future__ import annotations

from decimal import Decimal
from uuid import UUID

import pytest

from infrastructure.postgres.pool import Pool
from tests.api.support import running_api
from tests.projections.support import World, project, rows, stored_events, write_world

pytestmark = pytest.mark.integration


@pytest.fixture
async def world(postgres_url: str, postgres_pool: Pool) -> World:
    async with running_api("postgres", postgres_url) as api:
        world = await write_world(api)
        result = await project(postgres_pool, await stored_events(api))
    assert result.duplicates == result.held == 0
    return world


async def test_the_seeds_check_query_returns_the_last_claim(
    world: World, postgres_pool: Pool
) -> None:
    [last] = await rows(
        postgres_pool, "SELECT * FROM prescription_claims ORDER BY claimed_at DESC LIMIT 1"
    )
    assert last[0] == UUID(world.last_claim)


async def test_cards_reflect_their_whole_stream(world: World, postgres_pool: Pool) -> None:
    cards = {
        str(r[0]): r[1:]
        for r in await rows(
            postgres_pool,
            "SELECT m.id, m.status, m.version, m.last_position, m.card_type, m.user_id,"
            " m.current_month_spent, m.primary_holder->>'name',"
            " (SELECT max(version) FROM events e WHERE e.aggregate_id = m.id),"
            " (SELECT max(position) FROM events e WHERE e.aggregate_id = m.id)"
            " FROM medcards m",
        )
    }
    assert set(cards) == {world.family_card, world.capped_card, world.lifecycle_card}
    for _status, version, position, *_, last_version, last_position in cards.values():
        assert (version, position) == (last_version, last_position)
    assert cards[world.lifecycle_card][0] == "CANCELLED"
    assert cards[world.family_card][0] == "ACTIVE"
    # gold 10%: 90 (items) + 315 (spouse); the reversed copay claim and the rejection add 0
    assert cards[world.family_card][3:6] == ("gold", "member-a", Decimal("405.00"))
    assert cards[world.family_card][6] == "Ahmed Ali"
    # silver 2000/20%: 1920 reversed, 80 partial, the rejection spends nothing
    assert cards[world.capped_card][5] == Decimal("80.00")

    [(renewed_expiry, issued_expiry)] = await rows(
        postgres_pool,
        "SELECT m.expiry_date, (e.event_data->>'expiry_date')::date FROM medcards m"
        " JOIN events e ON e.aggregate_id = m.id AND e.version = 1 WHERE m.id = %s",
        UUID(world.lifecycle_card),
    )
    assert renewed_expiry > issued_expiry


async def test_current_month_spent_is_the_months_non_reversed_covered_amounts(
    world: World, postgres_pool: Pool
) -> None:
    mismatches = await rows(
        postgres_pool,
        "SELECT m.id, m.current_month_spent, s.total_spent,"
        " (SELECT coalesce(sum(c.covered_amount), 0) FROM prescription_claims c"
        "   WHERE c.medcard_id = m.id AND c.month = m.current_month AND c.status <> 'reversed')"
        " AS expected"
        " FROM medcards m LEFT JOIN medcard_monthly_spend s"
        "   ON s.medcard_id = m.id AND s.month = m.current_month"
        " WHERE m.current_month IS NOT NULL",
    )
    assert len(mismatches) == 3
    for _, spent, monthly, expected in mismatches:
        assert spent == monthly == expected


async def test_beneficiaries_primary_added_and_removed(world: World, postgres_pool: Pool) -> None:
    family = await rows(
        postgres_pool,
        "SELECT id, relationship, is_primary, removed_at IS NOT NULL, national_id IS NOT NULL"
        " FROM beneficiaries WHERE medcard_id = %s ORDER BY added_at, relationship",
        UUID(world.family_card),
    )
    assert [(r[1], r[2], r[3], r[4]) for r in family] == [
        ("self", True, False, True),
        ("spouse", False, False, True),
        ("child", False, True, True),
    ]
    assert str(family[2][0]) == world.removed_beneficiary
    [(primaries,)] = await rows(
        postgres_pool, "SELECT count(*) FROM beneficiaries WHERE is_primary AND national_id IS NULL"
    )
    assert primaries == 2  # the cards issued without the holder's details


async def test_claims_with_items_rejections_and_reversals(
    world: World, postgres_pool: Pool
) -> None:
    claims = {
        r[0]: r[1:]
        for r in await rows(
            postgres_pool,
            "SELECT prescription_id, decision, status, reasons, covered_amount,"
            " copayment_amount, copayment_paid_from_wallet, wallet_id IS NOT NULL,"
            " reversed_at IS NOT NULL, pharmacy_id FROM prescription_claims",
        )
    }
    assert claims["rx-items"][:2] == ("approved", "approved")
    assert claims["rx-copay"][:3] == (
        "approved",
        "reversed",
        ["covered_within_monthly_limit", "copayment_paid_from_wallet"],
    )
    assert claims["rx-copay"][5:8] == (Decimal("20.00"), True, True)
    assert claims["rx-child"][:3] == ("rejected", "rejected", ["beneficiary_not_on_card"])
    assert claims["rx-child"][8] == "pharmacy-2"
    assert claims["rx-c1"][1] == "reversed"
    assert claims["rx-c2"][:2] == ("partially_approved", "partially_approved")
    assert claims["rx-c3"][2] == ["monthly_limit_exhausted"]
    assert claims["rx-l1"][2] == ["card_suspended"]
    items = await rows(
        postgres_pool,
        "SELECT i.line_no, i.drug_code, i.total_price, i.covered_amount, i.copayment_amount"
        " FROM prescription_items i JOIN prescription_claims c ON c.id = i.claim_id"
        " WHERE c.prescription_id = 'rx-items' ORDER BY i.line_no",
    )
    assert [r[:3] for r in items] == [(1, "D-1", Decimal("33.33")), (2, "D-2", Decimal("66.67"))]
    assert sum(r[3] for r in items) == Decimal("90.00")
    assert all(r[3] + r[4] == r[2] for r in items)


async def test_wallets_and_their_statements(world: World, postgres_pool: Pool) -> None:
    wallets = {
        r[0]: r[1:]
        for r in await rows(
            postgres_pool,
            "SELECT id::text, balance, copay_per_claim_limit, copay_monthly_limit,"
            " copay_consent_set_at IS NOT NULL FROM wallets",
        )
    }
    # 500 + 100 - 50 + 15 (refunded in part) - 20 (copay) + 20 (its refund); member-a
    # consented to copays, member-b not
    assert wallets == {
        world.wallet_a: (Decimal("565.00"), Decimal("100.00"), Decimal("300.00"), True),
        world.wallet_b: (Decimal("75.50"), Decimal("0.00"), Decimal("0.00"), False),
    }
    statement = await rows(
        postgres_pool,
        "SELECT type, amount, balance_after, gateway, purpose FROM wallet_transactions"
        " WHERE wallet_id = %s ORDER BY position",
        UUID(world.wallet_a),
    )
    assert statement == [
        ("topup", Decimal("500.00"), Decimal("500.00"), "fawry", None),
        ("topup", Decimal("100.00"), Decimal("600.00"), "paymob", None),
        ("debit", Decimal("50.00"), Decimal("550.00"), None, "purchase"),
        ("refund", Decimal("15.00"), Decimal("565.00"), None, "one item returned"),
        ("debit", Decimal("20.00"), Decimal("545.00"), None, "claim_copayment"),
        ("refund", Decimal("20.00"), Decimal("565.00"), None, "claim_reversed"),
    ]


async def test_ledger_postings_sum_to_zero(world: World, postgres_pool: Pool) -> None:
    [(total, legs, events)] = await rows(
        postgres_pool, "SELECT sum(amount), count(*), count(DISTINCT event_id) FROM ledger_postings"
    )
    assert total == 0
    assert legs == 2 * events
    unbalanced = await rows(
        postgres_pool,
        "SELECT event_id FROM ledger_postings GROUP BY event_id HAVING sum(amount) <> 0",
    )
    assert unbalanced == []
    by_account = dict(
        await rows(postgres_pool, "SELECT account, sum(amount) FROM ledger_postings GROUP BY 1")
    )
    assert by_account[f"member_wallet:{world.wallet_a}"] == Decimal("565.00")
