"""The messages' texts, in Arabic and English. Amounts are in EGP with two decimals; the
Arabic texts keep Western digits (what Egyptian banks' and pharmacies' SMS use)."""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

Language = Literal["ar", "en"]
Kind = Literal["claim_receipt", "benefit_80", "benefit_100", "wallet_low", "topup"]
KINDS: tuple[Kind, ...] = ("claim_receipt", "benefit_80", "benefit_100", "wallet_low", "topup")

_TEMPLATES: dict[Kind, dict[Language, str]] = {
    "claim_receipt": {
        "en": "HealthPay: your claim at the pharmacy is done. Covered {covered} EGP, "
        "you pay {copay} EGP. Left this month: {remaining} EGP.",
        "ar": "HealthPay: تمت مطالبتك في الصيدلية. المغطى {covered} جنيه، "
        "وعليك {copay} جنيه. المتبقي هذا الشهر: {remaining} جنيه.",
    },
    "benefit_80": {
        "en": "HealthPay: you have used 80% of this month's benefit ({spent} of {limit} EGP).",
        "ar": "HealthPay: استخدمت 80% من حد هذا الشهر ({spent} من {limit} جنيه).",
    },
    "benefit_100": {
        "en": "HealthPay: you have used all of this month's benefit ({limit} EGP). Claims "
        "are paid by you until the month ends.",
        "ar": "HealthPay: استخدمت كامل حد هذا الشهر ({limit} جنيه). المطالبات على نفقتك "
        "حتى نهاية الشهر.",
    },
    "wallet_low": {
        "en": "HealthPay: your wallet balance is low: {balance} EGP.",
        "ar": "HealthPay: رصيد محفظتك منخفض: {balance} جنيه.",
    },
    "topup": {
        "en": "HealthPay: {amount} EGP added to your wallet. Balance: {balance} EGP.",
        "ar": "HealthPay: تمت إضافة {amount} جنيه إلى محفظتك. الرصيد: {balance} جنيه.",
    },
}


def render(kind: Kind, language: Language, amounts: dict[str, Decimal]) -> str:
    return _TEMPLATES[kind][language].format(**{k: f"{v:.2f}" for k, v in amounts.items()})


def needs_unicode(text: str) -> bool:
    """GSM-7 covers ASCII well enough for these texts; anything else (Arabic) is UCS-2."""
    return not text.isascii()
