"""Egyptian national ids, mobile numbers and Luhn card numbers."""

from __future__ import annotations

from datetime import date
from random import Random

import pytest

from domain.identity import (
    GOVERNORATES,
    IdentityError,
    check_national_id,
    luhn_check_digit,
    luhn_valid,
    national_id_birth_date,
    new_card_number,
    normalize_mobile,
)

TODAY = date(2026, 1, 15)


@pytest.mark.parametrize(
    ("nid", "born"),
    [
        ("29005170112345", date(1990, 5, 17)),  # century digit 2: 1900s, Cairo
        ("30001010212345", date(2000, 1, 1)),  # century digit 3: 2000s, Alexandria
        ("30002290112345", date(2000, 2, 29)),  # leap day in a leap year
        ("29602290112345", date(1996, 2, 29)),
        ("29912318812345", date(1999, 12, 31)),  # 88: born abroad
        ("32601150112345", date(2026, 1, 15)),  # born today
    ],
)
def test_valid_national_ids_give_the_birth_date(nid: str, born: date) -> None:
    assert national_id_birth_date(nid) == born
    check_national_id(nid, born, TODAY)


@pytest.mark.parametrize(
    "nid",
    [
        "2900517011234",  # 13 digits
        "290051701123456",  # 15 digits
        "",
        "2900517011234a",
        "29005 17011234",
        "٢٩٠٠٥١٧٠١١٢٣٤٥",  # Arabic-Indic digits are digits, but not ours
        "19005170112345",  # century digit 1
        "49005170112345",  # century digit 4
        "09005170112345",
        "29013170112345",  # month 13
        "29000170112345",  # month 00
        "29002300112345",  # 30 February
        "29004310112345",  # 31 April
        "29005000112345",  # day 00
        "20002290112345",  # 29 Feb 1900: not a leap year
        "30102290112345",  # 29 Feb 2001
        "29005170512345",  # governorate 05 unknown
        "29005170012345",  # governorate 00 unknown
        "29005179912345",  # governorate 99 unknown
    ],
)
def test_malformed_national_ids_are_refused(nid: str) -> None:
    with pytest.raises(IdentityError) as info:
        national_id_birth_date(nid)
    assert info.value.code == "invalid_national_id"


def test_every_listed_governorate_code_is_accepted() -> None:
    for code in GOVERNORATES:
        assert national_id_birth_date(f"2900517{code}12345") == date(1990, 5, 17)


def test_birth_date_must_match_the_national_id() -> None:
    with pytest.raises(IdentityError) as info:
        check_national_id("29005170112345", date(1990, 5, 18), TODAY)
    assert info.value.code == "national_id_birth_date_mismatch"


def test_birth_date_in_the_future_is_refused() -> None:
    with pytest.raises(IdentityError) as info:
        check_national_id("32601160112345", date(2026, 1, 16), TODAY)
    assert info.value.code == "invalid_national_id"


@pytest.mark.parametrize(
    ("raw", "e164"),
    [
        ("01012345678", "+201012345678"),
        ("01112345678", "+201112345678"),
        ("01212345678", "+201212345678"),
        ("01512345678", "+201512345678"),
        ("+201012345678", "+201012345678"),
        ("+201512345678", "+201512345678"),
        ("00201112345678", "+201112345678"),
        ("010 1234 5678", "+201012345678"),
        ("012-1234-5678", "+201212345678"),
    ],
)
def test_egyptian_mobiles_are_normalised_to_e164(raw: str, e164: str) -> None:
    assert normalize_mobile(raw) == e164


@pytest.mark.parametrize(
    "raw",
    [
        "01312345678",  # 013 is not a mobile operator
        "01412345678",
        "01612345678",
        "0101234567",  # one digit short
        "010123456789",  # one digit long
        "+2001012345678",  # trunk zero after the country code
        "+211012345678",
        "0201012345678",
        "0221234567",  # Cairo landline
        "0101234567x",
        "010\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668",  # Arabic-Indic digits
        "",
    ],
)
def test_other_numbers_are_not_egyptian_mobiles(raw: str) -> None:
    with pytest.raises(IdentityError) as info:
        normalize_mobile(raw)
    assert info.value.code == "invalid_phone_number"


@pytest.mark.parametrize(
    ("number", "valid"),
    [
        ("4539578763621486", True),
        ("4539578763621487", False),
        ("79927398713", True),
        ("79927398710", False),
        ("0000000000000000", True),
        ("453957876362148a", False),
        ("", False),
    ],
)
def test_luhn(number: str, valid: bool) -> None:
    assert luhn_valid(number) is valid


def test_generated_card_numbers_are_16_luhn_valid_digits() -> None:
    rng = Random(7)
    for _ in range(200):
        number = new_card_number(rng)
        assert len(number) == 16
        assert number.startswith("6048")
        assert luhn_valid(number)
        assert luhn_check_digit(number[:-1]) == number[-1]
