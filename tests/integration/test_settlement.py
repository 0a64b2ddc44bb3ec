"""`healthpay settlement report` on a real PostgreSQL: what each insurer owes each pharmacy for a
month, reconciled to the ledger's postings to the piastre by an independent SQL sum; a
reversal counts in the month it happened."""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from datetime import timedelta
from decimal import Decimal
from typing import Any

import psycopg
import pytest

from cli.main import main
from cli.settlement import report
from domain.calendar import benefit_month
from domain.money import ZERO
from domain.settlement import Recorded, settle
from domain.upcasting import event_from_payload
from tests.api.support import (
    API,
    Api,
    Tokens,
    api_settings,
    claim,
    created,
    done,
    issue_card,
    open_wallet,
    running_api,
    set_copay_consent,
    top_up,
)

pytestmark = pytest.mark.integration

# Every posting on a pharmacy's account or an insurer's, by the month of its event (Cairo).
_POSTINGS = """
SELECT to_char(e.timestamp AT TIME ZONE 'Africa/Cairo', 'YYYY-MM'), p->>'account',
       sum((p->>'amount')::numeric)
FROM events e, jsonb_array_elements(e.event_data->'postings') p
WHERE p->>'account' LIKE 'pharmacy:%%' OR p->>'account' LIKE 'insurer:%%'
GROUP BY 1, 2
"""


async def _reverse(api: Api, tokens: Tokens, card: str, claim_id: str, pharmacy: str) -> None:
    done(
        await api.client.post(
            f"{API}/medcards/{card}/claims/{claim_id}/reversal",
            json={"reason": "returned"},
            headers=tokens.pharmacy(pharmacy),
        )
    )


async def _write(api: Api) -> None:
    """Two insurers, two pharmacies, copayments from a wallet, reversals, a member's own debit."""
    tokens = Tokens(api_settings())
    misr = await issue_card(
        api, tokens.admin(), "settle-1", monthlyLimit="100000.00", insuranceProvider="misr"
    )
    plain = await issue_card(api, tokens.admin(), "settle-2", monthlyLimit="100000.00")
    wallet = await open_wallet(api, tokens.ops(), "settle-1")
    created(await top_up(api, tokens.ops(), wallet["id"], "500.00", "fawry-settle-1"))
    done(await set_copay_consent(api, tokens.member("settle-1"), wallet["id"], "100.00", "400.00"))

    def paid(rx: str, total: str, pharmacy: str, card: dict[str, Any] = misr) -> Any:
        return claim(
            api, tokens.pharmacy(pharmacy), card["id"], rx, total, payCopaymentFromWallet=True
        )

    created(await paid("rx-s1", "200.00", "ph-1"))
    second = created(await paid("rx-s2", "300.00", "ph-1"))
    await _reverse(api, tokens, misr["id"], second["claimId"], "ph-1")  # its copay refunded
    third = created(await claim(api, tokens.pharmacy("ph-2"), misr["id"], "rx-s3", "100.00"))
    await _reverse(api, tokens, misr["id"], third["claimId"], "ph-2")
    created(await claim(api, tokens.pharmacy("ph-1"), plain["id"], "rx-s4", "350.00"))
    done(
        await api.client.post(
            f"{API}/wallets/{wallet['id']}/debits",
            json={"amount": "10.00", "reference": "order-1"},
            headers=tokens.ops(),
        )
    )


def _stored(url: str) -> list[Recorded]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT aggregate_id, event_type, schema_version, event_data, timestamp"
            " FROM events ORDER BY position"
        ).fetchall()
    return [Recorded(r[0], event_from_payload(r[1], r[2], r[3]), r[4]) for r in rows]


async def test_the_report_is_the_postings_per_insurer_and_pharmacy(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    async with running_api("postgres", postgres_url) as api:
        await _write(api)
    [period] = {benefit_month(r.at) for r in _stored(postgres_url)}

    lines = {(line.insurer, line.pharmacy): line for line in report(postgres_url, period)}
    assert set(lines) == {
        ("insurer:healthpay", "pharmacy:ph-1"),
        ("insurer:misr", "pharmacy:ph-1"),
        ("insurer:misr", "pharmacy:ph-2"),
    }
    misr_1 = lines["insurer:misr", "pharmacy:ph-1"]
    assert (misr_1.claims, misr_1.reversals) == (2, 1)
    assert misr_1.copay_from_wallets == Decimal("50.00")  # 10 % of 200 and of 300
    assert misr_1.copay_refunded == Decimal("30.00")  # the reversed claim's
    misr_2 = lines["insurer:misr", "pharmacy:ph-2"]
    assert (misr_2.net_covered, misr_2.net_copay) == (Decimal("0.00"), Decimal("0.00"))

    # Independently: every pharmacy's postings are its lines' net covered plus net copay,
    # every insurer's (negated) its lines' net covered; to the piastre.
    with psycopg.connect(postgres_url) as conn:
        postings = {(m, a): v for m, a, v in conn.execute(_POSTINGS).fetchall() if m == period}
    owed: dict[str, Decimal] = defaultdict(Decimal)
    for line in lines.values():
        owed[line.pharmacy] += line.net_covered + line.net_copay
        owed[line.insurer] -= line.net_covered
    assert {a: v for (_, a), v in postings.items()} == dict(owed)

    # The command line, as CSV, for one insurer.
    monkeypatch.setenv("POSTGRES_URL", postgres_url)
    assert main(["settlement", "report", "--period", period, "--insurer", "misr"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [(r["insurer"], r["pharmacy"]) for r in rows] == [
        ("insurer:misr", "pharmacy:ph-1"),
        ("insurer:misr", "pharmacy:ph-2"),
    ]
    assert rows[0]["net_copay"] == "20.00"
    assert rows[0]["net_covered"] == f"{misr_1.net_covered:.2f}"
    assert main(["settlement", "report", "--period", "2026-13"]) == 2


async def test_a_reversal_counts_in_the_month_it_happened(postgres_url: str) -> None:
    async with running_api("postgres", postgres_url) as api:
        await _write(api)
    events = _stored(postgres_url)
    # the same log, its reversals and their refunds a month later (after the month's close)
    later = [
        Recorded(r.aggregate_id, r.event, r.at + timedelta(days=31))
        if r.event.event_type in {"medcard.claim_reversed", "wallet.refunded"}
        else r
        for r in events
    ]
    period = benefit_month(events[0].at)
    next_period = benefit_month(events[0].at + timedelta(days=31))
    this = {(x.insurer, x.pharmacy): x for x in settle(period, later)}
    after = {(x.insurer, x.pharmacy): x for x in settle(next_period, later)}
    misr_1 = this["insurer:misr", "pharmacy:ph-1"]
    assert (misr_1.reversals, misr_1.reversed, misr_1.copay_refunded) == (0, ZERO, ZERO)
    moved = after["insurer:misr", "pharmacy:ph-1"]
    assert (moved.claims, moved.covered, moved.reversals) == (0, ZERO, 1)
    assert moved.copay_refunded == Decimal("30.00")
    assert moved.net_covered == -moved.reversed < 0
    assert set(after) == {("insurer:misr", "pharmacy:ph-1"), ("insurer:misr", "pharmacy:ph-2")}
