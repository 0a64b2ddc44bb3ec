"""MedCards through the API: issuing, terms overrides, lifecycle, beneficiaries."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from domain.identity import luhn_valid
from tests.api.support import (
    API,
    Api,
    Tokens,
    beneficiary_body,
    created,
    done,
    issue_card,
    refused,
)


async def test_issue_card_answers_with_the_card_and_stores_one_event(
    api: Api, tokens: Tokens
) -> None:
    card = await issue_card(api, tokens.admin(), "test-user-1", monthlyLimit=5000)
    assert card["userId"] == "test-user-1"
    assert card["cardType"] == "gold"
    assert card["status"] == "ACTIVE"
    assert card["monthlyLimit"] == "5000.00"
    assert card["copaymentPercentage"] == "10.00"
    assert card["currency"] == "EGP"
    assert len(card["cardNumber"]) == 16
    assert luhn_valid(card["cardNumber"])
    assert card["version"] == 1
    stored = await api.events()
    assert [(e.aggregate_id, e.aggregate_type, e.event_type, e.version) for e in stored] == [
        (uuid.UUID(card["id"]), "medcard", "medcard.issued", 1)
    ]
    assert stored[0].position == card["position"]
    assert stored[0].metadata["actor"] == {"role": "admin", "sub": "admin-1"}


async def test_card_type_is_case_insensitive_and_unknown_types_are_refused(
    api: Api, tokens: Tokens
) -> None:
    card = await issue_card(api, tokens.admin(), "u-1", card_type="PLATINUM")
    assert (card["cardType"], card["monthlyLimit"]) == ("platinum", "10000.00")
    await refused(
        api,
        api.client.post(
            f"{API}/medcards", json={"userId": "u-1", "cardType": "diamond"}, headers=tokens.admin()
        ),
        422,
        "unknown_card_type",
    )


async def test_only_admin_may_override_card_terms(api: Api, tokens: Tokens) -> None:
    for override in ({"monthlyLimit": "6000.00"}, {"copaymentPercentage": "5"}):
        await refused(
            api,
            api.client.post(
                f"{API}/medcards",
                json={"userId": "u-ops", "cardType": "gold", **override},
                headers=tokens.ops(),
            ),
            403,
            "terms_override_forbidden",
        )
    by_ops = await issue_card(api, tokens.ops(), "u-ops")
    assert (by_ops["cardType"], by_ops["monthlyLimit"]) == ("gold", "5000.00")
    # Restating the type's own default is not an override.
    same = await issue_card(api, tokens.ops(), "u-ops-2", monthlyLimit="5000.00")
    assert same["monthlyLimit"] == "5000.00"
    by_admin = await issue_card(
        api, tokens.admin(), "u-admin", monthlyLimit="6000.00", copaymentPercentage="15.5"
    )
    assert (by_admin["monthlyLimit"], by_admin["copaymentPercentage"]) == ("6000.00", "15.50")
    assert await api.event_count() == 3


async def test_lifecycle_transitions_and_invalid_ones(api: Api, tokens: Tokens) -> None:
    admin = tokens.admin()
    card = await issue_card(api, admin, "u-life", status="PENDING")
    assert card["status"] == "PENDING"
    card_id = card["id"]

    async def act(action: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        return done(
            await api.client.post(f"{API}/medcards/{card_id}/{action}", json=body, headers=admin)
        )

    positions = [card["position"]]
    for action, body, status in [
        ("activate", None, "ACTIVE"),
        ("suspend", {"reason": "lost card"}, "SUSPENDED"),
        ("reactivate", {}, "ACTIVE"),
    ]:
        answer = await act(action, body)
        assert answer["status"] == status
        positions.append(answer["position"])
    renewed = await act("renew")
    assert renewed["expiryDate"] > renewed["previousExpiryDate"]
    positions.append(renewed["position"])
    assert positions == sorted(positions)
    assert len(set(positions)) == len(positions)

    for action in ("activate", "reactivate"):
        await refused(
            api,
            api.client.post(f"{API}/medcards/{card_id}/{action}", headers=admin),
            409,
            "invalid_status_transition",
        )
    await refused(
        api,
        api.client.post(f"{API}/medcards/{card_id}/expire", headers=admin),
        409,
        "card_not_yet_expired",
    )
    cancelled = await act("cancel", {"reason": "member left"})
    assert cancelled["status"] == "CANCELLED"
    for action in ("activate", "suspend", "reactivate", "cancel", "renew", "expire"):
        await refused(
            api,
            api.client.post(f"{API}/medcards/{card_id}/{action}", headers=admin),
            409,
            "invalid_status_transition",
        )
    stream = await api.stream(card_id)
    assert [e.event_type for e in stream] == [
        "medcard.issued",
        "medcard.activated",
        "medcard.suspended",
        "medcard.reactivated",
        "medcard.renewed",
        "medcard.cancelled",
    ]
    assert [e.version for e in stream] == [1, 2, 3, 4, 5, 6]
    assert stream[2].data.get("reason") == "lost card"


async def test_beneficiaries_add_and_remove(api: Api, tokens: Tokens) -> None:
    card = await issue_card(api, tokens.admin(), "u-family")
    card_id = card["id"]
    response = await api.client.post(
        f"{API}/medcards/{card_id}/beneficiaries",
        json=beneficiary_body(date(2012, 3, 9), relationship="child", phone="+20 112 345 6789"),
        headers=tokens.member("u-family"),
    )
    added = done(response)
    assert added["medcardId"] == card_id
    assert added["nationalId"] == "31203090100123"
    assert added["dateOfBirth"] == "2012-03-09"
    assert added["phoneNumber"] == "+201123456789"
    assert added["relationship"] == "child"
    assert added["version"] == 2

    # The same person twice is refused; so is the primary holder's removal.
    await refused(
        api,
        api.client.post(
            f"{API}/medcards/{card_id}/beneficiaries",
            json=beneficiary_body(date(2012, 3, 9), relationship="child", name="Again"),
            headers=tokens.admin(),
        ),
        409,
        "beneficiary_already_on_card",
    )
    await refused(
        api,
        api.client.delete(
            f"{API}/medcards/{card_id}/beneficiaries/{card['primaryHolder']['id']}",
            headers=tokens.admin(),
        ),
        409,
        "primary_holder_not_removable",
    )

    removed = done(
        await api.client.delete(
            f"{API}/medcards/{card_id}/beneficiaries/{added['id']}", headers=tokens.ops()
        )
    )
    assert removed == {
        **{k: removed[k] for k in ("eventType", "version", "position")},
        "medcardId": card_id,
        "id": added["id"],
        "removed": True,
    }
    assert removed["eventType"] == "medcard.beneficiary_removed"
    await refused(
        api,
        api.client.delete(
            f"{API}/medcards/{card_id}/beneficiaries/{added['id']}", headers=tokens.ops()
        ),
        404,
        "beneficiary_not_found",
    )
    assert [e.event_type for e in await api.stream(card_id)] == [
        "medcard.issued",
        "medcard.beneficiary_added",
        "medcard.beneficiary_removed",
    ]


async def test_beneficiary_identity_is_checked(api: Api, tokens: Tokens) -> None:
    card = await issue_card(api, tokens.admin(), "u-id")
    url = f"{API}/medcards/{card['id']}/beneficiaries"
    good = beneficiary_body(date(1990, 1, 15))
    bad_cases = [
        ({**good, "dateOfBirth": "1990-01-16"}, "national_id_birth_date_mismatch"),
        ({**good, "nationalId": "19001150100123"}, "invalid_national_id"),  # century digit 1
        ({**good, "nationalId": "29013150100123"}, "invalid_national_id"),  # month 13
        ({**good, "nationalId": "29001159900123"}, "invalid_national_id"),  # governorate 99
        ({**good, "nationalId": "2900115010012"}, "invalid_national_id"),  # 13 digits
        ({**good, "nationalId": "2900115010012X"}, "invalid_national_id"),
        ({**good, "phoneNumber": "0221234567"}, "invalid_phone_number"),  # a landline
        ({**good, "phoneNumber": "01312345678"}, "invalid_phone_number"),  # no such operator
        ({**good, "relationship": "cousin"}, "invalid_relationship"),
    ]
    for body, code in bad_cases:
        problem = await refused(
            api, api.client.post(url, json=body, headers=tokens.admin()), 422, code
        )
        # National ids and phone numbers are never echoed back.
        assert body["nationalId"] not in str(problem)
        assert body["phoneNumber"] not in str(problem)
    created_beneficiary = await api.client.post(url, json=good, headers=tokens.admin())
    assert created_beneficiary.status_code in (200, 201)


async def test_card_claimable_right_after_issue_with_holder(api: Api, tokens: Tokens) -> None:
    holder = beneficiary_body(date(1985, 7, 1), relationship="self", name="Ahmed Hassan")
    card = await issue_card(api, tokens.admin(), "u-holder", primaryHolder=holder)
    assert card["primaryHolder"]["nationalId"] == holder["nationalId"]
    assert card["primaryHolder"]["phoneNumber"] == "+201012345678"
    claimed = created(
        await api.client.post(
            f"{API}/medcards/{card['id']}/claims/prescriptions",
            json={"prescriptionId": "rx-h", "totalAmount": "100.00"},
            headers=tokens.pharmacy(),
        )
    )
    assert claimed["beneficiaryId"] == card["primaryHolder"]["id"]
    assert claimed["decision"] == "approved"


async def test_adding_a_beneficiary_answers_201_created(api: Api, tokens: Tokens) -> None:
    """It creates a resource with a new id, like issuing a card or opening a wallet (201);
    200 is what the API answers a replay with (OpenAPI: '200: an identical earlier request's
    answer, replayed')."""
    card = await issue_card(api, tokens.admin(), "u-201")
    response = await api.client.post(
        f"{API}/medcards/{card['id']}/beneficiaries",
        json=beneficiary_body(),
        headers=tokens.admin(),
    )
    assert response.status_code == 201, (response.status_code, response.text)
    assert response.json()["eventType"] == "medcard.beneficiary_added"
