"""Read-your-writes: minPosition (or X-Min-Position) waits, bounded, until the read model of
the stream being read reaches the position; every answer says how fresh it is."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.api.support import API, Tokens, assert_problem, claim, created, issue_card
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


async def test_waiting_on_anothers_card_looks_the_same_as_waiting_on_a_missing_one(
    gateway: Gateway, tokens: Tokens
) -> None:
    """With minPosition, 'not yours' and 'not there' both wait out the bound and are then not
    found (a 504 would call a missing card late): the answer must not tell a member which ids
    exist."""
    theirs = await gateway.client.get(
        f"{API}/medcards/{gateway.world.capped_card}?minPosition=1",
        headers=tokens.member("member-a"),
    )
    missing = await gateway.client.get(
        f"{API}/medcards/00000000-0000-4000-8000-000000000000?minPosition=1",
        headers=tokens.member("member-a"),
    )
    assert_problem(theirs, 404, "card_not_found")
    assert_problem(missing, 404, "card_not_found")
    assert theirs.json()["detail"] == missing.json()["detail"]


async def test_a_bad_min_position_is_a_400_problem(gateway: Gateway, tokens: Tokens) -> None:
    for headers, query in (({}, "?minPosition=abc"), ({"X-Min-Position": "1e3"}, "")):
        response = await gateway.client.get(
            f"{API}/wallets/{gateway.world.wallet_a}{query}", headers=tokens.admin() | headers
        )
        assert_problem(response, 400, "invalid_min_position")
