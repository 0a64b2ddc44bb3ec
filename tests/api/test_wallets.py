"""Wallets through the API: open, top up (idempotent by gateway reference), debit."""

from __future__ import annotations

from uuid import UUID

from tests.api.support import API, Api, Tokens, created, open_wallet, refused, top_up


async def test_open_top_up_and_debit(api: Api, tokens: Tokens) -> None:
    wallet = await open_wallet(api, tokens.ops(), "w-user")
    assert (wallet["ownerUserId"], wallet["balance"], wallet["currency"]) == (
        "w-user",
        "0.00",
        "EGP",
    )
    await refused(
        api,
        api.client.post(f"{API}/wallets", json={"userId": "w-user"}, headers=tokens.admin()),
        409,
        "wallet_exists",
    )
    topped = created(await top_up(api, tokens.ops(), wallet["id"], "200.00", "pm-1", "Paymob"))
    assert (topped["type"], topped["amount"], topped["balance"]) == ("topup", "200.00", "200.00")
    assert (topped["gateway"], topped["gatewayReference"]) == ("paymob", "pm-1")

    debit_url = f"{API}/wallets/{wallet['id']}/debits"
    member = tokens.member("w-user")
    await refused(
        api,
        api.client.post(debit_url, json={"amount": "200.01", "reference": "o-1"}, headers=member),
        409,
        "insufficient_funds",
    )
    debited = created(
        await api.client.post(
            debit_url, json={"amount": "50.00", "reference": "o-1"}, headers=member
        )
    )
    assert (debited["type"], debited["amount"], debited["balance"]) == ("debit", "50.00", "150.00")
    assert debited["purpose"] == "purchase"
    # Draining the wallet exactly is fine; one piastre more is not.
    created(
        await api.client.post(
            debit_url, json={"amount": "150.00", "reference": "o-2"}, headers=member
        )
    )
    await refused(
        api,
        api.client.post(debit_url, json={"amount": "0.01", "reference": "o-3"}, headers=member),
        409,
        "insufficient_funds",
    )
    stream = await api.stream(wallet["id"])
    assert [(e.event_type, e.version) for e in stream] == [
        ("wallet.opened", 1),
        ("wallet.topped_up", 2),
        ("wallet.debited", 3),
        ("wallet.debited", 4),
    ]
    assert all(e.aggregate_type == "wallet" for e in stream)


async def test_top_up_is_idempotent_by_gateway_reference(api: Api, tokens: Tokens) -> None:
    wallet = await open_wallet(api, tokens.ops(), "w-ref")
    first = created(await top_up(api, tokens.ops(), wallet["id"], "500.00", "FWR-123"))
    count = await api.event_count()

    again = await top_up(api, tokens.admin(), wallet["id"], "500.00", "FWR-123")
    assert again.status_code == 200, again.text
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json()["transactionId"] == first["transactionId"]
    assert again.json()["position"] == first["position"]
    assert again.json()["balance"] == "500.00"
    assert await api.event_count() == count

    await refused(
        api,
        top_up(api, tokens.ops(), wallet["id"], "600.00", "FWR-123"),
        409,
        "duplicate_gateway_reference",
    )
    # The same reference at the other gateway is another payment.
    other = created(await top_up(api, tokens.ops(), wallet["id"], "600.00", "FWR-123", "paymob"))
    assert other["balance"] == "1100.00"
    await refused(
        api,
        top_up(api, tokens.ops(), wallet["id"], "1.00", "V-1", "vodafone-cash"),
        422,
        "unknown_gateway",
    )


async def test_gateway_callback_retried_with_a_new_idempotency_key_replays(
    api: Api, tokens: Tokens
) -> None:
    """Idempotency by gateway reference must not depend on the caller reusing its key."""
    wallet = await open_wallet(api, tokens.ops(), "w-ref-key")
    ops = tokens.ops()
    first = created(
        await top_up(api, {**ops, "Idempotency-Key": "cb-1"}, wallet["id"], "75.00", "FWR-9")
    )
    again = await top_up(api, {**ops, "Idempotency-Key": "cb-2"}, wallet["id"], "75.00", "FWR-9")
    assert again.status_code == 200, (again.status_code, again.text)
    assert again.json()["transactionId"] == first["transactionId"]
    assert [e.event_type for e in await api.stream(wallet["id"])] == [
        "wallet.opened",
        "wallet.topped_up",
    ]


async def test_a_top_up_keeps_the_gateways_payment_time_in_utc_and_a_retry_keeps_the_first(
    api: Api, tokens: Tokens
) -> None:
    wallet = await open_wallet(api, tokens.ops(), "w-paid-at")
    url = f"{API}/wallets/{wallet['id']}/topups"

    def body(paid_at: object) -> dict[str, object]:
        return {
            "gateway": "fawry",
            "gatewayReference": "FWR-T",
            "amount": "10.00",
            "paidAt": paid_at,
        }

    first = created(
        await api.client.post(url, json=body("2026-12-01T11:00:00+02:00"), headers=tokens.ops())
    )
    assert first["paidAt"] == "2026-12-01T09:00:00+00:00"
    # The gateway retries its callback with another time: the same payment, replayed.
    again = await api.client.post(url, json=body("2026-12-01T09:05:00Z"), headers=tokens.ops())
    assert again.status_code == 200, again.text
    assert (again.json()["transactionId"], again.json()["paidAt"]) == (
        first["transactionId"],
        first["paidAt"],
    )
    [_, topped] = await api.store.read_stream(UUID(wallet["id"]))
    assert (topped.schema_version, topped.data["paid_at"]) == (2, "2026-12-01T09:00:00Z")
    without = created(await top_up(api, tokens.ops(), wallet["id"], "5.00", "FWR-U"))
    assert without["paidAt"] is None
    # A time without its offset says nothing certain: refused at the edge.
    problem = await refused(
        api,
        api.client.post(url, json=body("2026-12-01T11:00:00"), headers=tokens.ops()),
        422,
        "validation_failed",
    )
    assert [e["field"] for e in problem["errors"]] == ["paidAt"]


async def test_debit_is_idempotent_by_reference(api: Api, tokens: Tokens) -> None:
    wallet = await open_wallet(api, tokens.ops(), "w-deb")
    created(await top_up(api, tokens.ops(), wallet["id"], "100.00", "F-1"))
    url = f"{API}/wallets/{wallet['id']}/debits"
    first = created(
        await api.client.post(
            url, json={"amount": "40.00", "reference": "r-1"}, headers=tokens.admin()
        )
    )
    again = await api.client.post(
        url, json={"amount": "40.00", "reference": "r-1"}, headers=tokens.admin()
    )
    assert again.status_code == 200, again.text
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json()["transactionId"] == first["transactionId"]
    await refused(
        api,
        api.client.post(url, json={"amount": "41.00", "reference": "r-1"}, headers=tokens.admin()),
        409,
        "duplicate_debit_reference",
    )
    assert len(await api.stream(wallet["id"])) == 3
