"""Benefit holds through the write API, on the in-memory store and on real PostgreSQL: place
(by card id and by printed number), count against the limit, capture by a claim, void,
expiry by the command's time, and who may touch a hold."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from command_service import http_endpoints
from tests.api.support import (
    API,
    OTHER_PHARMACY,
    Api,
    Headers,
    Tokens,
    assert_problem,
    claim,
    created,
    done,
    issue_card,
    refused,
)


async def hold(
    api: Api, headers: Headers, card_id: str, amount: str, rx: str = "rx-held", **extra: Any
) -> httpx.Response:
    return await api.client.post(
        f"{API}/medcards/{card_id}/holds",
        json={"amount": amount, "prescriptionId": rx, **extra},
        headers=headers,
    )


async def void(api: Api, headers: Headers, card_id: str, hold_id: str) -> httpx.Response:
    return await api.client.post(f"{API}/medcards/{card_id}/holds/{hold_id}/void", headers=headers)


async def test_a_hold_counts_against_the_limit_until_voided(api: Api, tokens: Tokens) -> None:
    card = await issue_card(api, tokens.admin(), "hold-1")  # gold: 5,000, 10 % copay
    placed = created(await hold(api, tokens.pharmacy(), card["id"], "4500.00"))
    assert (placed["status"], placed["amount"], placed["medcardId"]) == (
        "open",
        "4500.00",
        card["id"],
    )
    assert placed["eventType"] == "medcard.hold_placed"
    expires = datetime.fromisoformat(placed["expiresAt"])
    assert expires - datetime.fromisoformat(placed["placedAt"]) == timedelta(hours=72)
    partial = created(await claim(api, tokens.pharmacy(), card["id"], "rx-1", "1000.00"))
    assert (partial["decision"], partial["coveredAmount"]) == ("partially_approved", "500.00")
    await refused(
        api, hold(api, tokens.pharmacy(), card["id"], "0.01"), 409, "insufficient_benefit"
    )

    voided = done(await void(api, tokens.pharmacy(), card["id"], placed["holdId"]))
    assert (voided["status"], voided["amount"]) == ("voided", "4500.00")
    after = created(await claim(api, tokens.pharmacy(), card["id"], "rx-2", "1000.00"))
    assert after["coveredAmount"] == "900.00"
    await refused(
        api, void(api, tokens.pharmacy(), card["id"], placed["holdId"]), 409, "hold_voided"
    )
    stream = await api.stream(card["id"])
    types = [e.event_type for e in stream]
    assert types.count("medcard.hold_placed") == 1
    assert types.count("medcard.hold_voided") == 1
    placed_data = next(e.data for e in stream if e.event_type == "medcard.hold_placed")
    assert "postings" not in placed_data  # a hold moves no money


async def test_a_claim_captures_its_hold(api: Api, tokens: Tokens) -> None:
    card = await issue_card(api, tokens.admin(), "hold-2")
    placed = created(await hold(api, tokens.pharmacy(), card["id"], "3000.00", "rx-cap"))
    created(await hold(api, tokens.pharmacy(), card["id"], "2000.00", "rx-other"))
    answer = created(
        await claim(
            api, tokens.pharmacy(), card["id"], "rx-cap", "4000.00", holdId=placed["holdId"]
        )
    )
    # 3,600 after the copay; the other hold keeps its 2,000: the captured 3,000 is all
    assert (answer["decision"], answer["coveredAmount"]) == ("partially_approved", "3000.00")
    stream = await api.stream(card["id"])
    claim_event, captured = stream[-2], stream[-1]
    assert claim_event.event_type == "medcard.claim_adjudicated"
    assert captured.event_type == "medcard.hold_captured"
    assert captured.data["claim_id"] == answer["claimId"]
    assert (captured.data["amount"], captured.data["used_amount"]) == ("3000.00", "3000.00")
    # the same claim again replays, capturing nothing more
    again = await claim(
        api, tokens.pharmacy(), card["id"], "rx-cap", "4000.00", holdId=placed["holdId"]
    )
    assert again.status_code == 200
    assert again.json()["claimId"] == answer["claimId"]
    assert len(await api.stream(card["id"])) == len(stream)
    await refused(
        api, void(api, tokens.pharmacy(), card["id"], placed["holdId"]), 409, "hold_captured"
    )


async def test_another_pharmacy_may_neither_void_nor_capture(api: Api, tokens: Tokens) -> None:
    card = await issue_card(api, tokens.admin(), "hold-3")
    placed = created(await hold(api, tokens.pharmacy(), card["id"], "100.00", "rx-mine"))
    other = tokens.pharmacy(OTHER_PHARMACY)
    await refused(
        api, void(api, other, card["id"], placed["holdId"]), 403, "hold_of_another_pharmacy"
    )
    await refused(
        api,
        claim(api, other, card["id"], "rx-mine", "50.00", holdId=placed["holdId"]),
        403,
        "hold_of_another_pharmacy",
    )
    # staff may void any hold
    assert done(await void(api, tokens.ops(), card["id"], placed["holdId"]))["status"] == "voided"


async def test_unknown_holds_and_members(api: Api, tokens: Tokens) -> None:
    card = await issue_card(api, tokens.admin(), "hold-4")
    missing = "00000000-0000-4000-8000-000000000000"
    await refused(api, void(api, tokens.pharmacy(), card["id"], missing), 404, "hold_not_found")
    await refused(
        api,
        claim(api, tokens.pharmacy(), card["id"], "rx-x", "50.00", holdId=missing),
        404,
        "hold_not_found",
    )
    await refused(api, hold(api, tokens.member("hold-4"), card["id"], "1.00"), 403, "forbidden")


async def test_a_hold_expires_by_the_commands_time(
    api: Api, tokens: Tokens, monkeypatch: pytest.MonkeyPatch
) -> None:
    card = await issue_card(api, tokens.admin(), "hold-5")
    placed = created(
        await hold(api, tokens.pharmacy(), card["id"], "5000.00", "rx-exp", expiresInHours=1)
    )
    rejected = created(await claim(api, tokens.pharmacy(), card["id"], "rx-a", "10.00"))
    assert rejected["reasons"] == ["monthly_limit_exhausted"]
    later = datetime.fromisoformat(placed["expiresAt"]) + timedelta(seconds=1)

    class Later(datetime):
        @classmethod
        def now(cls, tz: Any = None) -> datetime:  # type: ignore[override]
            return datetime.fromtimestamp(later.timestamp(), tz or UTC)  # a plain datetime

    monkeypatch.setattr(http_endpoints, "datetime", Later)  # the command's time, an hour on
    covered = created(await claim(api, tokens.pharmacy(), card["id"], "rx-b", "10.00"))
    assert covered["decision"] == "approved"
    await refused(
        api, void(api, tokens.pharmacy(), card["id"], placed["holdId"]), 409, "hold_expired"
    )


async def test_a_hold_by_card_number(api: Api, tokens: Tokens) -> None:
    card = await issue_card(api, tokens.admin(), "hold-6")
    placed = created(
        await api.client.post(
            f"{API}/holds",
            json={"cardNumber": card["cardNumber"], "amount": "10.00", "prescriptionId": "rx-n"},
            headers=tokens.pharmacy(),
        )
    )
    assert placed["medcardId"] == card["id"]
    assert placed["pharmacyId"] == "pharmacy-1"
    unknown = await api.client.post(
        f"{API}/holds",
        json={"cardNumber": "6048000000000000", "amount": "10.00", "prescriptionId": "rx-n"},
        headers=tokens.pharmacy(),
    )
    assert_problem(unknown, 404, "card_not_found")


async def test_a_hold_is_idempotent(api: Api, tokens: Tokens) -> None:
    card = await issue_card(api, tokens.admin(), "hold-7")
    headers = {**tokens.pharmacy(), "Idempotency-Key": "hold-key-1"}
    first = created(await hold(api, headers, card["id"], "10.00"))
    second = await hold(api, headers, card["id"], "10.00")
    assert second.json()["holdId"] == first["holdId"]
    placed = [e for e in await api.stream(card["id"]) if e.event_type == "medcard.hold_placed"]
    assert len(placed) == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"prescriptionId": "rx"}, "amount"),
        ({"amount": "0", "prescriptionId": "rx"}, "amount"),
        ({"amount": "1.001", "prescriptionId": "rx"}, "amount"),
        ({"amount": "1.00"}, "prescriptionId"),
        ({"amount": "1.00", "prescriptionId": "rx", "expiresInHours": 0}, "expiresInHours"),
        ({"amount": "1.00", "prescriptionId": "rx", "expiresInHours": 721}, "expiresInHours"),
        ({"amount": "1.00", "prescriptionId": "rx", "expiresInHours": 1.5}, "expiresInHours"),
        ({"amount": "1.00", "prescriptionId": "rx", "beneficiaryId": "x"}, "beneficiaryId"),
    ],
)
async def test_bad_holds_are_422_naming_the_field(
    api: Api, tokens: Tokens, body: dict[str, Any], field: str
) -> None:
    card = await issue_card(api, tokens.admin(), "hold-8")
    send = api.client.post(
        f"{API}/medcards/{card['id']}/holds", json=body, headers=tokens.pharmacy()
    )
    problem = await refused(api, send, 422, "validation_failed")
    assert [e["field"] for e in problem["errors"]] == [field]


async def test_eligibility_reports_open_holds(api: Api, tokens: Tokens) -> None:
    card = await issue_card(api, tokens.admin(), "hold-9")
    placed = created(await hold(api, tokens.pharmacy(), card["id"], "4990.00", "rx-e"))

    async def check() -> dict[str, Any]:
        answer = await api.client.post(
            f"{API}/eligibility", json={"cardNumber": card["cardNumber"]}, headers=tokens.ops()
        )
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        return body

    checked = await check()
    assert (checked["heldAmount"], checked["remainingMonthlyLimit"]) == ("4990.00", "10.00")
    assert checked["covered"] is True
    (listed,) = checked["openHolds"]
    assert datetime.fromisoformat(listed.pop("expiresAt")) == datetime.fromisoformat(
        placed["expiresAt"]
    )
    assert listed == {"holdId": placed["holdId"], "pharmacyId": "pharmacy-1", "amount": "4990.00"}
    created(await hold(api, tokens.pharmacy(), card["id"], "10.00", "rx-f"))
    exhausted = await check()
    assert (exhausted["covered"], exhausted["reason"]) == (False, "monthly_limit_exhausted")
    assert exhausted["heldAmount"] == "5000.00"
