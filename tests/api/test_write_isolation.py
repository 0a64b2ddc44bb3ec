"""Failures of the event store at the HTTP edge, against the real PostgreSQL: a request the
store cannot hold fails alone (its neighbours in the same group commit are booked), and a
full group-commit queue answers 503 at once instead of queueing for ever."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any
from uuid import UUID

import httpx
import psycopg
import pytest
from pydantic import BaseModel
from starlette.requests import Request

from command_service import routes
from command_service.app import create_app
from command_service.http_endpoints import parse_body
from infrastructure.eventstore.port import AppendOutcome, AppendRequest, EventStore
from infrastructure.eventstore.postgres import PostgresEventStore
from infrastructure.postgres.pool import Pool, open_pool
from infrastructure.settings import Settings
from schemas.api.commands import ClaimBody
from tests.api.support import (
    API,
    PROBLEM_JSON,
    Ping,
    Tokens,
    api_settings,
    assert_problem,
    claim,
    issue_card,
)
from tests.api.support import Api as RunningApi

pytestmark = pytest.mark.integration


class ObservedStore(PostgresEventStore):
    """The real store, remembering each batch's aggregates, and able to hold commits back."""

    def __init__(self, pool: Pool) -> None:
        super().__init__(pool)
        self.batches: list[set[UUID]] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.entered = asyncio.Event()  # an append_batch is waiting at the shut gate

    async def append_batch(self, requests: Sequence[AppendRequest]) -> list[AppendOutcome]:
        self.batches.append({s.aggregate_id for r in requests for s in r.streams})
        if not self.gate.is_set():
            self.entered.set()
            await self.gate.wait()
        await asyncio.sleep(0.005)  # a commit takes a while: others gather meanwhile
        return await super().append_batch(requests)


@asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[tuple[RunningApi, ObservedStore]]:
    stores: list[ObservedStore] = []

    @asynccontextmanager
    async def observed(s: Settings) -> AsyncIterator[tuple[EventStore, Ping]]:
        pool = await open_pool(s.postgres_url, s.pool_min_size, s.pool_max_size)
        stores.append(ObservedStore(pool))

        async def ping() -> bool:
            return True

        try:
            yield stores[0], ping
        finally:
            await pool.close()

    app = create_app(settings, observed)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://command.test") as client:
            yield RunningApi("postgres", app, client, settings.postgres_url), stores[0]


async def stored_prescriptions(url: str) -> list[str]:
    async with await psycopg.AsyncConnection.connect(url) as conn:
        cur = await conn.execute(
            "SELECT event_data->>'prescription_id' FROM events"
            " WHERE event_type = 'medcard.claim_adjudicated' ORDER BY position"
        )
        return [row[0] for row in await cur.fetchall()]


Answer = asyncio.Task[httpx.Response]


async def first_done(tasks: Sequence[Answer], count: int) -> tuple[set[Answer], set[Answer]]:
    """The first `count` of `tasks` to finish, and the others (which may still run)."""
    done: set[Answer] = set()
    pending = set(tasks)
    async with asyncio.timeout(30):  # only so that a missing bound fails instead of hanging
        while len(done) < count:
            finished, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            done |= finished
    return done, pending


POISON = "poison-"


@pytest.fixture
def validation_with_a_hole(monkeypatch: pytest.MonkeyPatch) -> None:
    """Claims whose prescription id starts with POISON get past validation with a NUL in it,
    which PostgreSQL cannot hold in jsonb: a stand-in for a validation rule that misses
    something the event store refuses."""

    async def leaky(request: Request, model: type[BaseModel], *, optional: bool = False) -> Any:
        body, raw = await parse_body(request, model, optional=optional)
        if isinstance(body, ClaimBody) and body.prescription_id.startswith(POISON):
            body = body.model_copy(update={"prescription_id": body.prescription_id + "\x00"})
        return body, raw

    monkeypatch.setattr(routes, "parse_body", leaky)


