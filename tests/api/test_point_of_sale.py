"""A pharmacy's point of sale through the write API: claims by the card's printed number, and
quotes (`mode: quote`), on the in-memory store and on real PostgreSQL.

The number -> card look-up reads the event store's reservations (written with the card's
`medcard.issued`), so a card issued by another process is found at once.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from domain.identity import luhn_check_digit
from tests.api.support import (
    API,
    Api,
    Tokens,
    beneficiary_body,
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

BY_NUMBER = f"{API}/claims/prescriptions"
# What differs between two answers to the same claim decided twice: the new claim's id, its
# time and where (whether) it was stored.
PER_DECISION = ("claimId", "claimedAt", "position", "version", "mode")


async def by_number(api: Api, headers: dict[str, str], **body: Any) -> Any:
    return await api.client.post(BY_NUMBER, json=body, headers=headers)


def _same_decision(a: dict[str, Any], b: dict[str, Any]) -> None:
    def strip(answer: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in answer.items() if k not in PER_DECISION}

    assert strip(a) == strip(b)


async def test_a_claim_by_card_number_is_the_card_id_routes_claim(api: Api, tokens: Tokens) -> None:
    card = await issue_card(api, tokens.admin(), "pos-1", monthlyLimit=5000)
    answer = created(
        await by_number(
            api,
            tokens.pharmacy(),
            cardNumber=card["cardNumber"],
            prescriptionId="rx-pos-1",
            totalAmount="350.00",
        )
    )
    assert answer["medcardId"] == card["id"]
    assert (answer["decision"], answer["coveredAmount"], answer["copaymentAmount"]) == (
        "approved",
        "315.00",
        "35.00",
    )
    assert answer["remainingMonthlyLimit"] == "4685.00"
    assert "mode" not in answer
    stored = await api.stream(card["id"])
    assert [(e.event_type, e.version) for e in stored] == [
        ("medcard.issued", 1),
        ("medcard.claim_adjudicated", 2),
    ]
    assert stored[1].position == answer["position"]
    assert stored[1].data["claim_id"] == answer["claimId"]

    # The same claim again, by number or by card id: the first answer, nothing new stored.
    again = await by_number(
        api,
        tokens.pharmacy(),
        cardNumber=card["cardNumber"],
        prescriptionId="rx-pos-1",
        totalAmount=350,
    )
    by_id = await claim(api, tokens.pharmacy(), card["id"], "rx-pos-1", "350.00")
    for replay in (again, by_id):
        assert replay.status_code == 200, replay.text
        assert replay.headers["Idempotent-Replayed"] == "true"
        assert replay.json() == repeat_of(answer)
    other_body = await by_number(
        api,
        tokens.pharmacy(),
        cardNumber=card["cardNumber"],
        prescriptionId="rx-pos-1",
        totalAmount="351.00",
    )
    assert other_body.status_code == 409, other_body.text
    assert other_body.json()["code"] == "duplicate_prescription"
    assert len(await api.stream(card["id"])) == 2


async def test_an_idempotency_key_replays_a_claim_by_number(api: Api, tokens: Tokens) -> None:
    card = await issue_card(api, tokens.admin(), "pos-key")
    headers = tokens.pharmacy() | {"Idempotency-Key": "pos-key-1"}
    body = {"cardNumber": card["cardNumber"], "prescriptionId": "rx-k", "totalAmount": "10.00"}
    first = created(await api.client.post(BY_NUMBER, json=body, headers=headers))
    second = await api.client.post(BY_NUMBER, json=body, headers=headers)
    assert second.status_code == 201
    assert second.headers["Idempotent-Replayed"] == "true"
    assert second.json() == repeat_of(first)
    reused = await api.client.post(BY_NUMBER, json=body | {"totalAmount": "11.00"}, headers=headers)
    assert reused.status_code == 422
    assert reused.json()["code"] == "idempotency_key_reused"
    assert len(await api.stream(card["id"])) == 2


@pytest.mark.parametrize(
    "number",
    [
        pytest.param("6048" + "1" * 11 + luhn_check_digit("6048" + "1" * 11), id="luhn_valid"),
        pytest.param("6048111111111110", id="luhn_invalid"),
    ],
)
async def test_a_number_no_card_has_is_404_and_stores_nothing(
    api: Api, tokens: Tokens, number: str
) -> None:
    await issue_card(api, tokens.admin(), "pos-404")
    await refused(
        api,
        by_number(
            api, tokens.pharmacy(), cardNumber=number, prescriptionId="rx", totalAmount="1.00"
        ),
        404,
        "card_not_found",
    )


async def test_a_wallet_id_is_no_card_number(api: Api, tokens: Tokens) -> None:
    """Reservations hold other keys too: only a card's issue names a card."""
    card = await issue_card(api, tokens.admin(), "pos-key-scope")
    created(await by_number(api, tokens.admin(), cardNumber=card["cardNumber"],
                            prescriptionId="rx-a", totalAmount="1.00"))  # fmt: skip
    wallet = await open_wallet(api, tokens.ops(), "pos-key-scope")
    created(await top_up(api, tokens.ops(), wallet["id"], "5.00", "6048000000000001"))
    await refused(
        api,
        by_number(
            api,
            tokens.pharmacy(),
            cardNumber="6048000000000001",
            prescriptionId="rx",
            totalAmount="1.00",
        ),
        404,
        "card_not_found",
    )


