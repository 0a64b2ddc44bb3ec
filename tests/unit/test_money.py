"""Money: exact EGP amounts, half-up copay rounding, proportional splits that sum exactly."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from math import floor

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.money import (
    CENT,
    MONEY,
    PERCENT,
    MoneyError,
    money,
    percent_of,
    round_half_up,
    split_proportionally,
)

cents = st.integers(min_value=0, max_value=10**11)
amounts = cents.map(lambda c: Decimal(c).scaleb(-2))
positive_amounts = st.integers(min_value=1, max_value=10**9).map(lambda c: Decimal(c).scaleb(-2))
percents = st.integers(min_value=0, max_value=10_000).map(lambda c: Decimal(c).scaleb(-2))


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("350", "350.00"), ("350.5", "350.50"), ("0.05", "0.05"), (7, "7.00"), ("-3.10", "-3.10")],
)
def test_money_normalises_to_two_places(raw: str | int, expected: str) -> None:
    result = money(raw)
    assert result == Decimal(expected)
    assert str(result) == expected


@pytest.mark.parametrize("raw", ["350.005", "0.001", "1.000", "abc", "", "NaN", "Infinity", "-inf"])
def test_money_refuses_what_is_not_an_exact_amount(raw: str) -> None:
    with pytest.raises(MoneyError):
        money(raw)


@pytest.mark.parametrize(
    ("amount", "percent", "expected"),
    [
        ("0.05", "10", "0.01"),  # 0.005 rounds half-up, not half-even to 0.00
        ("10.13", "20", "2.03"),  # 2.026
        ("0.50", "5", "0.03"),  # 0.025 half-up (half-even would give 0.02)
        ("0.15", "10", "0.02"),  # 0.015
        ("0.14", "10", "0.01"),  # 0.014
        ("350.00", "10", "35.00"),
        ("99.99", "0", "0.00"),
        ("99.99", "100", "99.99"),
        ("1.00", "12.5", "0.13"),  # 0.125
    ],
)
def test_percent_of_rounds_half_up_to_the_cent(amount: str, percent: str, expected: str) -> None:
    assert percent_of(Decimal(amount), Decimal(percent)) == Decimal(expected)


def test_round_half_up_at_the_midpoint() -> None:
    assert round_half_up(Decimal("2.345")) == Decimal("2.35")
    assert round_half_up(Decimal("2.3449")) == Decimal("2.34")


def test_split_of_an_uneven_amount_gives_the_spare_cent_to_the_largest_remainder() -> None:
    assert split_proportionally(Decimal("0.10"), [Decimal(1)] * 3) == [
        Decimal("0.04"),
        Decimal("0.03"),
        Decimal("0.03"),
    ]
    assert split_proportionally(Decimal("1.00"), [Decimal("1"), Decimal("2")]) == [
        Decimal("0.33"),
        Decimal("0.67"),
    ]


def test_split_of_nothing_is_nothing() -> None:
    assert split_proportionally(Decimal("5.00"), []) == []
    assert split_proportionally(Decimal("0.00"), [Decimal(1), Decimal(2)]) == [Decimal("0.00")] * 2


@settings(deadline=None)
@given(cents)
def test_money_keeps_every_two_place_amount(value: int) -> None:
    amount = Decimal(value).scaleb(-2)
    assert money(str(amount)) == amount
    assert money(amount).as_tuple().exponent == -2


@settings(deadline=None)
@given(cents, st.integers(min_value=1, max_value=9))
def test_money_refuses_a_third_decimal_place(value: int, third: int) -> None:
    with pytest.raises(MoneyError):
        money(Decimal(value * 10 + third).scaleb(-3))


@settings(deadline=None)
@given(amounts, percents)
def test_percent_of_is_the_exact_share_rounded_half_up(amount: Decimal, percent: Decimal) -> None:
    exact_cents = Fraction(amount) * Fraction(percent) / 100 * 100
    expected = Decimal(floor(exact_cents + Fraction(1, 2))).scaleb(-2)
    result = percent_of(amount, percent)
    assert result == expected
    assert result.as_tuple().exponent == -2


@settings(deadline=None)
@given(amounts, percents)
def test_copay_and_covered_make_up_the_total(total: Decimal, percent: Decimal) -> None:
    copay = percent_of(total, percent)
    covered = total - copay
    assert copay + covered == total
    assert Decimal(0) <= copay <= total


@settings(deadline=None)
@given(amounts, st.lists(positive_amounts, min_size=1, max_size=12))
def test_split_parts_sum_exactly_and_stay_within_a_cent(
    total: Decimal, weights: list[Decimal]
) -> None:
    parts = split_proportionally(total, weights)
    assert len(parts) == len(weights)
    assert sum(parts, Decimal(0)) == total
    weight_sum = sum((Fraction(w) for w in weights), Fraction(0))
    for part, weight in zip(parts, weights, strict=True):
        assert part.as_tuple().exponent == -2
        assert part >= 0
        exact = Fraction(total) * Fraction(weight) / weight_sum
        assert abs(Fraction(part) - exact) < Fraction(CENT)


# ------------------------------------------------------------------ the input spelling


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("350.00", "350.00"),
        ("350", "350.00"),
        ("0.5", "0.50"),
        ("9999999999.99", "9999999999.99"),
        (350, "350.00"),
        (350.5, "350.50"),
        (100.0, "100.00"),
        (9999999999.99, "9999999999.99"),
    ],
)
def test_money_input_takes_the_plain_spelling(raw: object, expected: str) -> None:
    result = MONEY.parse(raw)
    assert str(result) == expected


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        ("1_000.00", "plain decimal"),
        ("\u0661\u0660\u0660", "plain decimal"),  # Arabic-Indic 100
        ("\uff11\uff12", "plain decimal"),  # full-width 12
        ("1E+2", "plain decimal"),
        ("1e2", "plain decimal"),
        (" 1.00", "plain decimal"),
        ("1.00 ", "plain decimal"),
        ("1.00\n", "plain decimal"),
        ("NaN", "plain decimal"),
        ("Infinity", "plain decimal"),
        ("007", "plain decimal"),
        (".5", "plain decimal"),
        ("5.", "plain decimal"),
        ("1,000.00", "plain decimal"),
        ("", "plain decimal"),
        ("-1", "sign"),
        ("+1", "sign"),
        ("-0.00", "sign"),
        ("0", "greater than zero"),
        ("0.00", "greater than zero"),
        (0, "greater than zero"),
        (-1, "sign"),
        (-0.0, "sign"),
        ("350.001", "two decimal places"),
        ("10000000000.00", "at most 9,999,999,999.99"),
        pytest.param("1" * 100_000, "at most 9,999,999,999.99", id="100k-digits"),
        (10**10, "at most 9,999,999,999.99"),
        pytest.param(10**5000, "at most 9,999,999,999.99", id="huge-int"),  # refused unprinted
        (1e16, "at most 9,999,999,999.99"),
        (12345678901234567890.12, "at most 9,999,999,999.99"),
        (float("nan"), "finite"),
        (float("inf"), "finite"),
        (True, "number or a string"),
        (None, "number or a string"),
        ([1], "number or a string"),
    ],
)
def test_money_input_refuses_every_other_spelling(raw: object, why: str) -> None:
    with pytest.raises(MoneyError, match=why):
        MONEY.parse(raw)


def test_percent_input_is_spelt_like_money_within_0_to_100() -> None:
    assert PERCENT.parse("100") == Decimal("100.00")
    assert PERCENT.parse(0) == Decimal("0.00")
    assert PERCENT.parse("12.5") == Decimal("12.50")
    for bad, why in (("100.01", "from 0 to 100"), ("1000", "from 0 to 100"), ("-0", "sign")):
        with pytest.raises(MoneyError, match=why):
            PERCENT.parse(bad)


@settings(deadline=None)
@given(cents)
def test_money_input_reads_back_every_amount_it_prints(value: int) -> None:
    amount = Decimal(value).scaleb(-2)
    if 0 < amount < 10**10:
        assert MONEY.parse(str(amount)) == amount
        assert MONEY.parse(float(amount)) == amount  # a JSON number of at most 12 digits
