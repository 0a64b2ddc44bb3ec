"""Card types and the defaults a card of that type is issued with."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True, slots=True)
class CardTypeDefaults:
    monthly_limit: Decimal
    copay_percent: Decimal
    max_beneficiaries: int
    validity_months: int


CARD_TYPES: dict[str, CardTypeDefaults] = {
    "silver": CardTypeDefaults(Decimal("2000.00"), Decimal("20.00"), 3, 12),
    "gold": CardTypeDefaults(Decimal("5000.00"), Decimal("10.00"), 5, 12),
    "platinum": CardTypeDefaults(Decimal("10000.00"), Decimal("5.00"), 8, 24),
}
