"""Money is EGP with two decimal places, always Decimal, never float."""

from __future__ import annotations

import math
import re
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

CURRENCY = "EGP"
CENT = Decimal("0.01")
ZERO = Decimal("0.00")
_DIGITS = re.compile(r"([0-9]+)(?:\.([0-9]+))?", re.ASCII)


class MoneyError(ValueError):
    """A value is not a valid amount of money. `kind`: "format" (the spelling), "places"
    (more than two decimals), "too_small" or "too_large" (outside the field's range)."""

    def __init__(self, message: str, kind: str = "format") -> None:
        super().__init__(message)
        self.kind = kind


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


class DecimalRule:
    """How a client writes money (or a percentage): the one input rule for every such field.

    A JSON string, integer or number in the plain spelling: ASCII digits without leading
    zeros, then an optional point and one or two digits, within [minimum, maximum]. No sign,
    exponent, separator, other scripts' digits, padding, NaN or Infinity, all of which
    Decimal() would take: it only ever sees text this rule has matched. A float is judged by
    its shortest repr, exact for the at most 12 significant digits allowed (the body reader
    hands over the text of any JSON number that a float could have rounded).
    """

    def __init__(self, integer_digits: int, minimum: Decimal, maximum: Decimal) -> None:
        self.integer_digits = integer_digits
        self.minimum = minimum
        self.maximum = maximum
        self._plain = re.compile(
            rf"(?:0|[1-9][0-9]{{0,{integer_digits - 1}}})(?:\.[0-9]{{1,2}})?", re.ASCII
        )
        self._limit = 10**integer_digits
        self._range = (
            f"must be greater than zero and at most {maximum:,}"
            if minimum == CENT
            else f"must be from {minimum:,} to {maximum:,}"
        )

    def parse(self, value: object) -> Decimal:
        """`value` to the cent, or MoneyError saying what is wrong with it."""
        if type(value) is str:
            text = value
        elif isinstance(value, bool) or not isinstance(value, int | float | str):
            raise MoneyError("must be a number or a string")
        elif isinstance(value, float) and not math.isfinite(value):
            raise MoneyError("must be a finite number")
        elif isinstance(value, str):
            text = str(value)
        elif -self._limit < value < self._limit:  # before repr(): a huge int prints slowly
            text = repr(value)
        else:
            raise MoneyError(self._range, "too_large")
        if self._plain.fullmatch(text) is None:
            raise self._misspelt(text)
        amount = Decimal(text).quantize(CENT)
        if amount < self.minimum:
            raise MoneyError(self._range, "too_small")
        if amount > self.maximum:
            raise MoneyError(self._range, "too_large")
        return amount

    def _misspelt(self, text: str) -> MoneyError:
        """Why `text` is refused, for the client (the wording only; the rule is above)."""
        if text[:1] in ("-", "+"):
            return MoneyError("must be written without a sign")
        digits = _DIGITS.fullmatch(text)
        if digits is not None and len(digits[2] or "") > 2:
            return MoneyError("must have at most two decimal places", "places")
        if digits is not None and not digits[1].startswith("0"):
            return MoneyError(self._range, "too_large")  # too many digits before the point
        return MoneyError(
            "must be a plain decimal: ASCII digits, optionally a point and one or two digits"
        )


# DECIMAL(12,2) columns hold ten digits before the point.
MONEY = DecimalRule(10, CENT, Decimal("9999999999.99"))
LIMIT = DecimalRule(10, ZERO, MONEY.maximum)  # a limit a member sets: 0 is none
PERCENT = DecimalRule(3, Decimal(0), Decimal(100))


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
