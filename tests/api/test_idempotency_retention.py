"""Idempotency-Key retention on the real PostgreSQL: the purge deletes only expired answers,
and a retry that comes after its key was purged is never charged twice (README,
"Idempotency-Key retention")."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import psycopg
import pytest

import cli.main as cli_main
from infrastructure.postgres.idempotency import purge_expired
from infrastructure.settings import Settings
from tests.api.support import (
    API,
    Api,
    Headers,
    Tokens,
    assert_problem,
    beneficiary_body,
    created,
    issue_card,
    open_wallet,
    repeat_of,
    running_api,
    top_up,
)

pytestmark = pytest.mark.integration
RETENTION = timedelta(days=7)


@pytest.fixture
async def api(postgres_url: str) -> AsyncIterator[Api]:
    async with running_api("postgres", postgres_url) as running:
        yield running


def keyed(headers: Headers, key: str) -> Headers:
    return {**headers, "Idempotency-Key": key}


def _age(url: str, age: timedelta, keys: list[str] | None = None) -> None:
    """Backdate stored answers (all, or those with `keys`) to `age` old."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "UPDATE idempotency_keys SET created_at = now() - %s"
            " WHERE %s::text[] IS NULL OR key = ANY(%s)",
            (age, keys, keys),
        )


async def _post(api: Api, path: str, body: dict[str, Any], headers: Headers) -> httpx.Response:
    return await api.client.post(f"{API}{path}", json=body, headers=headers)


