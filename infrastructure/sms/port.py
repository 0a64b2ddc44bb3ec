"""What the notifier needs from an SMS provider: send one text to one number, learn the
provider's id for it, and tell a refusal (never worth retrying) from an outage (retry)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol

log = logging.getLogger("healthpay.sms")


@dataclass(frozen=True, slots=True)
class Sms:
    to: str  # E.164, as the card events store it: +201XXXXXXXXX
    text: str
    unicode: bool  # Arabic text goes as unicode (UCS-2), Latin as plain text


class SmsRefused(Exception):
    """The provider refused this message (bad number, bad request): sending it again would
    be refused again."""


class SmsUnavailable(Exception):
    """The provider could not be asked or did not answer usably (network, 5xx, 429, a key
    it does not accept): the message is tried again later."""


class SmsSender(Protocol):
    async def send(self, sms: Sms) -> str:
        """The provider's id of the accepted message; SmsRefused or SmsUnavailable."""
        ...

    async def aclose(self) -> None: ...


class DisabledSender:
    """SMS_ENABLED=false (`make up`'s default): nothing leaves the process; each message is
    logged and its outbox row marked sent with a `disabled:` id, so the pipeline runs whole."""

    def __init__(self) -> None:
        self._count = 0

    async def send(self, sms: Sms) -> str:
        self._count += 1
        log.info("SMS disabled: not sending %d characters to %s", len(sms.text), sms.to[:6])
        return f"disabled:{self._count}"

    async def aclose(self) -> None:
        return None
