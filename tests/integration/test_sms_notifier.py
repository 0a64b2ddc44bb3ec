"""The SMS notifier against real PostgreSQL and Kafka and a fake Cequens: one message per
(event, recipient, kind) through a SIGKILL and through offsets lost, in the member's
language, and none to a card that opted out."""

from __future__ import annotations

import asyncio
import subprocess
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any, cast

import psycopg
import pytest
from pydantic import SecretStr

from cli.sms import set_preference
from command_service.relay.publisher import KafkaPublisher
from command_service.relay.relay import Relay
from infrastructure.outage import OutageTooLong
from infrastructure.postgres.pool import Pool
from infrastructure.sms.cequens import CequensSender
from infrastructure.sms.port import DisabledSender
from projection_service.notifier.worker import Notifier
from tests.api.support import Api, Tokens, api_settings, beneficiary_body, created, running_api
from tests.integration.fake_cequens import API_KEY, FakeCequens, fake_cequens
from tests.integration.server_scripts import free_port
from tests.integration.sms_stream import CardStream, WalletStream, publish
from tests.integration.stream_processes import (
    HealthpayProcess,
    _healthpay,
    committed_offsets,
    end_offsets,
)
from tests.isolation import isolated_environ

pytestmark = pytest.mark.integration

WAIT_S = 60.0


def _rows(url: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT recipient, kind, status, attempts, provider_message_id, last_error, language"
            " FROM sms_outbox ORDER BY kind"
        ).fetchall()


def _until(what: str, check: Callable[[], bool], log: Callable[[], str] = lambda: "") -> None:
    deadline = time.monotonic() + WAIT_S
    while not check():
        assert time.monotonic() < deadline, f"not within {WAIT_S}s: {what}\n{log()}"
        time.sleep(0.1)


def _notifier_process(url: str, bootstrap: str, topic: str, fake: FakeCequens) -> HealthpayProcess:
    port = free_port()
    env = {
        "POSTGRES_URL": url,
        "KAFKA_BROKERS": bootstrap,
        "KAFKA_TOPIC": topic,
        "CEQUENS_URL": fake.url,
        "CEQUENS_API_KEY": API_KEY,
        "SMS_ENABLED": "true",
        "OUTAGE_BUDGET_S": "300",
    }
    command = _healthpay("notify", "--metrics-port", str(port))
    return HealthpayProcess("notifier", command, env, port, "/metrics")


def test_a_claim_over_80_percent_sends_one_sms_through_a_sigkill(
    postgres_url: str, kafka_bootstrap: str, kafka_topic: str
) -> None:
    card = CardStream("+201012345601")
    with fake_cequens(accepting=False) as fake:
        publish(
            kafka_bootstrap,
            kafka_topic,
            [card.issued(), card.claim(Decimal("850.00"), Decimal("212.50"))],
        )
        notifier = _notifier_process(postgres_url, kafka_bootstrap, kafka_topic, fake).start()
        try:
            # Both messages stored and tried once (Cequens refusing with 503): the process is
            # killed between storing its batch's rows and getting them sent.
            _until(
                "two rows stored and tried",
                lambda: (
                    len(rows := _rows(postgres_url)) == 2
                    and all(r[2] == "pending" and r[5] for r in rows)
                ),
                notifier.log_tail,
            )
            ends = end_offsets(kafka_bootstrap, kafka_topic, 3)
            _until(
                "the batch's offsets committed after its rows were stored",
                lambda: (
                    committed_offsets(kafka_bootstrap, "healthpay-notifier", kafka_topic, 3) == ends
                ),
            )
            notifier.kill()
            refused_before = fake.refused_count()
            assert fake.accepted() == []
            assert refused_before >= 2

            fake.accepting = True
            notifier.start()
            _until(
                "both rows sent",
                lambda: all(r[2] == "sent" for r in _rows(postgres_url)),
                notifier.log_tail,
            )
        finally:
            notifier.stop()

        accepted = fake.accepted()
        texts = sorted(r.body["messageText"] for r in accepted)
        assert len(accepted) == 2, texts  # one receipt, one 80 % message: nothing twice
        assert all(r.body["recipients"] == "201012345601" for r in accepted)
        assert all(r.authorization == f"Bearer {API_KEY}" for r in accepted)
        rows = _rows(postgres_url)
        assert [r[1] for r in rows] == ["benefit_80", "claim_receipt"]
        assert {r[4] for r in rows} == {r.sms_id for r in accepted}  # Cequens' ids kept
        assert "80%" in next(
            r.body["messageText"] for r in accepted if "80%" in r.body["messageText"]
        )


async def _run_until(notifier: Notifier, done: Callable[[], bool]) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(notifier.run(stop))
    deadline = time.monotonic() + WAIT_S
    try:
        while not done():
            assert not task.done(), task
            assert time.monotonic() < deadline, "the notifier did not get there in time"
            await asyncio.sleep(0.1)
    finally:
        stop.set()
        await task


