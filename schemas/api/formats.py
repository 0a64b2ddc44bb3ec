"""The input rules of the write API as JSON Schema, for the public OpenAPI document.

The rules themselves live where they are enforced: lengths, bounds and decimal places in the
pydantic bodies (schemas/api/commands.py), identity and card rules in the domain. This module
only translates them, built from those same constants, so the document says what the code
enforces; tests/api/test_openapi_contract.py holds each translation to the code it mirrors
(what a pattern accepts, the domain accepts, and the other way round).

What JSON Schema cannot say (a rule across fields, or one that depends on today or on the
card's state) is said in the field's description, and its refusal is a documented 422/409.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from domain.identity import GOVERNORATES
from domain.medcard.card_types import CARD_TYPES
from domain.medcard.decider import RELATIONSHIPS
from domain.wallet.model import GATEWAYS
from schemas.api.commands import CONTROL_CHARACTERS

# An event-store position: PostgreSQL's BIGINT.
MAX_POSITION = 2**63 - 1

# The mobile number's parts (domain/identity.py: normalize_mobile). Spaces and hyphens are
# dropped before it is matched, so they may stand anywhere.
_SEPARATOR = "[ -]*"
_MOBILE_PREFIXES = ("+20", "0020", "0")
_MOBILE_OPERATORS = "0125"


def _spaced(literal: str) -> str:
    return "".join(("\\+" if char == "+" else char) + _SEPARATOR for char in literal)


def mobile_pattern() -> str:
    """An Egyptian mobile number: optional +20, 0020 or 0, then 1, an operator digit
    (0, 1, 2, 5) and eight digits."""
    prefix = "|".join(_spaced(p) for p in _MOBILE_PREFIXES)
    digit = "[0-9]" + _SEPARATOR
    return f"^{_SEPARATOR}(?:{prefix})?1{_SEPARATOR}[{_MOBILE_OPERATORS}]{_SEPARATOR}{digit * 8}$"


def _days(month: int) -> str:
    """The day numbers of a month (29 February is a separate, leap-year-only case)."""
    if month == 2:
        return "(?:0[1-9]|1[0-9]|2[0-8])"
    if month in (4, 6, 9, 11):
        return "(?:0[1-9]|[12][0-9]|30)"
    return "(?:0[1-9]|[12][0-9]|3[01])"


def national_id_pattern() -> str:
    """14 digits: century (2: 1900s, 3: 2000s), a real YYMMDD date, a known governorate
    code, then 5 digits. 1900 was no leap year, 2000 was."""
    month_days = "|".join(f"{m:02d}{_days(m)}" for m in range(1, 13))
    leap_1900s = "2(?:0[48]|[2468][048]|[13579][26])"
    leap_2000s = "3(?:[02468][048]|[13579][26])"
    governorate = "(?:" + "|".join(sorted(GOVERNORATES)) + ")"
    date = f"(?:[23][0-9]{{2}}(?:{month_days})|(?:{leap_1900s}|{leap_2000s})0229)"
    return f"^{date}{governorate}[0-9]{{5}}$"


def any_case(words: frozenset[str] | set[str]) -> str:
    """A pattern for `words` in any letter case (the code lower-cases before it looks)."""

    def letters(word: str) -> str:
        return "".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else c for c in word)

    return "^(?:" + "|".join(letters(w) for w in sorted(words)) + ")$"


# Body property (camelCase) -> what the domain requires of it beyond the body's own schema.
DOMAIN_RULES: dict[str, dict[str, Any]] = {
    "cardType": {
        "pattern": any_case(set(CARD_TYPES)),
        "description": f"one of {', '.join(sorted(CARD_TYPES))}, in any letter case",
        "examples": ["gold"],
    },
    "relationship": {
        "enum": sorted(RELATIONSHIPS),
        "description": "who the person is to the card's member",
    },
    "nationalId": {
        "pattern": national_id_pattern(),
        "description": (
            "the 14-digit Egyptian national id: century digit (2 or 3), date of birth YYMMDD,"
            " governorate code, 5 more digits; its date must equal `dateOfBirth` (422"
            " national_id_birth_date_mismatch) and not lie in the future"
        ),
        "examples": ["29001150100123"],
    },
    "phoneNumber": {
        "pattern": mobile_pattern(),
        "description": (
            "an Egyptian mobile number (010, 011, 012, 015), with or without +20 / 0020,"
            " spaces and hyphens allowed; stored as +201XXXXXXXXX"
        ),
        "examples": ["01012345678", "+20 101 234 5678"],
    },
    "gateway": {
        "pattern": any_case(set(GATEWAYS)),
        "description": f"the payment gateway: one of {', '.join(sorted(GATEWAYS))}",
        "examples": ["fawry"],
    },
    "dateOfBirth": {"description": "must equal the date in `nationalId`; not in the future"},
    "expiryDate": {"description": "must be after today (Africa/Cairo); default: the type's"},
    "monthlyLimit": {
        "description": "the type's limit by default; another value needs the admin role (403)"
    },
    "copaymentPercentage": {
        "description": "the type's copay by default; another value needs the admin role (403)"
    },
    "totalAmount": {
        "description": "with `items`, must equal the sum of quantity x unitPrice (422"
        " items_total_mismatch)"
    },
}


# ------------------------------------------------------------------------ trimmed text

# What pydantic's strip_whitespace trims (Rust's str::trim): Unicode's White_Space, named one
# by one, since `\s` means another set in each regex dialect (ECMAScript's adds U+FEFF).
WHITE_SPACE = r"\t\n\u000b\f\r\u0020\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"


def trimmed_text_pattern(max_length: int) -> str:
    """A trimmed text field as sent: white space around 1 to `max_length` characters that
    start and end with neither white space nor a control character and hold no control
    character. The body's own rule (strip, then its length and NO_CONTROL_PATTERN) judges the
    trimmed text; this is the same rule for the text before trimming, so that padding
    neither makes a blank value valid nor an over-long padded one invalid."""
    edge = f"[^{CONTROL_CHARACTERS}{WHITE_SPACE}]"
    inner = f"[^{CONTROL_CHARACTERS}]{{0,{max_length - 2}}}"
    core = edge if max_length == 1 else f"{edge}(?:{inner}{edge})?"
    return f"^[{WHITE_SPACE}]*{core}[{WHITE_SPACE}]*$"


# ---------------------------------------------------------------------------- decimals


def _nonzero_fraction(places: int) -> str:
    """1 to `places` digits, not all zero."""
    options = [f"[0-9]{{{lead}}}[1-9][0-9]{{0,{places - lead - 1}}}" for lead in range(places)]
    return "(?:" + "|".join(options) + ")"


def decimal_pattern(
    *, integer_digits: int, places: int, positive: bool, at_most: Decimal | None
) -> str:
    """The plain spelling of a decimal the code accepts: ASCII digits without a sign,
    exponent or leading zeros, then optionally a point and 1 to `places` digits.
    `positive`: zero refused. `at_most`: a power of ten that bounds it (e.g. 100)."""
    fraction = f"(?:\\.[0-9]{{1,{places}}})?"
    whole = f"[1-9][0-9]{{0,{integer_digits - 1}}}"
    if at_most is not None:
        exponent = len(str(int(at_most))) - 1
        if at_most != Decimal(10) ** exponent:
            raise ValueError(f"no pattern for an upper bound of {at_most}")
        below = f"(?:0|[1-9][0-9]{{0,{exponent - 1}}}){fraction}" if exponent else f"0{fraction}"
        return f"^(?:{int(at_most)}(?:\\.0{{1,{places}}})?|{below})$"
    if positive:
        return f"^(?:{whole}{fraction}|0\\.{_nonzero_fraction(places)})$"
    return f"^(?:0|{whole}){fraction}$"


def decimal_schema(constraints: dict[str, Any]) -> dict[str, Any]:
    """A pydantic decimal's constraints (max_digits, decimal_places, gt/ge, le) as what the
    API accepts on the wire: a JSON string in the plain spelling, or a JSON number."""
    places = int(constraints["decimal_places"])
    integer_digits = int(constraints["max_digits"]) - places
    low_gt, low_ge, high = constraints.get("gt"), constraints.get("ge"), constraints.get("le")
    if (low_gt, low_ge) not in ((0, None), (None, 0)) or constraints.get("lt") is not None:
        raise ValueError(f"no document for decimal bounds {constraints}")
    positive = low_gt is not None
    at_most = None if high is None else Decimal(high)
    largest = (
        at_most if at_most is not None else Decimal(10**integer_digits) - Decimal(1).scaleb(-places)
    )
    number: dict[str, Any] = {
        "type": "number",
        "maximum": float(largest),
        "multipleOf": float(Decimal(1).scaleb(-places)),
    }
    number["exclusiveMinimum" if positive else "minimum"] = 0
    string = {
        "type": "string",
        "pattern": decimal_pattern(
            integer_digits=integer_digits, places=places, positive=positive, at_most=at_most
        ),
    }
    bound = f"at most {largest}" + ("" if positive else ", from 0")
    return {
        "anyOf": [string, number],
        "description": f"a decimal with at most {places} places, {bound}"
        + ("; greater than 0" if positive else "")
        + ' (a string such as "315.00", or a JSON number)',
        "examples": ["315.00"],
    }
