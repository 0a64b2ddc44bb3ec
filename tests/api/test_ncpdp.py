"""The NCPDP vocabulary of claim and reversal answers (domain/medcard/ncpdp.py): statuses P, D,
R, A and S as a pharmacy system would see them over the API, reject codes from our reasons,
and amounts that agree with our own fields."""

from __future__ import annotations

from decimal import Decimal

from domain.medcard.ncpdp import NOT_PROCESSED, REJECT_CODES
from tests.api.support import API, Api, Tokens, claim, created, done, issue_card


async def test_a_paid_claim_then_its_identical_retry_are_p_then_d(api: Api, tokens: Tokens) -> None:
    card = await issue_card(api, tokens.admin(), "u-ncpdp-1", monthlyLimit="5000.00")
    first = created(await claim(api, tokens.pharmacy(), card["id"], "rx-n1", "350.00"))
    assert first["ncpdp"] == {
        "transactionStatus": "P",
        "rejectCodes": [],
        "totalAmountPaid": "315.00",
        "patientPayAmount": "35.00",
        "amountExceedingPeriodicBenefitMaximum": "0.00",
        "remainingBenefitAmount": "4685.00",
    }
    again = created(await claim(api, tokens.pharmacy(), card["id"], "rx-n1", "350.00"), 200)
    assert again["ncpdp"] == {**first["ncpdp"], "transactionStatus": "D"}
    assert {k: v for k, v in again.items() if k != "ncpdp"} == {
        k: v for k, v in first.items() if k != "ncpdp"
    }


async def test_the_part_beyond_the_months_benefit_is_named(api: Api, tokens: Tokens) -> None:
    card = await issue_card(api, tokens.admin(), "u-ncpdp-2", monthlyLimit="100.00")  # gold 10%
    partial = created(await claim(api, tokens.pharmacy(), card["id"], "rx-n2", "200.00"))
    assert partial["decision"] == "partially_approved"
    fields = partial["ncpdp"]
    assert (fields["transactionStatus"], fields["totalAmountPaid"]) == ("P", "100.00")
    # 200 = 100 paid + 20 copay share + 80 the exhausted benefit left to the patient
    assert fields["patientPayAmount"] == "100.00"
    assert fields["amountExceedingPeriodicBenefitMaximum"] == "80.00"
    assert fields["remainingBenefitAmount"] == "0.00"
    exhausted = created(await claim(api, tokens.pharmacy(), card["id"], "rx-n3", "50.00"))
    assert (exhausted["decision"], exhausted["ncpdp"]["transactionStatus"]) == ("rejected", "R")
    assert exhausted["ncpdp"]["rejectCodes"] == ["76"]
    assert exhausted["ncpdp"]["amountExceedingPeriodicBenefitMaximum"] == "45.00"
    paid = Decimal(fields["totalAmountPaid"]) + Decimal(fields["patientPayAmount"])
    assert paid == Decimal(partial["totalAmount"])


async def test_rejections_carry_the_reject_code_of_their_reason(api: Api, tokens: Tokens) -> None:
    card = await issue_card(api, tokens.admin(), "u-ncpdp-3")
    done(await api.client.post(f"{API}/medcards/{card['id']}/suspend", headers=tokens.ops()))
    rejected = created(await claim(api, tokens.pharmacy(), card["id"], "rx-n4", "10.00"))
    assert rejected["reasons"] == ["card_suspended"]
    assert rejected["ncpdp"]["transactionStatus"] == "R"
    assert rejected["ncpdp"]["rejectCodes"] == [REJECT_CODES["card_suspended"]] == ["65"]
    assert rejected["ncpdp"]["totalAmountPaid"] == "0.00"
    assert NOT_PROCESSED not in REJECT_CODES.values()  # the fallback stays distinguishable


async def test_a_reversal_then_its_repeat_are_a_then_s(api: Api, tokens: Tokens) -> None:
    card = await issue_card(api, tokens.admin(), "u-ncpdp-4", monthlyLimit="5000.00")
    paid = created(await claim(api, tokens.pharmacy(), card["id"], "rx-n5", "100.00"))
    path = f"{API}/medcards/{card['id']}/claims/{paid['claimId']}/reversal"
    # a repeat is the same request under the same Idempotency-Key (without one it is refused
    # as claim_already_reversed)
    headers = {**tokens.pharmacy(), "Idempotency-Key": "rev-n5"}
    first = await api.client.post(path, json={"reason": "returned"}, headers=headers)
    again = await api.client.post(path, json={"reason": "returned"}, headers=headers)
    assert first.json()["ncpdp"] == {
        "transactionStatus": "A",
        "rejectCodes": [],
        "remainingBenefitAmount": "5000.00",
    }
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json()["ncpdp"] == {**first.json()["ncpdp"], "transactionStatus": "S"}