def _notifier(pool: Pool, fake: FakeCequens, bootstrap: str, topic: str, group: str) -> Notifier:
    sender = CequensSender(SecretStr(API_KEY), fake.url)
    return Notifier(
        pool, sender, bootstrap, topic, Decimal("50.00"), "ar", group=group, idle_seconds=0.05
    )


async def test_language_opt_out_and_offsets_lost(
    postgres_url: str, postgres_pool: Pool, kafka_bootstrap: str, kafka_topic: str
) -> None:
    opted_out = CardStream("+201112345602")
    arabic = CardStream("+201212345603")
    english = CardStream("+201512345604")
    set_preference(postgres_url, opted_out.card_id, opted_out=True)
    set_preference(postgres_url, english.card_id, language="en")
    events = [
        *(c.issued() for c in (opted_out, arabic, english)),
        # the opted-out card's claim first: by the time the others are sent it was read
        opted_out.claim(Decimal("100.00"), Decimal("25.00")),
        arabic.claim(Decimal("100.00"), Decimal("25.00")),
        english.claim(Decimal("100.00"), Decimal("25.00")),
    ]
    publish(kafka_bootstrap, kafka_topic, events)
    with fake_cequens() as fake:
        first = _notifier(postgres_pool, fake, kafka_bootstrap, kafka_topic, "sms-a")
        await _run_until(first, lambda: len(fake.accepted()) >= 2)
        by_phone = {r.body["recipients"]: r.body for r in fake.accepted()}
        assert set(by_phone) == {"201212345603", "201512345604"}  # none to the opted-out card
        assert "جنيه" in by_phone["201212345603"]["messageText"]
        assert by_phone["201212345603"]["messageType"] == "unicode"
        assert "Covered 100.00 EGP, you pay 25.00 EGP" in by_phone["201512345604"]["messageText"]
        assert by_phone["201512345604"]["messageType"] == "text"
        assert first.metrics.messages.labels("opted_out")._value.get() == 1
        assert {r[0] for r in _rows(postgres_url)} == {"+201212345603", "+201512345604"}

        # A group with no offsets at all (as after offsets lost) reads every event again:
        # the outbox already has their rows, so nothing more is stored or sent.
        again = _notifier(postgres_pool, fake, kafka_bootstrap, kafka_topic, "sms-b")
        await _run_until(
            again, lambda: again.metrics.messages.labels("duplicate")._value.get() == 2
        )
        assert len(fake.accepted()) == 2
        assert len(_rows(postgres_url)) == 2


async def test_who_gets_what_and_thresholds_once_a_month(
    postgres_url: str, postgres_pool: Pool, kafka_bootstrap: str, kafka_topic: str
) -> None:
    card = CardStream("+201012345605")
    wallet = WalletStream(card.user_id)
    child, child_added = card.beneficiary("+201112345606")
    first = card.claim(Decimal("850.00"), Decimal("212.50"), beneficiary=child)
    card.spent -= Decimal("850.00")  # as after its reversal: the month is below 80 % again
    events = [
        card.issued(),
        child_added,
        first,
        card.claim(Decimal("850.00"), Decimal("212.50")),  # crosses 80 % a second time
        wallet.opened(),
        wallet.topped_up(Decimal("100.00")),
        wallet.debited(Decimal("60.00")),  # 100 -> 40: below 50.00
        wallet.debited(Decimal("10.00")),  # 40 -> 30: below already, no second message
    ]
    publish(kafka_bootstrap, kafka_topic, events)
    ends = end_offsets(kafka_bootstrap, kafka_topic, 3)
    with fake_cequens() as fake:
        notifier = _notifier(postgres_pool, fake, kafka_bootstrap, kafka_topic, "sms-c")
        # every event read (its offset committed) and the messages sent
        await _run_until(
            notifier,
            lambda: (
                len(fake.accepted()) >= 5
                and committed_offsets(kafka_bootstrap, "sms-c", kafka_topic, 3) == ends
            ),
        )
    got = sorted((r[1], r[0]) for r in _rows(postgres_url))
    assert got == [
        ("benefit_80", "+201012345605"),  # once, though two claims crossed it this month
        ("claim_receipt", "+201012345605"),
        ("claim_receipt", "+201112345606"),  # the beneficiary who claimed
        ("topup", "+201012345605"),  # the wallet owner's card's holder
        ("wallet_low", "+201012345605"),
    ]
    assert len(fake.accepted()) == 5
    assert notifier.metrics.messages.labels("duplicate")._value.get() == 1


async def test_an_opt_out_after_a_message_was_stored_stops_it(
    postgres_url: str, postgres_pool: Pool, kafka_bootstrap: str, kafka_topic: str
) -> None:
    card = CardStream("+201012345607")
    publish(
        kafka_bootstrap, kafka_topic, [card.issued(), card.claim(Decimal("10.00"), Decimal("2.50"))]
    )
    with fake_cequens(accepting=False) as fake:
        notifier = _notifier(postgres_pool, fake, kafka_bootstrap, kafka_topic, "sms-d")
        # stored and tried once (Cequens away), then the member opts out; the row comes due
        # again after its back-off
        await _run_until(notifier, lambda: fake.refused_count() >= 1)
        set_preference(postgres_url, card.card_id, opted_out=True)
        fake.accepting = True
        again = _notifier(postgres_pool, fake, kafka_bootstrap, kafka_topic, "sms-d")
        await _run_until(again, lambda: _rows(postgres_url)[0][2] == "skipped")
    assert fake.accepted() == []


