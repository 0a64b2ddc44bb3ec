"""Refill too soon and refill overrides through the API, on both event stores
(domain/medcard/refills.py)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import pytest

from domain.calendar import cairo_date
from domain.medcard.refills import REFILL_TOO_SOON
from tests.api.support import (
    API,
    Api,
    Headers,
    Tokens,
    assert_problem,
    claim,
    created,
    done,
    issue_card,
    refused,
    running_api,
)


def supply(drug: str = "ATOR-20", days: int | None = 30) -> list[dict[str, Any]]:
    item: dict[str, Any] = {
        "drugCode": drug,
        "drugName": "Atorvastatin 20 mg",
        "quantity": 1,
        "unitPrice": "90.00",
    }
    if days is not None:
        item["daysSupply"] = days
    return [item]


async def fill(api: Api, tokens: Tokens, card_id: str, rx: str, **extra: Any) -> dict[str, Any]:
    return created(
        await claim(api, tokens.pharmacy(), card_id, rx, "90.00", items=supply(), **extra)
    )


async def grant(api: Api, headers: Headers, card_id: str, **body: Any) -> dict[str, Any]:
    response = await api.client.post(
        f"{API}/medcards/{card_id}/refill-overrides",
        json={"drugCode": "ATOR-20", "reason": "pack lost in transit", **body},
        headers=headers,
    )
    return created(response)


def filled_on(answer: dict[str, Any]) -> date:
    return cairo_date(datetime.fromisoformat(answer["claimedAt"]))


async def test_a_refill_too_soon_is_rejected_with_the_next_fill_date(
    api: Api, tokens: Tokens
) -> None:
    card = await issue_card(api, tokens.admin(), "u-refill")
    first = await fill(api, tokens, card["id"], "rx-refill-1")
    assert first["decision"] == "approved"
    assert first["items"][0]["daysSupply"] == 30
    assert first["nextAvailableFillDate"] is None

    early = await fill(api, tokens, card["id"], "rx-refill-2")
    assert early["decision"] == "rejected"
    assert early["reasons"] == [REFILL_TOO_SOON]
    assert early["coveredAmount"] == "0.00"
    # 30 days x 0.75 = 22.5: the 23rd day after the fill
    assert early["nextAvailableFillDate"] == (filled_on(first) + timedelta(days=23)).isoformat()

    [stored] = [
        e for e in await api.stream(card["id"]) if e.data.get("claim_id") == early["claimId"]
    ]
    assert stored.data["next_available_fill_date"] == early["nextAvailableFillDate"]
    assert stored.data["reasons"] == [REFILL_TOO_SOON]
    assert stored.data["items"][0]["days_supply"] == 30


@pytest.mark.integration
async def test_the_share_is_the_deployments_setting(postgres_url: str, tokens: Tokens) -> None:
    async with running_api("postgres", postgres_url, refill_min_elapsed_share="0.5") as api:
        card = await issue_card(api, tokens.admin(), "u-refill-share")
        first = await fill(api, tokens, card["id"], "rx-share-1")
        early = await fill(api, tokens, card["id"], "rx-share-2")
    assert early["nextAvailableFillDate"] == (filled_on(first) + timedelta(days=15)).isoformat()


async def test_an_override_lets_exactly_one_refill_through(api: Api, tokens: Tokens) -> None:
    card = await issue_card(api, tokens.admin(), "u-refill-override")
    await fill(api, tokens, card["id"], "rx-over-1")
    granted = await grant(api, tokens.ops(), card["id"])
    assert granted["eventType"] == "medcard.refill_override_granted"
    assert granted["beneficiaryId"] == card["primaryHolder"]["id"]
    assert granted["validUntil"] is None
    assert granted["grantedBy"] == "ops:ops-1"

    through = await fill(api, tokens, card["id"], "rx-over-2")
    assert through["decision"] == "approved"
    again = await fill(api, tokens, card["id"], "rx-over-3")
    assert again["reasons"] == [REFILL_TOO_SOON]

    stored = {e.data.get("prescription_id"): e for e in await api.stream(card["id"])}
    assert stored["rx-over-2"].data["refill_overrides_used"] == [granted["id"]]
    assert stored["rx-over-3"].data["refill_overrides_used"] == []


async def test_a_reversed_fill_does_not_block(api: Api, tokens: Tokens) -> None:
    card = await issue_card(api, tokens.admin(), "u-refill-reversed")
    first = await fill(api, tokens, card["id"], "rx-rev-1")
    done(
        await api.client.post(
            f"{API}/medcards/{card['id']}/claims/{first['claimId']}/reversal",
            json={"reason": "dispensed in error"},
            headers=tokens.admin(),
        )
    )
    assert (await fill(api, tokens, card["id"], "rx-rev-2"))["decision"] == "approved"


@pytest.mark.integration
async def test_a_cold_service_knows_the_last_fill(postgres_url: str, tokens: Tokens) -> None:
    async with running_api("postgres", postgres_url) as api:
        card = await issue_card(api, tokens.admin(), "u-refill-cold")
        first = await fill(api, tokens, card["id"], "rx-cold-1")
    async with running_api("postgres", postgres_url) as restarted:  # an empty cache
        early = await fill(restarted, tokens, card["id"], "rx-cold-2")
    assert early["reasons"] == [REFILL_TOO_SOON]
    assert early["nextAvailableFillDate"] == (filled_on(first) + timedelta(days=23)).isoformat()


async def test_an_override_is_refused_for_another_card_or_a_past_day(
    api: Api, tokens: Tokens
) -> None:
    card = await issue_card(api, tokens.admin(), "u-refill-refused")
    other = await issue_card(api, tokens.admin(), "u-refill-other")
    url = f"{API}/medcards/{card['id']}/refill-overrides"
    stranger = {"drugCode": "D-1", "reason": "x", "beneficiaryId": other["primaryHolder"]["id"]}
    await refused(
        api,
        api.client.post(url, json=stranger, headers=tokens.ops()),
        422,
        "beneficiary_not_on_card",
    )
    past = {"drugCode": "D-1", "reason": "x", "validUntil": "2020-01-01"}
    await refused(
        api, api.client.post(url, json=past, headers=tokens.ops()), 422, "invalid_valid_until"
    )
    assert_problem(
        await api.client.post(url, json={"drugCode": "D-1"}, headers=tokens.admin()),
        422,
        "validation_failed",
    )
