"""Velocity flags: written by the command service into the claim events, projected into
`fraud_flags`, rebuilt identically, listed by `healthpay fraud flags`."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from cli.main import main
from domain.medcard.velocity import AMOUNT_PER_DAY, CLAIMS_PER_DAY
from infrastructure.postgres.pool import Pool
from projection_service.rebuild import rebuild
from tests.api.support import claim, created, issue_card, running_api
from tests.projections.support import TOKENS, pool_snapshot, project, rows, stored_events

pytestmark = pytest.mark.integration


def pills(days: int) -> list[dict[str, Any]]:
    return [
        {
            "drugCode": f"D-{days}",
            "drugName": "Metformin",
            "quantity": 1,
            "unitPrice": "100.00",
            "daysSupply": days,
        }
    ]


async def test_velocity_flags_reach_the_read_model_the_rebuild_and_the_cli(
    postgres_url: str,
    postgres_pool: Pool,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    pharmacy = TOKENS.pharmacy()
    limits: dict[str, Any] = {
        "velocity_max_claims_per_day": 2,
        "velocity_max_amount_per_day": "250",
    }
    async with running_api("postgres", postgres_url, **limits) as api:
        busy = await issue_card(api, TOKENS.admin(), "member-busy")
        calm = await issue_card(api, TOKENS.admin(), "member-calm")
        answers = [
            created(await claim(api, pharmacy, busy["id"], f"rx-v{n}", "100.00", items=pills(n)))
            for n in (10, 20, 30)
        ]
        created(await claim(api, pharmacy, calm["id"], "rx-calm", "100.00"))
        events = await stored_events(api)
    assert all(a["decision"] == "approved" for a in answers), "flags never refuse"
    assert all("flags" not in a for a in answers), "the pharmacy is not told"
    third = answers[2]["claimId"]
    stored = {e.data.get("claim_id"): e.data for e in events}
    assert stored[third]["flags"] == [CLAIMS_PER_DAY, AMOUNT_PER_DAY]
    assert [stored[a["claimId"]]["flags"] for a in answers[:2]] == [[], []]

    await project(postgres_pool, events)
    flagged = await rows(
        postgres_pool,
        "SELECT claim_id::text, flag, medcard_id::text, total_amount::text FROM fraud_flags"
        " ORDER BY flag",
    )
    assert flagged == [
        (third, AMOUNT_PER_DAY, busy["id"], "100.00"),
        (third, CLAIMS_PER_DAY, busy["id"], "100.00"),
    ]
    supplies = await rows(postgres_pool, "SELECT days_supply FROM prescription_items ORDER BY 1")
    assert supplies == [(10,), (20,), (30,)]

    before = await pool_snapshot(postgres_pool)
    report = await rebuild(postgres_pool, chunk_size=2)
    assert report.identical, [c for c in report.comparisons if not c.identical]
    assert await pool_snapshot(postgres_pool) == before

    monkeypatch.setenv("POSTGRES_URL", postgres_url)
    capsys.readouterr()
    assert await asyncio.to_thread(main, ["fraud", "flags", "--card", busy["id"]]) == 0
    shown = capsys.readouterr().out.splitlines()
    assert [line.split()[-1] for line in shown[1:-1]] == [AMOUNT_PER_DAY, CLAIMS_PER_DAY]
    assert all(third in line for line in shown[1:-1])
    assert shown[-1] == "2 flag(s)"
    assert await asyncio.to_thread(main, ["fraud", "flags", "--card", calm["id"]]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "0 flag(s)"
    assert await asyncio.to_thread(main, ["fraud", "flags", "--since", "2999-01-01"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "0 flag(s)"
    assert await asyncio.to_thread(main, ["fraud", "flags", "--since", "2000-01-01"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "2 flag(s)"
