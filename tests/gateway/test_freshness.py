"""Read-your-writes: minPosition (or X-Min-Position) waits, bounded, until the read model of
the stream being read reaches the position; every answer says how fresh it is."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import psycopg
import pytest

from tests.api.support import API, Tokens, assert_problem, claim, created, issue_card, top_up
from tests.gateway.conftest import WAIT_SECONDS, Gateway

pytestmark = pytest.mark.integration


async def test_a_position_already_reached_answers_at_once(gateway: Gateway, tokens: Tokens) -> None:
    url = f"{API}/medcards/{gateway.world.family_card}"
    plain = await gateway.client.get(url, headers=tokens.admin())
    position = int(plain.headers["x-projection-position"])
    started = time.monotonic()
    fresh = await gateway.client.get(f"{url}?minPosition={position}", headers=tokens.admin())
    assert fresh.status_code == 200
    assert int(fresh.headers["x-projection-position"]) == position
    assert time.monotonic() - started < 0.5


async def test_a_read_waits_for_a_new_claim_to_be_projected(
    gateway: Gateway, tokens: Tokens
) -> None:
    card_id = gateway.world.family_card
    written = created(await claim(gateway.api, tokens.pharmacy(), card_id, "rx-fresh", "10.00"))
    position = written["position"]

    async def project_later() -> None:
        await asyncio.sleep(0.3)
        await gateway.project_new()

    later = asyncio.create_task(project_later())
    started = time.monotonic()
    response = await gateway.client.get(
        f"{API}/claims/{written['claimId']}?minPosition={position}", headers=tokens.pharmacy()
    )
    waited = time.monotonic() - started
    await later
    assert response.status_code == 200, response.text
    assert response.json()["prescriptionId"] == "rx-fresh"
    assert int(response.headers["x-projection-position"]) >= position
    assert 0.25 < waited < WAIT_SECONDS


async def test_a_new_card_is_waited_for_through_the_header_too(
    gateway: Gateway, tokens: Tokens
) -> None:
    card = await issue_card(gateway.api, tokens.admin(), "member-new")
    url = f"{API}/medcards/{card['id']}"
    # not projected yet: without minPosition the read model honestly has no such card
    assert_problem(await gateway.client.get(url, headers=tokens.ops()), 404, "card_not_found")

    async def project_later() -> None:
        await asyncio.sleep(0.2)
        await gateway.project_new()

    later = asyncio.create_task(project_later())
    response = await gateway.client.get(
        url, headers=tokens.member("member-new") | {"X-Min-Position": str(card["position"])}
    )
    await later
    assert response.status_code == 200, response.text
    assert response.json()["userId"] == "member-new"
    assert int(response.headers["x-projection-position"]) == card["position"]


@pytest.mark.parametrize(
    "route", ["/medcards/{card}", "/medcards/{card}/claims", "/wallets/{wallet}/transactions"]
)
async def test_a_position_that_never_arrives_is_a_504_problem_within_the_bound(
    gateway: Gateway, tokens: Tokens, route: str
) -> None:
    url = API + route.format(card=gateway.world.capped_card, wallet=gateway.world.wallet_b)
    started = time.monotonic()
    response = await gateway.client.get(f"{url}?minPosition=999999999", headers=tokens.ops())
    waited = time.monotonic() - started
    body = assert_problem(response, 504, "projection_behind")
    assert "999999999" in body["detail"]
    assert response.headers["retry-after"] == "1"
    assert WAIT_SECONDS <= waited < WAIT_SECONDS + 1.0


MISSING = "00000000-0000-4000-8000-000000000000"


async def _timed_get(gateway: Gateway, url: str, headers: dict[str, str]) -> tuple[Any, float]:
    started = time.monotonic()
    response = await gateway.client.get(url, headers=headers)
    return response, time.monotonic() - started


@pytest.mark.parametrize("route", ["/medcards/{id}", "/medcards/{id}/claims", "/wallets/{id}"])
async def test_position_zero_never_waits_even_for_a_missing_card_or_wallet(
    gateway: Gateway, tokens: Tokens, route: str
) -> None:
    response, waited = await _timed_get(
        gateway, f"{API}{route.format(id=MISSING)}?minPosition=0", tokens.admin()
    )
    assert response.status_code == 404, response.text
    assert waited < WAIT_SECONDS / 2


@pytest.mark.parametrize("route", ["/medcards/{id}", "/wallets/{id}/transactions"])
async def test_a_missing_card_or_wallet_at_a_written_position_is_404_at_once(
    gateway: Gateway, tokens: Tokens, route: str
) -> None:
    """Every position up to the newest is written and projected: an id with no event up to
    it names nothing, now and at that position."""
    position = await gateway.project_new()
    response, waited = await _timed_get(
        gateway, f"{API}{route.format(id=MISSING)}?minPosition={position}", tokens.ops()
    )
    assert response.status_code == 404, response.text
    assert waited < WAIT_SECONDS / 2


async def test_anothers_card_and_a_missing_one_answer_alike_and_at_once(
    gateway: Gateway, tokens: Tokens
) -> None:
    """'Not yours' and 'not there' settle alike (the watcher asks nothing of the owner), so
    neither the answer nor its timing tells a member which ids exist."""
    position = await gateway.project_new()
    member = tokens.member("member-a")
    theirs, waited_theirs = await _timed_get(
        gateway, f"{API}/medcards/{gateway.world.capped_card}?minPosition={position}", member
    )
    missing, waited_missing = await _timed_get(
        gateway, f"{API}/medcards/{MISSING}?minPosition={position}", member
    )
    assert_problem(theirs, 404, "card_not_found")
    assert_problem(missing, 404, "card_not_found")
    assert theirs.json()["detail"] == missing.json()["detail"]
    assert max(waited_theirs, waited_missing) < WAIT_SECONDS / 2


async def test_a_position_written_on_another_stream_is_reflected_once_projected(
    gateway: Gateway, tokens: Tokens
) -> None:
    """A wallet's top-up position, asked of a card: the card has no event after its own last
    one, so the read reflects that position as soon as it is projected, however far the card's
    own position is behind it."""
    world = gateway.world
    written = created(await top_up(gateway.api, tokens.ops(), world.wallet_b, "1.00", "fr-x"))
    await gateway.project_new()
    response, waited = await _timed_get(
        gateway,
        f"{API}/medcards/{world.lifecycle_card}?minPosition={written['position']}",
        tokens.admin(),
    )
    assert response.status_code == 200, response.text
    assert int(response.headers["x-projection-position"]) < written["position"]
    assert waited < WAIT_SECONDS / 2


async def test_a_card_written_but_not_projected_is_waited_for_never_refused_at_once(
    gateway: Gateway, tokens: Tokens
) -> None:
    """Its issue event is written, so the card is on its way: no early 404. Still absent
    after the bound, it is not found (an absent object is never a 504)."""
    card = await issue_card(gateway.api, tokens.admin(), "member-unprojected")
    response, waited = await _timed_get(
        gateway, f"{API}/medcards/{card['id']}?minPosition={card['position']}", tokens.admin()
    )
    assert_problem(response, 404, "card_not_found")
    assert waited >= WAIT_SECONDS
    await gateway.project_new()


async def test_waiting_reads_share_one_watcher(
    gateway: Gateway, tokens: Tokens, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Twenty reads wait for one write: one poller asks for all of them together, instead of
    each read polling on a connection of its own."""
    statements: list[str] = []
    original = psycopg.AsyncCursor.execute

    async def counting(self: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
        statements.append(str(query))
        return await original(self, query, *args, **kwargs)

    card = gateway.world.family_card
    written = created(await claim(gateway.api, tokens.pharmacy(), card, "rx-shared", "5.00"))
    monkeypatch.setattr(psycopg.AsyncCursor, "execute", counting)

    async def project_later() -> None:
        await asyncio.sleep(0.4)
        await gateway.project_new()

    later = asyncio.create_task(project_later())
    url = f"{API}/medcards/{card}?minPosition={written['position']}"
    started = time.monotonic()
    answers = await asyncio.gather(
        *(gateway.client.get(url, headers=tokens.admin()) for _ in range(20))
    )
    elapsed = time.monotonic() - started
    await later
    assert [a.status_code for a in answers] == [200] * 20
    assert all(int(a.headers["x-projection-position"]) >= written["position"] for a in answers)
    # what asks whether a stream reached a position (the old per-read poll, or the watcher)
    polls = [q for q in statements if "projection_streams" in q or "SELECT last_position" in q]
    # One watcher polls about once per 0.05 s (the projection's own statements count too, and
    # a loaded box stretches them); twenty readers polling alone would be ~20 times that.
    assert 1 <= len(polls) <= 2 * elapsed / 0.05 + 5, len(polls)


async def test_a_bad_min_position_is_a_400_problem(gateway: Gateway, tokens: Tokens) -> None:
    cases: list[tuple[dict[str, str], str]] = [
        ({}, f"?minPosition={bad}")
        for bad in ("abc", "-1", "1.5", str(2**63), "%00", "", "%E0%A5%AF")
    ]
    cases += [({"X-Min-Position": bad}, "") for bad in ("1e3", "-0", "7\x01")]
    for headers, query in cases:
        response = await gateway.client.get(
            f"{API}/wallets/{gateway.world.wallet_a}{query}", headers=tokens.admin() | headers
        )
        assert_problem(response, 400, "invalid_min_position")
