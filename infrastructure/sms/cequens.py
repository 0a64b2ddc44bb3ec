"""Cequens' SMS API (developer.cequens.com, "Sending SMS"):

    POST {CEQUENS_URL}/sms/v1/messages
    Authorization: Bearer <API token from the Cequens console's Developers > API Keys>
    {"senderName": ..., "messageType": "text" | "unicode", "messageText": ...,
     "recipients": "2010XXXXXXXX"}

answers `{"replyCode": 0, "replyMessage": ..., "requestId": ...,
"data": {"SentSMSIDs": [{"SMSId": ...}], "InvalidRecipients": ""}}`. Recipients are digits
with the country code and no `+`. A non-zero replyCode or an invalid recipient is a refusal.
"""

from __future__ import annotations

from typing import Any

import httpx
from pydantic import SecretStr

from infrastructure.sms.port import Sms, SmsRefused, SmsUnavailable

PRODUCTION_URL = "https://apis.cequens.com"
SEND_PATH = "/sms/v1/messages"
# A send is one small request; a provider slower than this is treated as unavailable (the
# row stays pending and is tried again, so a slow answer costs a retry, never a message).
TIMEOUT_S = 10.0
# Refusals: the request itself is wrong. 401/403 are not here: a rotated or mistyped key is
# fixed by an operator, and the messages must still go out once it is.
_REFUSED_STATUSES = frozenset({400, 404, 413, 422})


class CequensSender:
    def __init__(
        self,
        api_key: SecretStr,
        base_url: str = PRODUCTION_URL,
        sender_name: str = "HealthPay",
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._sender_name = sender_name
        self._client = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            headers={"Authorization": f"Bearer {api_key.get_secret_value()}"},
            timeout=TIMEOUT_S,
            transport=transport,
        )

    async def send(self, sms: Sms) -> str:
        body = {
            "senderName": self._sender_name,
            "messageType": "unicode" if sms.unicode else "text",
            "messageText": sms.text,
            "recipients": sms.to.removeprefix("+"),
        }
        try:
            response = await self._client.post(SEND_PATH, json=body)
        except httpx.HTTPError as exc:
            raise SmsUnavailable(f"cequens: {type(exc).__name__}") from None
        if response.status_code in _REFUSED_STATUSES:
            raise SmsRefused(f"cequens answered {response.status_code}: {response.text[:200]}")
        if response.status_code != 200:
            raise SmsUnavailable(f"cequens answered {response.status_code}")
        return _message_id(_json(response))

    async def aclose(self) -> None:
        await self._client.aclose()


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        answer = response.json()
    except ValueError:
        raise SmsUnavailable("cequens answered 200 without JSON") from None
    if not isinstance(answer, dict):
        raise SmsUnavailable("cequens answered 200 with no object")
    return answer


def _message_id(answer: dict[str, Any]) -> str:
    if answer.get("replyCode") != 0:
        raise SmsRefused(
            f"cequens replyCode {answer.get('replyCode')}: {answer.get('replyMessage')}"
        )
    data = answer.get("data") or {}
    if data.get("InvalidRecipients"):
        raise SmsRefused("cequens: invalid recipient")
    ids = data.get("SentSMSIDs") or []
    if not ids or not isinstance(ids[0], dict) or not ids[0].get("SMSId"):
        # Accepted (replyCode 0) without an id: sending again could deliver it twice.
        return f"request:{answer.get('requestId')}"
    return str(ids[0]["SMSId"])
