"""The Idempotency-Key header (docs/design.md §7): replay, reuse, scoping, concurrency."""

from __future__ import annotations

import asyncio

import httpx

from tests.api.support import (
    API,
    Api,
    Headers,
    Tokens,
    assert_problem,
    created,
    issue_card,
    open_wallet,
    refused,
)

CARD = {"userId": "idem-user", "cardType": "gold"}


def keyed(headers: Headers, key: str) -> Headers:
    return {**headers, "Idempotency-Key": key}


async def issue(api: Api, headers: Headers, body: dict[str, str] = CARD) -> httpx.Response:
    return await api.client.post(f"{API}/medcards", json=body, headers=headers)


async def test_same_key_same_body_replays_the_answer_and_stores_nothing(
    api: Api, tokens: Tokens
) -> None:
    headers = keyed(tokens.admin(), "key-1")
    first = await issue(api, headers)
    original = created(first)
    assert "idempotent-replayed" not in first.headers
    before = await api.events()
    records = await api.idempotency_record_count()

    again = await issue(api, headers)
    assert again.status_code == 201, again.text
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == original  # same id, card number, version and position
    assert await api.events() == before
    assert await api.idempotency_record_count() == records
    assert [e.metadata.get("idempotency_key") for e in before] == ["key-1"]


async def test_same_key_other_body_is_422(api: Api, tokens: Tokens) -> None:
    headers = keyed(tokens.admin(), "key-2")
    created(await issue(api, headers))
    await refused(
        api, issue(api, headers, {**CARD, "cardType": "silver"}), 422, "idempotency_key_reused"
    )
    # The same key on another endpoint is another request as well.
    await refused(
        api,
        api.client.post(f"{API}/wallets", json={"userId": "idem-user"}, headers=headers),
        422,
        "idempotency_key_reused",
    )


async def test_keys_are_scoped_per_caller(api: Api, tokens: Tokens) -> None:
    mine = created(await issue(api, keyed(tokens.admin("admin-1"), "shared-key")))
    theirs = created(await issue(api, keyed(tokens.admin("admin-2"), "shared-key")))
    by_ops = created(await issue(api, keyed(tokens.ops("admin-1"), "shared-key")))
    assert len({mine["id"], theirs["id"], by_ops["id"]}) == 3
    assert await api.event_count() == 3
    # ... and each caller's key still replays its own answer.
    again = await issue(api, keyed(tokens.admin("admin-2"), "shared-key"))
    assert again.json()["id"] == theirs["id"]


async def test_a_refused_command_does_not_use_up_the_key(api: Api, tokens: Tokens) -> None:
    wallet = await open_wallet(api, tokens.ops(), "idem-wallet")
    headers = keyed(tokens.admin(), "debit-1")
    url = f"{API}/wallets/{wallet['id']}/debits"
    body = {"amount": "10.00", "reference": "order-1"}
    await refused(api, api.client.post(url, json=body, headers=headers), 409, "insufficient_funds")
    created(
        await api.client.post(
            f"{API}/wallets/{wallet['id']}/topups",
            json={"gateway": "fawry", "gatewayReference": "f-1", "amount": "10.00"},
            headers=tokens.ops(),
        )
    )
    debited = created(await api.client.post(url, json=body, headers=headers))
    assert debited["balance"] == "0.00"


async def test_key_length_is_checked(api: Api, tokens: Tokens) -> None:
    await refused(api, issue(api, keyed(tokens.admin(), "k" * 256)), 400, "invalid_idempotency_key")
    created(await issue(api, keyed(tokens.admin(), "k" * 255)))


async def test_concurrent_duplicates_write_once(api: Api, tokens: Tokens) -> None:
    headers = keyed(tokens.admin(), "race-1")
    responses = await asyncio.gather(*(issue(api, headers) for _ in range(2)))

    stored = await api.events()
    assert [e.event_type for e in stored] == ["medcard.issued"], stored
    card_id = str(stored[0].aggregate_id)
    for response in responses:
        if response.status_code == 409:
            assert_problem(response, 409, "idempotency_key_in_use")
        else:
            assert response.status_code == 201, response.text
            assert response.json()["id"] == card_id
    assert (
        sum("idempotent-replayed" not in r.headers and r.status_code == 201 for r in responses) == 1
    )


async def test_concurrent_claims_with_one_key_write_once(api: Api, tokens: Tokens) -> None:
    card = await issue_card(api, tokens.admin(), "race-user")
    headers = keyed(tokens.pharmacy(), "race-claim")
    body = {"prescriptionId": "rx-race", "totalAmount": "100.00"}
    url = f"{API}/medcards/{card['id']}/claims/prescriptions"
    responses = await asyncio.gather(
        *(api.client.post(url, json=body, headers=headers) for _ in range(5))
    )
    claims = [e for e in await api.events() if e.event_type == "medcard.claim_adjudicated"]
    assert len(claims) == 1
    answered = {r.json()["claimId"] for r in responses if r.status_code in (200, 201)}
    assert answered == {claims[0].data["claim_id"]}
    for response in responses:
        if response.status_code == 409:
            assert_problem(response, 409, "idempotency_key_in_use")
        else:
            assert response.status_code in (200, 201), response.text
