"""Read-your-writes over GraphQL: `minPosition` on medcard, medcardByNumber, claim and wallet
waits (bounded) for the projection, before the request's one snapshot is taken; every card,
wallet and claim read by id says how fresh it is (`projectionPosition`)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from tests.api.support import (
    API,
    Headers,
    Tokens,
    assert_problem,
    claim,
    created,
    issue_card,
    top_up,
)
from tests.gateway.conftest import WAIT_SECONDS, Gateway
from tests.gateway.test_freshness import MISSING
from tests.gateway.test_graphql import codes, gql

pytestmark = pytest.mark.integration

SEED_CARD = """
query($id: ID!, $p: Long) {
  medcard(id: $id, minPosition: $p) {
    currentMonthSpent remainingThisMonth projectionPosition
    claims(first: 5) { edges { node { prescriptionId coveredAmount copaymentAmount } } }
  }
}"""


async def _later(action: Callable[[], Awaitable[Any]], delay: float = 0.3) -> asyncio.Task[Any]:
    async def run() -> Any:
        await asyncio.sleep(delay)
        return await action()

    return asyncio.create_task(run())


async def _timed(gw: Gateway, headers: Headers, query: str, **variables: Any) -> Any:
    started = time.monotonic()
    body = await gql(gw, headers, query, **variables)
    return body, time.monotonic() - started


async def test_the_seed_flow_then_graphql_with_the_claims_position(
    gateway: Gateway, tokens: Tokens
) -> None:
    """The seed's curl flow (issue a gold card, claim 350.00), then the member's GraphQL query
    with the claim answer's position: it waits for the projection and shows the claim, the
    spent amount and the remaining benefit."""
    card = await issue_card(gateway.api, tokens.admin(), "fresh-seed", monthlyLimit=5000)
    await gateway.project_new()
    answer = created(await claim(gateway.api, tokens.pharmacy(), card["id"], "rx-fresh-1", "350"))
    later = await _later(gateway.project_new)

    body, waited = await _timed(
        gateway, tokens.member("fresh-seed"), SEED_CARD, id=card["id"], p=answer["position"]
    )
    await later
    assert "errors" not in body, body
    got = body["data"]["medcard"]
    assert (got["currentMonthSpent"], got["remainingThisMonth"]) == ("315.00", "4685.00")
    [edge] = got["claims"]["edges"]
    assert edge["node"] == {
        "prescriptionId": "rx-fresh-1",
        "coveredAmount": "315.00",
        "copaymentAmount": "35.00",
    }
    assert got["projectionPosition"] >= answer["position"]
    assert 0.25 < waited < WAIT_SECONDS

    # without the position, the same query a moment after the write is honestly stale
    again = created(await claim(gateway.api, tokens.pharmacy(), card["id"], "rx-fresh-2", "10"))
    stale = await gql(gateway, tokens.member("fresh-seed"), SEED_CARD, id=card["id"])
    assert stale["data"]["medcard"]["currentMonthSpent"] == "315.00"
    assert stale["data"]["medcard"]["projectionPosition"] < again["position"]
    await gateway.project_new()


async def test_every_root_field_of_the_request_sees_the_awaited_write(
    gateway: Gateway, tokens: Tokens
) -> None:
    """One root field waits; the other (no minPosition) reads the same, later snapshot."""
    world = gateway.world
    written = created(await top_up(gateway.api, tokens.ops(), world.wallet_b, "5.00", "fr-1"))
    later = await _later(gateway.project_new)
    query = """query($w: ID!, $c: ID!, $p: Long!) {
      wallet(id: $w, minPosition: $p) { balance projectionPosition }
      ...Card
    }
    fragment Card on Query { medcard(id: $c) { userId } plain: wallet(id: $w) { balance } }"""
    body, _ = await _timed(
        gateway, tokens.ops(), query, w=world.wallet_b, c=world.capped_card, p=written["position"]
    )
    await later
    assert "errors" not in body, body
    assert body["data"]["wallet"]["balance"] == written["balance"]
    assert body["data"]["plain"]["balance"] == written["balance"]
    assert body["data"]["wallet"]["projectionPosition"] == written["position"]


async def test_a_claim_by_id_and_a_card_by_number_wait_too(
    gateway: Gateway, tokens: Tokens
) -> None:
    card = await issue_card(gateway.api, tokens.admin(), "fresh-number")
    await gateway.project_new()
    written = created(await claim(gateway.api, tokens.pharmacy(), card["id"], "rx-fn", "20.00"))
    later = await _later(gateway.project_new)
    query = """query($c: ID!, $n: String!, $p: Long!) {
      claim(id: $c, minPosition: $p) { prescriptionId projectionPosition }
      medcardByNumber(cardNumber: $n, minPosition: $p) { currentMonthSpent }
    }"""
    body, _ = await _timed(
        gateway,
        tokens.admin(),
        query,
        c=written["claimId"],
        n=card["cardNumber"],
        p=written["position"],
    )
    await later
    assert "errors" not in body, body
    assert body["data"]["claim"]["prescriptionId"] == "rx-fn"
    assert body["data"]["claim"]["projectionPosition"] >= written["position"]
    assert body["data"]["medcardByNumber"]["currentMonthSpent"] != "0.00"


async def test_a_position_that_never_arrives_nulls_only_its_field_within_the_bound(
    gateway: Gateway, tokens: Tokens
) -> None:
    query = """query($c: ID!, $w: ID!) {
      medcard(id: $c, minPosition: 999999999) { id }
      wallet(id: $w) { id }
    }"""
    body, waited = await _timed(
        gateway, tokens.ops(), query, c=gateway.world.capped_card, w=gateway.world.wallet_b
    )
    assert body["data"] == {"medcard": None, "wallet": {"id": gateway.world.wallet_b}}
    assert codes(body) == ["PROJECTION_BEHIND"]
    [error] = body["errors"]
    assert error["extensions"]["minPosition"] == 999999999
    assert error["extensions"]["position"] < 999999999
    assert WAIT_SECONDS <= waited < WAIT_SECONDS + 1.0


async def test_anothers_card_and_a_missing_one_are_not_found_alike_and_at_once(
    gateway: Gateway, tokens: Tokens
) -> None:
    position = await gateway.project_new()
    query = "query($c: ID!, $p: Long) { medcard(id: $c, minPosition: $p) { id } }"
    member = tokens.member("member-a")
    theirs, waited_theirs = await _timed(
        gateway, member, query, c=gateway.world.capped_card, p=position
    )
    missing, waited_missing = await _timed(gateway, member, query, c=MISSING, p=position)
    assert (theirs["data"], codes(theirs)) == ({"medcard": None}, ["NOT_FOUND"])
    assert (missing["data"], codes(missing)) == ({"medcard": None}, ["NOT_FOUND"])
    assert theirs["errors"][0]["message"] == missing["errors"][0]["message"]
    # the watcher asks nothing of the owner: neither waits, so timing tells nothing either
    assert max(waited_theirs, waited_missing) < WAIT_SECONDS / 2


async def test_position_zero_and_a_written_position_never_wait_for_a_missing_object(
    gateway: Gateway, tokens: Tokens
) -> None:
    position = await gateway.project_new()
    query = """query($m: ID!, $z: Long, $p: Long) {
      zero: medcard(id: $m, minPosition: $z) { id }
      card: medcard(id: $m, minPosition: $p) { id }
      wallet(id: $m, minPosition: $p) { id }
    }"""
    body, waited = await _timed(gateway, tokens.ops(), query, m=MISSING, z=0, p=position)
    assert body["data"] == {"zero": None, "card": None, "wallet": None}
    assert codes(body) == ["NOT_FOUND"] * 3
    assert waited < WAIT_SECONDS / 2


async def test_a_position_written_on_another_stream_answers_the_field(
    gateway: Gateway, tokens: Tokens
) -> None:
    world = gateway.world
    written = created(await top_up(gateway.api, tokens.ops(), world.wallet_a, "1.00", "fr-gq"))
    await gateway.project_new()
    query = "query($c: ID!, $p: Long) { medcard(id: $c, minPosition: $p) { projectionPosition } }"
    body, waited = await _timed(
        gateway, tokens.admin(), query, c=world.lifecycle_card, p=written["position"]
    )
    assert "errors" not in body, body
    assert body["data"]["medcard"]["projectionPosition"] < written["position"]
    assert waited < WAIT_SECONDS / 2


@pytest.mark.parametrize("bad", ["-1", '"12"', "1.5", "true", "9223372036854775808"])
async def test_a_bad_min_position_is_refused_before_anything_runs(
    gateway: Gateway, tokens: Tokens, bad: str
) -> None:
    literal = f'{{ medcard(id: "{gateway.world.family_card}", minPosition: {bad}) {{ id }} }}'
    variable = "query($c: ID!, $p: Long) { medcard(id: $c, minPosition: $p) { id } }"
    for body in (
        await gql(gateway, tokens.admin(), literal),  # 400: gql checks it
        await gql(
            gateway, tokens.admin(), variable, c=gateway.world.family_card, p=json.loads(bad)
        ),
    ):
        assert body.get("data") is None
        assert body["errors"]
        assert all(e["message"] != "Unexpected error." for e in body["errors"]), body


async def test_the_rest_read_and_graphql_report_the_same_position(
    gateway: Gateway, tokens: Tokens
) -> None:
    card = gateway.world.family_card
    rest = await gateway.client.get(f"{API}/medcards/{card}", headers=tokens.admin())
    body = await gql(
        gateway, tokens.admin(), "query($c: ID!) { medcard(id: $c) { projectionPosition } }", c=card
    )
    assert body["data"]["medcard"]["projectionPosition"] == int(
        rest.headers["x-projection-position"]
    )


async def test_any_spelling_of_an_id_waits_like_the_canonical_one(
    gateway: Gateway, tokens: Tokens
) -> None:
    """The watcher asks for every waiting read in one statement: an id spelled another way
    (a URN, braces) must not fail that statement for the reads waiting with it."""
    position = await gateway.project_new()
    card = gateway.world.family_card
    query = "query($c: ID!, $p: Long) { medcard(id: $c, minPosition: $p) { id } }"
    answers = await asyncio.gather(
        gql(gateway, tokens.admin(), query, c=f"urn:uuid:{card}", p=position),
        gql(gateway, tokens.admin(), query, c="{" + card.upper() + "}", p=position),
        gql(gateway, tokens.admin(), query, c=card, p=position),
        gql(gateway, tokens.admin(), query, c="12345678123456781234567812345678", p=position),
    )
    assert [a["data"]["medcard"]["id"] for a in answers[:3]] == [card] * 3, answers
    assert codes(answers[3]) == ["NOT_FOUND"]


async def test_a_failed_poll_fails_only_its_waiters_and_the_watcher_recovers(
    gateway: Gateway, tokens: Tokens, monkeypatch: pytest.MonkeyPatch
) -> None:
    watermarks = gateway.app.state.read_side.watermarks

    async def broken(*_: Any) -> None:
        raise OSError("the poll's connection broke")

    monkeypatch.setattr(watermarks, "_poll", broken)
    card = gateway.world.capped_card
    rest = await gateway.client.get(
        f"{API}/medcards/{card}?minPosition=999999999", headers=tokens.ops()
    )
    assert_problem(rest, 500, "internal_error")
    query = "query($c: ID!) { medcard(id: $c, minPosition: 999999999) { id } me { role } }"
    body = await gql(gateway, tokens.ops(), query, c=card)  # 200: the fields ran
    assert body["data"] == {"medcard": None, "me": {"role": "ops"}}
    assert codes(body) == ["PROJECTION_BEHIND"]

    monkeypatch.undo()
    position = await gateway.project_new()
    again = await gateway.client.get(
        f"{API}/medcards/{MISSING}?minPosition={position}", headers=tokens.ops()
    )
    assert_problem(again, 404, "card_not_found")
