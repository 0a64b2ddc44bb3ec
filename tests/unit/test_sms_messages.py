"""Which events ask for which SMS, the texts in both languages, and the Cequens adapter's
request and its reading of the answers."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from uuid import uuid4

import httpx
import pytest
from pydantic import SecretStr

from domain.events import WalletDebited, WalletToppedUp
from infrastructure.sms.cequens import CequensSender
from infrastructure.sms.port import Sms, SmsRefused, SmsUnavailable
from projection_service.notifier.messages import ToWalletOwner, derive, threshold_crossed
from projection_service.notifier.templates import KINDS, needs_unicode, render

D = Decimal
AT = datetime(2026, 12, 4, tzinfo=UTC)


@pytest.mark.parametrize(
    ("spent_after", "covered", "expected"),
    [
        (D("799.99"), D("100"), None),  # below 80 %
        (D("800.00"), D("100"), "benefit_80"),  # reaches 80 % exactly
        (D("850.00"), D("849"), "benefit_80"),
        (D("900.00"), D("50"), None),  # over 80 % already before this claim
        (D("1000.00"), D("150"), "benefit_100"),  # crosses both: only the higher one
        (D("1000.00"), D("0"), None),  # nothing covered: nothing crossed
    ],
)
def test_thresholds_crossed_by_this_claim(
    spent_after: Decimal, covered: Decimal, expected: str | None
) -> None:
    assert threshold_crossed(D("1000.00"), spent_after, covered) == expected


def test_a_card_without_a_limit_crosses_nothing() -> None:
    assert threshold_crossed(D("0"), D("10"), D("10")) is None


def _debit(amount: str, after: str) -> WalletDebited:
    return WalletDebited(
        debit_id=uuid4(),
        amount=D(amount),
        purpose="copay",
        reference="r",
        balance_after=D(after),
        at=AT,
        postings=(),
    )


def test_low_balance_only_when_a_debit_crosses_the_setting() -> None:
    wallet = uuid4()
    kinds = [
        [i.kind for i in derive(wallet, _debit(amount, after), D("50.00")).intents]
        for amount, after in (("10", "60"), ("20", "40"), ("5", "35"), ("50", "50"))
    ]
    assert kinds == [[], ["wallet_low"], [], []]
    low = derive(wallet, _debit("20", "40"), D("50.00")).intents[0]
    assert low.to == ToWalletOwner(wallet)
    assert low.amounts == {"balance": D("40")}


def test_a_top_up_sends_its_receipt() -> None:
    topup = WalletToppedUp(
        topup_id=uuid4(),
        gateway="fawry",
        gateway_reference="g",
        amount=D("200.00"),
        balance_after=D("260.00"),
        at=AT,
        paid_at=None,
        postings=(),
    )
    (intent,) = derive(uuid4(), topup, D("50")).intents
    assert render(intent.kind, "en", intent.amounts) == (
        "HealthPay: 200.00 EGP added to your wallet. Balance: 260.00 EGP."
    )
    assert render(intent.kind, "ar", intent.amounts) == (
        "HealthPay: تمت إضافة 200.00 جنيه إلى محفظتك. الرصيد: 260.00 جنيه."
    )


@pytest.mark.parametrize("kind", KINDS)
def test_every_message_has_both_languages_with_its_amounts(kind: str) -> None:
    amounts = {n: D("12.5") for n in ("covered", "copay", "remaining", "spent", "limit")}
    amounts |= {"balance": D("12.5"), "amount": D("12.5")}
    english, arabic = render(kind, "en", amounts), render(kind, "ar", amounts)  # type: ignore[arg-type]
    assert "12.50" in english
    assert "12.50" in arabic
    assert not needs_unicode(english)
    assert needs_unicode(arabic)


def _sender(answer: httpx.Response, seen: list[httpx.Request]) -> CequensSender:
    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return answer

    return CequensSender(
        SecretStr("k" * 20), "https://cequens.test/", "HealthPay", httpx.MockTransport(handle)
    )


async def test_the_request_cequens_gets_and_the_id_it_returns() -> None:
    seen: list[httpx.Request] = []
    ok = {"replyCode": 0, "data": {"SentSMSIDs": [{"SMSId": "id-1"}], "InvalidRecipients": ""}}
    sender = _sender(httpx.Response(200, json=ok), seen)
    assert await sender.send(Sms("+201012345678", "مرحبا", unicode=True)) == "id-1"
    (request,) = seen
    assert str(request.url) == "https://cequens.test/sms/v1/messages"
    assert request.headers["Authorization"] == "Bearer " + "k" * 20
    assert json.loads(request.content) == {
        "senderName": "HealthPay",
        "messageType": "unicode",
        "messageText": "مرحبا",
        "recipients": "201012345678",
    }


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (httpx.Response(400, json={"replyCode": 1}), SmsRefused),
        (httpx.Response(200, json={"replyCode": 3, "replyMessage": "bad sender"}), SmsRefused),
        (
            httpx.Response(200, json={"replyCode": 0, "data": {"InvalidRecipients": "2010"}}),
            SmsRefused,
        ),
        (httpx.Response(401, json={"replyCode": 401}), SmsUnavailable),  # a key to fix: retry
        (httpx.Response(429), SmsUnavailable),
        (httpx.Response(503), SmsUnavailable),
        (httpx.Response(200, text="<html>"), SmsUnavailable),
    ],
)
async def test_refusals_and_outages(answer: httpx.Response, error: type[Exception]) -> None:
    sender = _sender(answer, [])
    with pytest.raises(error):
        await sender.send(Sms("+201012345678", "hi", unicode=False))