def _cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        _healthpay(*args), env=isolated_environ(**env), capture_output=True, text=True, timeout=60
    )


def test_the_sms_commands_write_what_the_notifier_reads(postgres_url: str) -> None:
    card = uuid.uuid4()
    opted = _cli("sms", "opt-out", "--card", str(card), POSTGRES_URL=postgres_url)
    assert opted.returncode == 0, opted.stderr
    chosen = _cli("sms", "language", "--card", str(card), "--set", "en", POSTGRES_URL=postgres_url)
    assert chosen.returncode == 0, chosen.stderr
    with psycopg.connect(postgres_url) as conn:
        row = conn.execute(
            "SELECT language, opted_out FROM sms_preferences WHERE card_id = %s", (card,)
        ).fetchone()
    assert row == ("en", True)
    back = _cli("sms", "opt-in", "--card", str(card), POSTGRES_URL=postgres_url)
    assert back.returncode == 0, back.stderr
    with psycopg.connect(postgres_url) as conn:
        assert conn.execute("SELECT opted_out FROM sms_preferences").fetchone() == (False,)


def test_notify_refuses_to_start_enabled_without_a_key() -> None:
    refused = _cli("notify", SMS_ENABLED="true", CEQUENS_API_KEY="")  # empty: unset
    assert refused.returncode == 2
    assert refused.stderr.strip() == (
        "healthpay notify: CEQUENS_API_KEY is not set (or set SMS_ENABLED=false)"
    )


@pytest.fixture
async def api(postgres_url: str) -> AsyncIterator[Api]:
    async with running_api("postgres", postgres_url) as running:
        yield running


async def test_a_claim_over_rest_reaches_the_member_as_sms(
    api: Api, postgres_url: str, postgres_pool: Pool, kafka_bootstrap: str, kafka_topic: str
) -> None:
    """The events as the command service writes them and the relay publishes them."""
    tokens = Tokens(api_settings())
    holder = beneficiary_body(relationship="self", name="Ahmed Ali", phone="01012345609")
    card = created(
        await api.client.post(
            "/api/v1/medcards",
            json={
                "userId": "sms-user",
                "cardType": "gold",
                "monthlyLimit": 1000,
                "primaryHolder": holder,
            },
            headers=tokens.admin(),
        )
    )
    claim = created(
        await api.client.post(
            f"/api/v1/medcards/{card['id']}/claims/prescriptions",
            json={"prescriptionId": "rx-sms-1", "totalAmount": "1000.00"},
            headers=tokens.pharmacy(),
        )
    )
    covered = Decimal(claim["coveredAmount"])
    expected = "benefit_100" if covered >= 1000 else "benefit_80" if covered >= 800 else None
    assert expected is not None, claim  # the claim must cross a threshold for this test

    stop_relay = threading.Event()
    relay = Relay(postgres_url, KafkaPublisher(kafka_bootstrap, kafka_topic), idle_wait=0.01)
    relay_thread = threading.Thread(target=relay.run, args=(stop_relay,))
    relay_thread.start()
    try:
        with fake_cequens() as fake:
            notifier = _notifier(postgres_pool, fake, kafka_bootstrap, kafka_topic, "sms-e")
            await _run_until(notifier, lambda: len(fake.accepted()) >= 2)
    finally:
        stop_relay.set()
        relay_thread.join(30)
    rows = _rows(postgres_url)
    assert [(r[0], r[1], r[2], r[6]) for r in rows] == [
        ("+201012345609", expected, "sent", "ar"),
        ("+201012345609", "claim_receipt", "sent", "ar"),
    ]
    assert {r.body["recipients"] for r in fake.accepted()} == {"201012345609"}


class _GonePool:
    """A pool whose database is never there."""

    @asynccontextmanager
    async def connection(self, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        raise psycopg.OperationalError("connection refused")
        yield  # pragma: no cover


async def test_a_sender_out_of_outage_budget_ends_the_whole_notifier(
    kafka_bootstrap: str, kafka_topic: str
) -> None:
    """Kafka is there, PostgreSQL is not: the sender's outage ends `run` (the process exits
    for a restart) rather than leaving a consumer that stores nothing and sends nothing."""
    notifier = Notifier(
        cast(Pool, _GonePool()),
        DisabledSender(),
        kafka_bootstrap,
        kafka_topic,
        Decimal("50"),
        outage_budget_s=0.0,
        idle_seconds=0.01,
    )
    stop = asyncio.Event()
    run = asyncio.create_task(notifier.run(stop))
    await asyncio.wait({run}, timeout=WAIT_S)
    ended_by_itself = run.done()
    stop.set()
    if not ended_by_itself:
        await asyncio.gather(run, return_exceptions=True)
    assert ended_by_itself, "the consumer went on after its sender gave up"
    with pytest.raises(OutageTooLong, match="postgresql"):
        run.result()