async def test_the_purge_removes_only_expired_keys(
    api: Api,
    tokens: Tokens,
    postgres_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for n in range(5):
        await issue_card(api, keyed(tokens.admin(), f"issue-{n}"), f"retained-{n}")
    _age(postgres_url, RETENTION + timedelta(minutes=1), ["issue-0", "issue-1"])
    _age(postgres_url, RETENTION - timedelta(minutes=1), ["issue-2"])
    for name in Settings.env_names():
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("POSTGRES_URL", postgres_url)

    assert cli_main.main(["idempotency", "purge", "--dry-run"]) == 0
    assert capsys.readouterr().out.startswith("2 Idempotency-Key answers older than 7 days")
    assert len(await api.idempotency_rows() or []) == 5

    assert cli_main.main(["idempotency", "purge"]) == 0
    assert capsys.readouterr().out.startswith("purged 2 Idempotency-Key answers")
    assert [key for _, key in await api.idempotency_rows() or []] == [
        "issue-2",
        "issue-3",
        "issue-4",
    ]
    assert cli_main.main(["idempotency", "purge"]) == 0
    assert capsys.readouterr().out.startswith("purged 0 ")

    # the retention is a setting: a day keeps the one six days and 23 hours old no longer
    monkeypatch.setenv("IDEMPOTENCY_RETENTION_DAYS", "1")
    assert cli_main.main(["idempotency", "purge"]) == 0
    assert [key for _, key in await api.idempotency_rows() or []] == ["issue-3", "issue-4"]
    assert await api.event_count() == 5, "the purge touches answers only, never events"


async def test_the_purge_works_in_batches(api: Api, tokens: Tokens, postgres_url: str) -> None:
    for n in range(7):
        await issue_card(api, keyed(tokens.admin(), f"batch-{n}"), f"batched-{n}")
    _age(postgres_url, RETENTION * 2)
    assert purge_expired(postgres_url, RETENTION, batch_size=3) == 7
    assert await api.idempotency_rows() == []


async def test_a_retry_after_its_key_expired_is_not_charged_twice(
    api: Api, tokens: Tokens, postgres_url: str
) -> None:
    card = await issue_card(api, tokens.admin(), "late-member")
    wallet = await open_wallet(api, tokens.ops(), "late-member")
    created(await top_up(api, tokens.ops(), wallet["id"], "500.00", "fawry-late-0"))
    pharmacy = tokens.pharmacy("branch-late")
    claims = f"/medcards/{card['id']}/claims/prescriptions"
    sent: dict[str, tuple[str, dict[str, Any], Headers]] = {
        "claim": (claims, {"prescriptionId": "rx-late", "totalAmount": "350.00"}, pharmacy),
        "claim_with_copay_from_wallet": (
            claims,
            {"prescriptionId": "rx-copay", "totalAmount": "100.00", "payCopaymentFromWallet": True},
            pharmacy,
        ),
        "top_up": (
            f"/wallets/{wallet['id']}/topups",
            {"gateway": "paymob", "gatewayReference": "pm-late-1", "amount": "50.00"},
            tokens.ops(),
        ),
        "debit": (
            f"/wallets/{wallet['id']}/debits",
            {"amount": "20.00", "reference": "order-late-1"},
            tokens.member("late-member"),
        ),
        "issue_card": ("/medcards", {"userId": "late-other", "cardType": "silver"}, tokens.ops()),
        "open_wallet": ("/wallets", {"userId": "late-other"}, tokens.ops()),
        "add_beneficiary": (
            f"/medcards/{card['id']}/beneficiaries",
            beneficiary_body(),
            tokens.admin(),
        ),
    }
    first = {
        name: created(await _post(api, path, body, keyed(headers, f"late-{name}")))
        for name, (path, body, headers) in sent.items()
    }
    undone = {"prescriptionId": "rx-undone", "totalAmount": "80.00"}
    reversed_claim = created(await _post(api, claims, undone, keyed(pharmacy, "late-undone")))
    reversal = f"/medcards/{card['id']}/claims/{reversed_claim['claimId']}/reversal"
    created(await _post(api, reversal, {}, keyed(pharmacy, "late-reversal")), 200)
    suspend = f"/medcards/{card['id']}/suspend"
    created(await _post(api, suspend, {}, keyed(tokens.admin(), "late-suspend")), 200)
    # the whole debit refunded (a refund has no key of its own: the debit bounds a late retry)
    refund = f"/wallets/{wallet['id']}/debits/{first['debit']['transactionId']}/refund"
    created(await _post(api, refund, {"reason": "cancelled"}, keyed(tokens.ops(), "late-refund")))
    money_before = await _money_events(api)

    _age(postgres_url, RETENTION + timedelta(hours=1))
    assert purge_expired(postgres_url, RETENTION) == len(sent) + 4
    again = {
        name: await _post(api, path, body, keyed(headers, f"late-{name}"))
        for name, (path, body, headers) in sent.items()
    }

    # Money moves at most once: the domain's own keys (prescription id, gateway reference,
    # debit reference) answer with the original decision and position.
    for name in ("claim", "claim_with_copay_from_wallet", "top_up", "debit"):
        assert again[name].status_code == 200, (name, again[name].text)
        assert again[name].headers["idempotent-replayed"] == "true", name
        assert again[name].json() == repeat_of(first[name]), name
    assert await _money_events(api) == money_before
    # State changes that already happened are refused by the state itself.
    assert_problem(again["open_wallet"], 409, "wallet_exists")
    assert_problem(again["add_beneficiary"], 409, "beneficiary_already_on_card")
    late_reversal = await _post(api, reversal, {}, keyed(pharmacy, "late-reversal"))
    assert_problem(late_reversal, 409, "claim_already_reversed")
    late_suspend = await _post(api, suspend, {}, keyed(tokens.admin(), "late-suspend"))
    assert_problem(late_suspend, 409, "invalid_status_transition")
    late_refund = await _post(
        api, refund, {"reason": "cancelled"}, keyed(tokens.ops(), "late-refund")
    )
    assert_problem(late_refund, 409, "refund_exceeds_debit")
    assert await _money_events(api) == money_before
    # Issuing a card has no key of its own in the domain: a retry this late issues another
    # card (no money moves; the README says so).
    assert created(again["issue_card"])["id"] != first["issue_card"]["id"]
    # A reversed claim no longer holds its prescription id: retried this late, it is
    # adjudicated afresh, once, so the card carries one charge for it, not two.
    rebooked = created(await _post(api, claims, undone, keyed(pharmacy, "late-undone")))
    assert rebooked["claimId"] != reversed_claim["claimId"]
    assert len(await _money_events(api)) == len(money_before) + 1


async def _money_events(api: Api) -> list[tuple[str, int]]:
    money = {"medcard.claim_adjudicated", "medcard.claim_reversed", "wallet.topped_up"}
    money |= {"wallet.debited", "wallet.refunded"}
    return [(e.event_type, e.position) for e in await api.events() if e.event_type in money]