async def test_the_beneficiary_by_national_id(api: Api, tokens: Tokens) -> None:
    card = await issue_card(api, tokens.admin(), "pos-family")
    person = beneficiary_body(serial="0077", name="Laila Ali")
    added = created(
        await api.client.post(
            f"{API}/medcards/{card['id']}/beneficiaries", json=person, headers=tokens.admin()
        )
    )
    base = {"cardNumber": card["cardNumber"], "totalAmount": "40.00"}
    answer = created(
        await by_number(
            api,
            tokens.pharmacy(),
            **base,
            prescriptionId="rx-nid",
            beneficiaryNationalId=person["nationalId"],
        )
    )
    assert answer["beneficiaryId"] == added["id"]
    assert answer["decision"] == "approved"
    stored = (await api.stream(card["id"]))[-1]
    assert stored.data["beneficiary_id"] == added["id"]

    nobody = beneficiary_body(serial="0078")["nationalId"]
    await refused(
        api,
        by_number(
            api, tokens.pharmacy(), **base, prescriptionId="rx-x", beneficiaryNationalId=nobody
        ),
        422,
        "beneficiary_not_on_card",
    )
    await refused(
        api,
        by_number(
            api,
            tokens.pharmacy(),
            **base,
            prescriptionId="rx-y",
            beneficiaryNationalId=person["nationalId"],
            beneficiaryId=added["id"],
        ),
        422,
        "conflicting_beneficiary",
    )


@pytest.mark.integration
async def test_a_card_issued_by_another_process_is_found_at_once(
    postgres_url: str, tokens: Tokens
) -> None:
    """No projection in between: the number is the write side's own reservation."""
    async with (
        running_api("postgres", postgres_url) as issuer,
        running_api("postgres", postgres_url) as counter,
    ):
        card = await issue_card(issuer, tokens.admin(), "pos-two-processes")
        answer = created(
            await by_number(
                counter,
                tokens.pharmacy(),
                cardNumber=card["cardNumber"],
                prescriptionId="rx-2p",
                totalAmount="20.00",
            )
        )
        assert answer["medcardId"] == card["id"]
        # the issuer's cached state is behind: its next claim still decides on the head
        second = created(
            await by_number(
                issuer,
                tokens.pharmacy(),
                cardNumber=card["cardNumber"],
                prescriptionId="rx-2p-b",
                totalAmount="20.00",
            )
        )
        assert second["version"] == 3
        assert second["monthSpent"] == "36.00"


# ------------------------------------------------------------------------------- quotes


async def test_a_quote_is_the_claims_answer_and_stores_nothing(api: Api, tokens: Tokens) -> None:
    card = await issue_card(api, tokens.admin(), "pos-quote", card_type="silver")  # 20%, 2000
    created(await claim(api, tokens.pharmacy(), card["id"], "rx-before", "2400.00"))
    events = await api.events()
    keys = await api.idempotency_record_count()
    body = {"cardNumber": card["cardNumber"], "prescriptionId": "rx-q", "totalAmount": "500.00"}
    headers = tokens.pharmacy() | {"Idempotency-Key": "quote-1"}
    quote = await api.client.post(BY_NUMBER, json=body | {"mode": "quote"}, headers=headers)
    assert quote.status_code == 200, quote.text
    assert "Idempotent-Replayed" not in quote.headers
    quoted = quote.json()
    assert quoted["mode"] == "quote"
    assert quoted["position"] is None
    assert (quoted["decision"], quoted["coveredAmount"]) == ("partially_approved", "80.00")
    assert quoted["version"] == 2  # the card's version it was decided on
    assert await api.events() == events
    assert await api.idempotency_record_count() == keys

    # The same quote by card id; then the claim itself gets the quoted answer.
    by_id = done(await claim(api, tokens.pharmacy(), card["id"], "rx-q", "500.00", mode="quote"))
    _same_decision(by_id, quoted)
    booked = created(await api.client.post(BY_NUMBER, json=body, headers=headers))
    _same_decision(booked, quoted)
    assert booked["position"] > events[-1].position
    assert "mode" not in booked


