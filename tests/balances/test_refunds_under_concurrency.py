"""Refunds of one debit sent at once through two command-service processes and many HTTP
connections never come to more than the debit; the wallet's balance agrees in the event
store, the PostgreSQL read model and the CQL balance tables (and `balances verify`), and the
chaos run's independent store checks account for the refunds."""

from __future__ import annotations

import asyncio
import io
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest

from cli.balances import verify
from infrastructure.auth.tokens import Role, SigningKey, TokenCodec
from infrastructure.cassandra.session import CqlConfig, CqlConnection
from infrastructure.postgres.pool import Pool
from projection_service.balances.projector import BalanceProjector
from tests.api.support import API
from tests.balances.support import recorded_events
from tests.integration.command_processes import CommandProcess
from tests.integration.stream_checks import (
    Stored,
    check_cql_tables,
    check_no_wallet_below_zero,
    check_postings_balance,
    check_refunds_within_debits,
    read_store,
)
from tests.isolation import isolated_settings
from tests.projections.support import project, rows

pytestmark = pytest.mark.integration
SECRET = "refund-race-secret-0123456789abcdef0123"
ATTEMPTS = 20
REFUND = Decimal("10.00")
DEBIT = Decimal("50.00")


@pytest.fixture
def two_processes(postgres_url: str) -> Iterator[list[CommandProcess]]:
    processes = [CommandProcess(postgres_url, SECRET).start() for _ in range(2)]
    yield processes
    for process in processes:
        process.stop()


def _ops() -> dict[str, str]:
    d = isolated_settings()
    codec = TokenCodec(SigningKey.of(SECRET), d.jwt_issuer, d.jwt_audience)
    return {"Authorization": f"Bearer {codec.issue(Role.OPS, 'ops-race')}"}


async def _post(client: httpx.AsyncClient, url: str, body: dict[str, Any]) -> httpx.Response:
    # 503 + Retry-After: the wallet kept changing under it; a client sends it again.
    for _ in range(20):
        answer = await client.post(url, json=body, headers=_ops())
        if answer.status_code != 503:
            return answer
        assert answer.headers["Retry-After"]
    return answer


async def _wallet_with_debit(client: httpx.AsyncClient, base: str) -> tuple[str, str]:
    opened = await _post(client, f"{base}{API}/wallets", {"userId": "u-refund-race"})
    wallet = opened.json()["id"]
    topped = await _post(
        client,
        f"{base}{API}/wallets/{wallet}/topups",
        {"gateway": "fawry", "gatewayReference": "FWR-REFUND-RACE", "amount": "100.00"},
    )
    debited = await _post(
        client,
        f"{base}{API}/wallets/{wallet}/debits",
        {"amount": str(DEBIT), "reference": "order-race"},
    )
    assert [a.status_code for a in (opened, topped, debited)] == [201, 201, 201]
    return wallet, debited.json()["transactionId"]


async def test_concurrent_refunds_of_one_debit_never_exceed_it(
    two_processes: list[CommandProcess],
    postgres_url: str,
    postgres_pool: Pool,
    cql: CqlConnection,
    config: CqlConfig,
    projector: BalanceProjector,
) -> None:
    async with httpx.AsyncClient(limits=httpx.Limits(max_connections=100), timeout=60) as client:
        wallet, debit = await _wallet_with_debit(client, two_processes[0].url)

        async def refund(attempt: int) -> httpx.Response:
            base = two_processes[attempt % 2].url
            url = f"{base}{API}/wallets/{wallet}/debits/{debit}/refund"
            return await _post(client, url, {"amount": str(REFUND), "reason": f"race {attempt}"})

        answers = await asyncio.gather(*(refund(i) for i in range(ATTEMPTS)))

    statuses = Counter(a.status_code for a in answers)
    assert statuses == {201: int(DEBIT / REFUND), 409: ATTEMPTS - int(DEBIT / REFUND)}, statuses
    assert {a.json()["code"] for a in answers if a.status_code == 409} == {"refund_exceeds_debit"}
    balances = sorted(Decimal(a.json()["balance"]) for a in answers if a.status_code == 201)
    assert balances == [Decimal("60.00"), Decimal("70.00"), Decimal("80.00"), Decimal("90.00"),
                        Decimal("100.00")]  # fmt: skip

    # the event store: five refunds of the debit, one version each, the balance back at 100
    events = [e for e in recorded_events(postgres_url) if str(e.aggregate_id) == wallet]
    assert [e.version for e in events] == list(range(1, len(events) + 1))
    refunds = [e for e in events if e.event_type == "wallet.refunded"]
    assert [e.data["debit_id"] for e in refunds] == [debit] * 5
    assert sum(Decimal(e.data["amount"]) for e in refunds) == DEBIT
    assert Decimal(events[-1].data["balance_after"]) == Decimal("100.00")

    # the read model, projected from the store
    await project(postgres_pool, recorded_events(postgres_url))
    assert await rows(postgres_pool, "SELECT balance, version FROM wallets WHERE id = %s",
                      UUID(wallet)) == [(Decimal("100.00"), events[-1].version)]  # fmt: skip
    statement = await rows(
        postgres_pool,
        "SELECT type, count(*), sum(amount) FROM wallet_transactions WHERE wallet_id = %s"
        " GROUP BY type ORDER BY type",
        UUID(wallet),
    )
    assert statement == [("debit", 1, DEBIT), ("refund", 5, DEBIT), ("topup", 1, Decimal(100))]

    # the CQL balance tables, projected from the store, and `balances verify` agreeing
    projector.project(recorded_events(postgres_url))
    ks = config.keyspace
    [row] = cql.session.execute(
        f"SELECT balance, version FROM {ks}.wallet_balances WHERE wallet_id = %s", (UUID(wallet),)
    )
    assert (row.balance, row.version) == (Decimal("100.00"), events[-1].version)
    entries = cql.session.execute(
        f"SELECT event_type, amount FROM {ks}.wallet_entries WHERE wallet_id = %s",
        (UUID(wallet),),
    )
    assert Counter((e.event_type, e.amount) for e in entries)[("wallet.refunded", REFUND)] == 5
    settings = isolated_settings(postgres_url=postgres_url, scylla_keyspace=ks)
    assert verify(settings, config, io.StringIO()) == 0

    # the chaos checker's own SQL and CQL say the same
    stored = read_store(postgres_url)
    check_refunds_within_debits(stored)
    check_postings_balance(stored)
    check_no_wallet_below_zero(postgres_url, stored)
    check_cql_tables(cql.session, ks, stored)


def test_the_store_check_finds_a_debit_refunded_beyond_its_amount() -> None:
    wallet = uuid4()

    def event(version: int, event_type: str, amount: str, debit: str = "d-1") -> Stored:
        return Stored(uuid4(), wallet, "wallet", event_type, version, version,
                      {"debit_id": debit, "amount": amount})  # fmt: skip

    within = [event(1, "wallet.debited", "10.00"), event(2, "wallet.refunded", "6.00"),
              event(3, "wallet.refunded", "4.00")]  # fmt: skip
    check_refunds_within_debits({e.event_id: e for e in within})
    for wrong in (event(4, "wallet.refunded", "0.01"), event(4, "wallet.refunded", "1.00", "d-2")):
        events = {e.event_id: e for e in [*within, wrong]}
        with pytest.raises(AssertionError):
            check_refunds_within_debits(events)
