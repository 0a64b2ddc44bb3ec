"""Uniqueness decided at write time (issue 9), through the API, on both event stores.

A gateway reference credits one wallet, ever; card numbers are unique even when the
generator repeats itself; and "one charge per prescription" holds for a prescription older
than the card's in-memory window of claims. The stores are checked directly: the events,
and for PostgreSQL the `reservations` rows.
"""

from __future__ import annotations

from collections.abc import Iterator
from random import Random
from uuid import UUID

import psycopg
import pytest

from command_service.aggregates import MEDCARD
from domain.identity import new_card_number
from domain.medcard import state as card_state
from domain.uniqueness import gateway_reference_key, prescription_key
from tests.api.conftest import BACKENDS
from tests.api.support import (
    API,
    Api,
    Backend,
    Tokens,
    assert_problem,
    claim,
    created,
    done,
    issue_card,
    open_wallet,
    refused,
    repeat_of,
    running_api,
    set_copay_consent,
    top_up,
)


async def reservation_rows(api: Api, scope: str) -> list[tuple[str, str]] | None:
    """(key, event_id) of every reservation in the scope; None on the in-memory store."""
    if api.postgres_url is None:
        return None
    async with await psycopg.AsyncConnection.connect(api.postgres_url) as conn:
        cur = await conn.execute(
            "SELECT key, event_id::text FROM reservations WHERE scope = %s ORDER BY key", (scope,)
        )
        return [(row[0], row[1]) for row in await cur.fetchall()]


async def event_ids(api: Api, aggregate_id: str, event_type: str) -> list[str]:
    async with await psycopg.AsyncConnection.connect(api.postgres_url or "") as conn:
        cur = await conn.execute(
            "SELECT event_id::text FROM events WHERE aggregate_id = %s AND event_type = %s"
            " ORDER BY version",
            (aggregate_id, event_type),
        )
        return [row[0] for row in await cur.fetchall()]


async def test_a_gateway_reference_credits_one_wallet(api: Api, tokens: Tokens) -> None:
    ops = tokens.ops()
    first = await open_wallet(api, ops, "member-ref-a")
    second = await open_wallet(api, ops, "member-ref-b")
    credited = created(await top_up(api, ops, first["id"], "100.00", "FWR-77"))
    body = await refused(
        api, top_up(api, ops, second["id"], "100.00", "FWR-77"), 409, "gateway_reference_taken"
    )
    assert "another wallet" in body["detail"]
    # Another amount on the other wallet is refused just the same.
    await refused(
        api, top_up(api, ops, second["id"], "5.00", "FWR-77"), 409, "gateway_reference_taken"
    )
    # The first wallet's retry still replays, and the other gateway's FWR-77 is another payment.
    again = await top_up(api, tokens.admin(), first["id"], "100.00", "FWR-77")
    assert again.status_code == 200, again.text
    assert again.json()["position"] == credited["position"]
    created(await top_up(api, ops, second["id"], "100.00", "FWR-77", "paymob"))

    topups = [
        (e.aggregate_id, e.data["gateway"])
        for e in await api.events()
        if e.event_type == "wallet.topped_up" and e.data["gateway_reference"] == "FWR-77"
    ]
    assert topups == [(UUID(first["id"]), "fawry"), (UUID(second["id"]), "paymob")]
    holder = await api.store.reserved_by(*gateway_reference_key("fawry", "FWR-77"))
    assert holder is not None
    assert str(holder.aggregate_id) == first["id"]
    rows = await reservation_rows(api, "gateway_reference")
    if rows is not None:
        [fawry] = await event_ids(api, first["id"], "wallet.topped_up")
        [paymob] = await event_ids(api, second["id"], "wallet.topped_up")
        assert rows == [("5:fawryFWR-77", fawry), ("6:paymobFWR-77", paymob)]


def repeating(*numbers: str) -> Iterator[str]:
    """The given numbers, then the last one forever: a generator that keeps colliding."""
    yield from numbers
    while True:
        yield numbers[-1]