@pytest.mark.usefixtures("validation_with_a_hole")
async def test_poisoned_claims_fail_alone_among_50_good_ones(
    postgres_url: str, tokens: Tokens, caplog: pytest.LogCaptureFixture
) -> None:
    async with running(api_settings(postgres_url)) as (api, store):
        cards = [(await issue_card(api, tokens.admin(), f"member-{i}"))["id"] for i in range(56)]
        good = [(card, f"rx-good-{i}") for i, card in enumerate(cards[:50])]
        bad = [(card, f"{POISON}{i}") for i, card in enumerate(cards[50:])]
        sends = [(card, rx) for card, rx in good]
        for index, item in enumerate(bad):  # spread among the good ones
            sends.insert(9 * index + 4, item)
        with caplog.at_level(logging.ERROR):
            answers = await asyncio.gather(
                *(claim(api, tokens.pharmacy(), card, rx, "100.00") for card, rx in sends)
            )
        by_prescription = {rx: answer for (_, rx), answer in zip(sends, answers, strict=True)}
        for _, rx in good:
            assert by_prescription[rx].status_code == 201, by_prescription[rx].text
        for _, rx in bad:
            problem = assert_problem(by_prescription[rx], 500, "write_not_storable")
            assert "retry-after" not in by_prescription[rx].headers
            assert "not" in problem["detail"]
        # They really shared group commits with good claims.
        poisoned_cards = {UUID(card) for card, _ in bad}
        mixed = [b for b in store.batches if b & poisoned_cards and b - poisoned_cards]
        assert mixed, [len(b) for b in store.batches]
        # Every good claim is stored once; nothing of the poisoned ones is.
        assert sorted(await stored_prescriptions(postgres_url)) == sorted(rx for _, rx in good)
        logged = [r for r in caplog.records if r.levelno >= logging.ERROR]
        assert len(logged) == len(bad), [r.getMessage() for r in logged]
        # A refused claim left its card as it was: the next claim on it is booked.
        card = bad[0][0]
        again = await claim(api, tokens.pharmacy(), card, "rx-after-poison", "100.00")
        assert again.status_code == 201, again.text
        assert again.json()["remainingMonthlyLimit"] == "4910.00"


async def test_a_full_commit_queue_answers_503_at_once(postgres_url: str, tokens: Tokens) -> None:
    settings = api_settings(postgres_url, group_commit_max_queue=2)
    async with running(settings) as (api, store):
        cards = [(await issue_card(api, tokens.admin(), f"member-{i}"))["id"] for i in range(8)]
        store.gate.clear()  # the event store stops confirming
        try:
            first = asyncio.ensure_future(
                claim(api, tokens.pharmacy(), cards[0], "rx-q-0", "10.00")
            )
            await asyncio.wait_for(store.entered.wait(), timeout=30)
            rest = [
                asyncio.ensure_future(claim(api, tokens.pharmacy(), card, f"rx-q-{i}", "10.00"))
                for i, card in enumerate(cards[1:], start=1)
            ]
            # Two of the seven find room in the queue; five are answered while the store is
            # still stalled.
            done, waiting = await first_done(rest, 5)
            await asyncio.sleep(0.05)
            assert not any(task.done() for task in waiting)  # held at the shut gate
            for task in done:
                response = task.result()
                assert_problem(response, 503, "write_queue_full")
                assert response.headers["retry-after"] == "1"
                assert response.headers["content-type"] == PROBLEM_JSON
        finally:
            store.gate.set()
        booked = [await first] + [await task for task in waiting]
        assert [r.status_code for r in booked] == [201, 201, 201]
        assert len(await stored_prescriptions(postgres_url)) == 3
        # Nothing of a refused claim was written: sent again, it is booked.
        refused_card = next(iter(set(cards[1:]) - {r.json()["medcardId"] for r in booked}))
        retry = await api.client.post(
            f"{API}/medcards/{refused_card}/claims/prescriptions",
            json={"prescriptionId": "rx-q-retry", "totalAmount": "10.00"},
            headers=tokens.pharmacy(),
        )
        assert retry.status_code == 201, retry.text
