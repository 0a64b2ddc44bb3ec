"""The Idempotency-Key header (docs/design.md §7): replay, reuse, scoping, concurrency."""

from __future__ import annotations

import asyncio

import httpx

from tests.api.support import (
    API,
    Api,
    Headers,
    StoredEvent,
    Tokens,
    assert_problem,
    claim,
    created,
    done,
    issue_card,
    open_wallet,
    refused,
    repeat_of,
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


# A pharmacy chain's branches may share one `sub` in their tokens: each branch is still its own
# caller, so one branch's key never answers (or blocks) the other's claim (issue 9).
CHAIN_USER = "chain-user"


def _claims_stored(events: list[StoredEvent]) -> list[tuple[str, str]]:
    return [
        (e.data["pharmacy_id"], e.data["prescription_id"])
        for e in events
        if e.event_type == "medcard.claim_adjudicated"
    ]


async def test_one_sub_at_two_pharmacies_books_two_claims_with_one_key(
    api: Api, tokens: Tokens
) -> None:
    card = await issue_card(api, tokens.admin(), "chain-member")
    branch_a = keyed(tokens.pharmacy("branch-a", sub=CHAIN_USER), "till-1")
    branch_b = keyed(tokens.pharmacy("branch-b", sub=CHAIN_USER), "till-1")

    first = done(await claim(api, branch_a, card["id"], "rx-a-1", "100.00"))
    second = done(await claim(api, branch_b, card["id"], "rx-b-1", "40.00"))

    assert first["claimId"] != second["claimId"]
    assert _claims_stored(await api.events()) == [("branch-a", "rx-a-1"), ("branch-b", "rx-b-1")]
    rows = await api.idempotency_rows()
    if rows is not None:  # PostgreSQL: one row per branch, each in its own scope
        assert rows == [
            (f"pharmacy@branch-a:{CHAIN_USER}", "till-1"),
            (f"pharmacy@branch-b:{CHAIN_USER}", "till-1"),
        ]
    # ... and each branch's key replays its own answer
    for headers, prescription, total, original in (
        (branch_a, "rx-a-1", "100.00", first),
        (branch_b, "rx-b-1", "40.00", second),
    ):
        again = await claim(api, headers, card["id"], prescription, total)
        assert again.headers["idempotent-replayed"] == "true"
        assert again.json() == repeat_of(original)
    assert len(_claims_stored(await api.events())) == 2


async def test_another_branch_is_never_answered_with_this_branchs_claim(
    api: Api, tokens: Tokens
) -> None:
    card = await issue_card(api, tokens.admin(), "chain-member-2")
    branch_a = keyed(tokens.pharmacy("branch-a", sub=CHAIN_USER), "till-2")
    branch_b = keyed(tokens.pharmacy("branch-b", sub=CHAIN_USER), "till-2")
    created(await claim(api, branch_a, card["id"], "rx-shared", "100.00"))
    # The same request from branch B is its own claim of a prescription that branch A already
    # charged: the card's one-charge-per-prescription rule answers, not A's stored answer.
    await refused(
        api,
        claim(api, branch_b, card["id"], "rx-shared", "100.00"),
        409,
        "duplicate_prescription",
    )
    assert _claims_stored(await api.events()) == [("branch-a", "rx-shared")]


async def test_an_admin_posting_for_a_pharmacy_has_its_own_scope(api: Api, tokens: Tokens) -> None:
    card = await issue_card(api, tokens.admin(), "chain-member-3")
    for pharmacy in (None, "branch-a", "branch-b"):
        headers = keyed(tokens.admin("support-1", pharmacy_id=pharmacy), "till-3")
        done(await claim(api, headers, card["id"], f"rx-{pharmacy}", "10.00"))
    assert [p for p, _ in _claims_stored(await api.events())] == [
        "admin:support-1",
        "branch-a",
        "branch-b",
    ]


async def test_a_repeated_claim_replays_200_under_its_own_key_too(api: Api, tokens: Tokens) -> None:
    """The same prescription again is answered 200 (the first claim's answer); sending that
    second request again with its Idempotency-Key (its answer was lost) must say the same,
    not the 201 of a claim made now (found by `make chaos`)."""
    card = await issue_card(api, tokens.admin(), "idem-repeat")
    pharmacy = tokens.pharmacy()
    first = created(await claim(api, pharmacy, card["id"], "rx-idem-repeat", "120.00"))
    headers = keyed(pharmacy, "repeat-key")
    repeat = await claim(api, headers, card["id"], "rx-idem-repeat", "120.00")
    assert repeat.status_code == 200, repeat.text
    retried = await claim(api, headers, card["id"], "rx-idem-repeat", "120.00")
    assert retried.status_code == 200, retried.text
    assert retried.headers["idempotent-replayed"] == "true"
    assert retried.json()["claimId"] == repeat.json()["claimId"] == first["claimId"]