@pytest.mark.parametrize("backend", BACKENDS)
async def test_a_card_number_drawn_twice_issues_two_cards_with_distinct_numbers(
    backend: Backend, tokens: Tokens, request: pytest.FixtureRequest
) -> None:
    taken, free = new_card_number(Random(1)), new_card_number(Random(2))
    draws = repeating(taken, taken, free, free)
    url = request.getfixturevalue("postgres_url") if backend == "postgres" else None
    async with running_api(backend, url, card_numbers=lambda: next(draws)) as api:
        first = await issue_card(api, tokens.admin(), "member-n1")
        second = await issue_card(api, tokens.admin(), "member-n2")
        assert (first["cardNumber"], second["cardNumber"]) == (taken, free)
        # A generator that only repeats a taken number: refused after a few draws, no card.
        third = await api.client.post(
            f"{API}/medcards",
            json={"userId": "member-n3", "cardType": "gold"},
            headers=tokens.admin(),
        )
        assert_problem(third, 503, "card_number_unavailable")
        issued = [e for e in await api.events() if e.event_type == "medcard.issued"]
        assert [e.data["card_number"] for e in issued] == [taken, free]
        rows = await reservation_rows(api, "card_number")
        if rows is not None:
            assert [key for key, _ in rows] == sorted([taken, free])


async def test_the_prescription_rule_holds_beyond_the_cards_window(
    api: Api, tokens: Tokens, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(card_state, "CLAIM_WINDOW", 2)
    pharmacy = tokens.pharmacy()
    card = await issue_card(api, tokens.admin(), "member-old-rx", monthlyLimit="100000")
    wallet = await open_wallet(api, tokens.ops(), "member-old-rx")
    created(await top_up(api, tokens.ops(), wallet["id"], "500.00", "FWR-old-rx"))
    member = tokens.member("member-old-rx")
    done(await set_copay_consent(api, member, wallet["id"], "100.00", "400.00"))
    old_body = {"payCopaymentFromWallet": True}
    old = created(await claim(api, pharmacy, card["id"], "rx-old", "200.00", **old_body))
    assert old["copaymentPaidFromWallet"] == old["copaymentAmount"] != "0.00"
    for n in range(3):  # pushes rx-old out of the card's window of 2
        created(await claim(api, pharmacy, card["id"], f"rx-new-{n}", "10.00"))
    aggregates = api.app.state.write_side.executor.aggregates
    loaded = await aggregates.load(MEDCARD, UUID(card["id"]))
    assert loaded.state is not None
    assert loaded.state.charge_of("rx-old") is card_state.BEYOND_WINDOW

    retry = await claim(api, pharmacy, card["id"], "rx-old", "200.00", **old_body)
    assert retry.status_code == 200, retry.text
    assert retry.headers["idempotent-replayed"] == "true"
    assert retry.json() == repeat_of(old)
    await refused(
        api, claim(api, pharmacy, card["id"], "rx-old", "250.00"), 409, "duplicate_prescription"
    )
    # On a suspended card a retry of the charged prescription still replays: no rejection.
    done(await api.client.post(f"{API}/medcards/{card['id']}/suspend", headers=tokens.ops()))
    count = await api.event_count()
    suspended = await claim(api, pharmacy, card["id"], "rx-old", "200.00", **old_body)
    assert (suspended.status_code, suspended.json()) == (200, repeat_of(old))
    assert await api.event_count() == count
    done(await api.client.post(f"{API}/medcards/{card['id']}/reactivate", headers=tokens.ops()))

    # Reversing the old claim (found in the card's stream) refunds the wallet and frees rx-old.
    reversal = await api.client.post(
        f"{API}/medcards/{card['id']}/claims/{old['claimId']}/reversal", json={}, headers=pharmacy
    )
    assert reversal.status_code in (200, 201), reversal.text
    assert reversal.json()["walletRefund"] == old["copaymentAmount"]
    again = await api.client.post(
        f"{API}/medcards/{card['id']}/claims/{old['claimId']}/reversal", json={}, headers=pharmacy
    )
    assert_problem(again, 409, "claim_already_reversed")
    anew = created(await claim(api, pharmacy, card["id"], "rx-old", "250.00"))
    assert anew["claimId"] != old["claimId"]

    holder = await api.store.reserved_by(*prescription_key(UUID(card["id"]), "rx-old"))
    assert holder is not None
    assert holder.data["claim_id"] == anew["claimId"]
    stream = await api.stream(card["id"])
    charged = [e.data["claim_id"] for e in stream if e.event_type == "medcard.claim_adjudicated"]
    assert charged.count(old["claimId"]) == 1
    assert [e.data["claim_id"] for e in stream if e.data.get("prescription_id") == "rx-old"] == [
        old["claimId"],
        old["claimId"],  # its reversal
        anew["claimId"],
    ]
