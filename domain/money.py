"""Money is EGP with two decimal places, always Decimal, never float."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

CURRENCY = "EGP"
CENT = Decimal("0.01")
ZERO = Decimal("0.00")


class MoneyError(ValueError):
    """A value is not a valid amount of money."""


def money(value: Decimal | int | str) -> Decimal:
    """Exact conversion: refuses more than two decimal places instead of rounding them away."""
    try:
        amount = Decimal(value)
    except (InvalidOperation, TypeError) as exc:
        raise MoneyError(f"not a number: {value!r}") from exc
    if not amount.is_finite():
        raise MoneyError("amount must be finite")
    exponent = amount.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -2:
        raise MoneyError("amount has more than two decimal places")
    return amount.quantize(CENT)


def round_half_up(amount: Decimal) -> Decimal:
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


def percent_of(amount: Decimal, percent: Decimal) -> Decimal:
    return round_half_up(amount * percent / Decimal(100))


def split_proportionally(total: Decimal, weights: list[Decimal]) -> list[Decimal]:
    """Split `total` over `weights` in cents so the parts sum exactly to `total`.

    Largest-remainder method: every part is within one cent of its exact share.
    """
    weight_sum = sum(weights, ZERO)
    if weight_sum == 0:
        return [ZERO for _ in weights]
    cents = int(total / CENT)
    exact = [Decimal(cents) * w / weight_sum for w in weights]
    floors = [int(x) for x in exact]
    short = cents - sum(floors)
    by_remainder = sorted(
        range(len(weights)), key=lambda i: (exact[i] - floors[i], -i), reverse=True
    )
    for i in by_remainder[:short]:
        floors[i] += 1
    return [(Decimal(c) * CENT).quantize(CENT) for c in floors]
