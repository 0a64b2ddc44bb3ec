"""Egyptian national ids, mobile numbers and card numbers."""

from __future__ import annotations

import re
from datetime import date
from random import Random

# Governorate codes used in the 14-digit national id (digits 8-9).
GOVERNORATES: frozenset[str] = frozenset(
    {
        "01", "02", "03", "04", "11", "12", "13", "14", "15", "16", "17", "18", "19",
        "21", "22", "23", "24", "25", "26", "27", "28", "29", "31", "32", "33", "34", "35", "88",
    }
)  # fmt: skip
_CENTURY = {"2": 1900, "3": 2000}
# ASCII only: \d would also match Arabic-Indic and other scripts' digits, stored as they came.
_MOBILE = re.compile(r"^(?:\+20|0020|0)?(1[0125][0-9]{8})$")


class IdentityError(ValueError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def national_id_birth_date(national_id: str) -> date:
    """Checks structure, century digit, birth date and governorate; returns the birth date."""
    if len(national_id) != 14 or not national_id.isascii() or not national_id.isdigit():
        raise IdentityError("invalid_national_id", "national id must be exactly 14 digits")
    century = _CENTURY.get(national_id[0])
    if century is None:
        raise IdentityError("invalid_national_id", "national id century digit must be 2 or 3")
    try:
        born = date(century + int(national_id[1:3]), int(national_id[3:5]), int(national_id[5:7]))
    except ValueError as exc:
        raise IdentityError("invalid_national_id", "national id holds no valid date") from exc
    if national_id[7:9] not in GOVERNORATES:
        raise IdentityError("invalid_national_id", "national id governorate code is unknown")
    return born


def check_national_id(national_id: str, date_of_birth: date, today: date) -> None:
    born = national_id_birth_date(national_id)
    if born != date_of_birth:
        raise IdentityError(
            "national_id_birth_date_mismatch", "national id does not match the date of birth"
        )
    if born > today:
        raise IdentityError("invalid_national_id", "date of birth is in the future")


def normalize_mobile(number: str) -> str:
    """Egyptian mobile (010, 011, 012, 015) in E.164: +201XXXXXXXXX."""
    match = _MOBILE.match(number.replace(" ", "").replace("-", ""))
    if match is None:
        raise IdentityError("invalid_phone_number", "not an Egyptian mobile number")
    return "+20" + match.group(1)


def luhn_valid(number: str) -> bool:
    if not number.isascii() or not number.isdigit():
        return False
    total = 0
    for i, ch in enumerate(reversed(number)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def luhn_check_digit(partial: str) -> str:
    for digit in "0123456789":
        if luhn_valid(partial + digit):
            return digit
    raise AssertionError("unreachable: one of ten digits always completes a Luhn number")


CARD_PREFIX = "6048"


def new_card_number(rng: Random) -> str:
    body = CARD_PREFIX + "".join(rng.choice("0123456789") for _ in range(11))
    return body + luhn_check_digit(body)
