"""Money is EGP with two decimal places, always Decimal, never float."""

from __future__ import annotations

import math
import re
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

CURRENCY = "EGP"
CENT = Decimal("0.01")
ZERO = Decimal("0.00")
# DECIMAL(12,2) columns hold ten digits before the point: at most 9,999,999,999.99.
MAX_INTEGER_DIGITS = 10
# The one spelling of a decimal on the way in: ASCII digits without leading zeros, then an
# optional fraction of one or two digits. No sign, exponent, underscore, other scripts'
# digits, padding, NaN or Infinity: Decimal() accepts all of those, so it is only called
# on text this has matched. Also a JSON Schema pattern, for the published documents.
PLAIN_DECIMAL_PATTERN = r"^(0|[1-9][0-9]*)(\.[0-9]{1,2})?$"
_PLAIN_DECIMAL = re.compile(PLAIN_DECIMAL_PATTERN, re.ASCII)
_DIGITS = re.compile(r"([0-9]+)(?:\.([0-9]+))?", re.ASCII)


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


def parse_decimal(value: object, integer_digits: int = MAX_INTEGER_DIGITS) -> Decimal:
    """Money (or a percentage) as a client sent it: a JSON string, integer or number in the
    plain spelling, to the cent. The one input rule for every such field.

    The range (greater than zero, at most 100, ...) is the caller's; this checks the spelling
    and that at most `integer_digits` digits precede the point. A float is judged by its
    shortest repr, which is exact for the at most 12 significant digits allowed here (a JSON
    number whose text was longer never gets this far: see the command service's body reader).
    """
    limit = 10**integer_digits
    if isinstance(value, str):
        text = value
    elif isinstance(value, bool):
        raise MoneyError("must be a number or a string, not a boolean")
    elif isinstance(value, float) and not math.isfinite(value):
        raise MoneyError("must be a finite number")
    elif isinstance(value, int | float):
        if abs(value) >= limit:  # before repr(): a huge int would be slow to print
            raise MoneyError(f"must be below {limit:,}")
        text = repr(value)
    else:
        raise MoneyError("must be a number or a string")
    # Length first: a megabyte of digits is refused without being scanned.
    if len(text) > integer_digits + 3 or _PLAIN_DECIMAL.fullmatch(text) is None:
        raise MoneyError(_misspelt(text, limit))
    whole = text.find(".")
    if (len(text) if whole < 0 else whole) > integer_digits:
        raise MoneyError(f"must be below {limit:,}")
    return Decimal(text).quantize(CENT)


def _misspelt(text: str, limit: int) -> str:
    """Why `text` is refused, for the client (the wording only; the rule is above)."""
    if text[:1] in ("-", "+"):
        return "must be written without a sign"
    digits = _DIGITS.fullmatch(text)
    if digits is not None and len(digits[2] or "") > 2:
        return "must have at most two decimal places"
    if digits is not None and not digits[1].startswith("0"):
        return f"must be below {limit:,}"
    return "must be a plain decimal: ASCII digits, optionally a point and one or two digits"


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