async def test_a_quote_of_a_charged_prescription_answers_as_the_claim_would(
    api: Api, tokens: Tokens
) -> None:
    card = await issue_card(api, tokens.admin(), "pos-quote-dup")
    booked = created(await claim(api, tokens.pharmacy(), card["id"], "rx-d", "30.00"))
    events = await api.events()
    replay = done(await claim(api, tokens.pharmacy(), card["id"], "rx-d", "30.00", mode="quote"))
    assert replay["claimId"] == booked["claimId"]
    assert replay["mode"] == "quote"
    await refused(
        api,
        claim(api, tokens.pharmacy(), card["id"], "rx-d", "31.00", mode="quote"),
        409,
        "duplicate_prescription",
    )
    assert await api.events() == events


async def test_a_quote_takes_nothing_from_the_wallet(api: Api, tokens: Tokens) -> None:
    user = "pos-quote-wallet"
    card = await issue_card(api, tokens.admin(), user)
    wallet = await open_wallet(api, tokens.ops(), user)
    created(await top_up(api, tokens.ops(), wallet["id"], "100.00", "fawry-pos-q"))
    done(await set_copay_consent(api, tokens.member(user), wallet["id"], "50.00", "100.00"))
    events = await api.events()
    quoted = done(
        await by_number(
            api,
            tokens.pharmacy(),
            cardNumber=card["cardNumber"],
            prescriptionId="rx-w",
            totalAmount="200.00",
            payCopaymentFromWallet=True,
            mode="quote",
        )
    )
    assert quoted["copaymentPaidFromWallet"] == "20.00"
    assert quoted["walletId"] == wallet["id"]
    assert await api.events() == events  # no claim, no debit on the wallet's stream
    # the member's whole allowance is still there for the claim itself
    for n in range(5):
        paid = created(
            await claim(
                api,
                tokens.pharmacy(),
                card["id"],
                f"rx-w{n}",
                "200.00",
                payCopaymentFromWallet=True,
            )
        )
        assert paid["copaymentPaidFromWallet"] == "20.00", n


# -------------------------------------------------------------------------- eligibility

ELIGIBILITY = f"{API}/eligibility"


async def test_eligibility_tells_the_terms_and_masks_the_family(api: Api, tokens: Tokens) -> None:
    card = await issue_card(api, tokens.admin(), "pos-elig", card_type="silver")  # 20%, 2000
    person = beneficiary_body(serial="0055", name="Mona Hassan Ali")
    added = created(
        await api.client.post(
            f"{API}/medcards/{card['id']}/beneficiaries", json=person, headers=tokens.admin()
        )
    )
    created(await claim(api, tokens.pharmacy(), card["id"], "rx-e", "500.00"))  # covers 400
    events = await api.events()
    answer = done(
        await api.client.post(
            ELIGIBILITY,
            json={"cardNumber": card["cardNumber"], "beneficiaryNationalId": person["nationalId"]},
            headers=tokens.pharmacy(),
        )
    )
    assert answer["covered"] is True
    assert answer["reason"] is None
    assert answer["medcardId"] == card["id"]
    assert answer["beneficiaryId"] == added["id"]
    assert (answer["copaymentPercentage"], answer["monthlyLimit"]) == ("20.00", "2000.00")
    assert (answer["monthSpent"], answer["remainingMonthlyLimit"]) == ("400.00", "1600.00")
    assert answer["version"] == 3
    family = {b["id"]: b for b in answer["beneficiaries"]}
    assert family[added["id"]] == {
        "id": added["id"],
        "relationship": "spouse",
        "name": "M*** H*** A***",
        "primary": False,
    }
    assert [b["primary"] for b in answer["beneficiaries"]].count(True) == 1
    text = str(answer)
    for secret in (person["nationalId"], person["phoneNumber"], "Mona", person["dateOfBirth"]):
        assert secret not in text
    assert await api.events() == events  # no side effect


async def test_eligibility_answers_as_a_claim_would_be_decided(api: Api, tokens: Tokens) -> None:
    card = await issue_card(api, tokens.admin(), "pos-elig-no", monthlyLimit=5000)
    ask = {"cardNumber": card["cardNumber"]}
    stranger = done(
        await api.client.post(
            ELIGIBILITY, json=ask | {"beneficiaryId": str(uuid.uuid4())}, headers=tokens.ops()
        )
    )
    assert (stranger["covered"], stranger["reason"]) == (False, "beneficiary_not_on_card")
    done(await api.client.post(f"{API}/medcards/{card['id']}/suspend", headers=tokens.admin()))
    suspended = done(await api.client.post(ELIGIBILITY, json=ask, headers=tokens.pharmacy()))
    assert (suspended["covered"], suspended["reason"]) == (False, "card_suspended")
    # the claim itself is rejected for the same reason
    rejected = created(await claim(api, tokens.pharmacy(), card["id"], "rx-s", "10.00"))
    assert rejected["reasons"] == [suspended["reason"]]
    await refused(
        api,
        api.client.post(
            ELIGIBILITY, json={"cardNumber": "6048000000000001"}, headers=tokens.pharmacy()
        ),
        404,
        "card_not_found",
    )
