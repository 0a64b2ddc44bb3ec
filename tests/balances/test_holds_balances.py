"""Benefit holds and the CQL balance projection: a hold is not spending and moves no money,
so the month's spend and the spend entries are the claims' alone, holds or not."""

from __future__ import annotations

from decimal import Decimal
from uuid import UUID

import pytest

from infrastructure.cassandra.session import CqlConfig, CqlConnection
from projection_service.balances.projector import BalanceProjector
from tests.api.support import API, Api, Tokens, api_settings, claim, created, done, issue_card
from tests.balances.support import recorded_events

pytestmark = pytest.mark.integration


async def test_holds_leave_the_month_spend_to_the_claims(
    api: Api, postgres_url: str, cql: CqlConnection, config: CqlConfig, projector: BalanceProjector
) -> None:
    tokens = Tokens(api_settings())
    pharmacy = tokens.pharmacy()
    card = await issue_card(api, tokens.admin(), "holds-balances")
    holds = f"{API}/medcards/{card['id']}/holds"

    async def hold(amount: str, rx: str) -> dict[str, str]:
        placed = await api.client.post(
            holds, json={"amount": amount, "prescriptionId": rx}, headers=pharmacy
        )
        return created(placed)

    captured = await hold("1000.00", "rx-hb-1")
    voided = await hold("500.00", "rx-hb-2")
    await hold("200.00", "rx-hb-3")  # stays open
    claimed = created(
        await claim(api, pharmacy, card["id"], "rx-hb-1", "350.00", holdId=captured["holdId"])
    )
    done(await api.client.post(f"{holds}/{voided['holdId']}/void", headers=pharmacy))

    result = projector.project(recorded_events(postgres_url))
    assert result.bad == 0
    # issued, three placed, one captured, one voided: none a balance event
    assert result.skipped == 6
    ks = config.keyspace
    months = list(
        cql.session.execute(
            cql.session.prepare(
                f"SELECT month, total_spent FROM {ks}.medcard_monthly_spend WHERE medcard_id = ?"
            ),
            (UUID(card["id"]),),
        )
    )
    assert [(m.month, m.total_spent) for m in months] == [(claimed["month"], Decimal("315.00"))]
    entries = list(
        cql.session.execute(
            cql.session.prepare(
                f"SELECT event_type FROM {ks}.medcard_spend_entries WHERE medcard_id = ?"
                " AND month = ?"
            ),
            (UUID(card["id"]), claimed["month"]),
        )
    )
    assert [e.event_type for e in entries] == ["medcard.claim_adjudicated"]
