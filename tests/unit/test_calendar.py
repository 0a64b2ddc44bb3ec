"""Benefit months and validity periods follow the calendar in Cairo."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from domain.calendar import add_months, benefit_month, cairo_date
from tests.unit.builders import utc


@pytest.mark.parametrize(
    ("at", "month"),
    [
        ("2026-01-31T21:59", "2026-01"),  # 23:59 in Cairo (UTC+2)
        ("2026-01-31T22:00", "2026-02"),  # midnight in Cairo
        ("2026-01-31T22:30", "2026-02"),  # still January in UTC
        ("2026-12-31T22:00", "2027-01"),
        # Egypt observes summer time (UTC+3) again since 2023: the month turns at 21:00 UTC.
        ("2026-04-30T20:59", "2026-04"),
        ("2026-04-30T21:00", "2026-05"),
        ("2026-08-31T21:30", "2026-09"),
        # back on UTC+2 after the last Thursday of October
        ("2026-10-31T21:30", "2026-10"),
        ("2026-10-31T22:00", "2026-11"),
    ],
)
def test_benefit_month_is_the_cairo_calendar_month(at: str, month: str) -> None:
    assert benefit_month(utc(at)) == month


def test_summer_time_changes_the_cairo_date() -> None:
    assert cairo_date(utc("2026-04-23T21:59")) == date(2026, 4, 23)  # 23:59 +02:00
    assert cairo_date(utc("2026-04-23T22:00")) == date(2026, 4, 24)  # 01:00 +03:00


def test_the_server_offset_does_not_matter() -> None:
    tokyo = timezone(timedelta(hours=9))
    assert benefit_month(datetime(2026, 2, 1, 6, 30, tzinfo=tokyo)) == "2026-01"
    assert (
        benefit_month(datetime(2026, 2, 1, 6, 30, tzinfo=tokyo) + timedelta(hours=1)) == "2026-02"
    )


def test_naive_timestamps_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        cairo_date(datetime(2026, 1, 1, 12, 0))


@pytest.mark.parametrize(
    ("day", "months", "expected"),
    [
        (date(2026, 1, 15), 12, date(2027, 1, 15)),
        (date(2026, 1, 31), 1, date(2026, 2, 28)),
        (date(2028, 1, 31), 1, date(2028, 2, 29)),
        (date(2024, 2, 29), 12, date(2025, 2, 28)),
        (date(2026, 3, 31), 1, date(2026, 4, 30)),
        (date(2026, 11, 30), 24, date(2028, 11, 30)),
        (date(2026, 12, 15), 1, date(2027, 1, 15)),
    ],
)
def test_add_months_clamps_to_the_end_of_the_month(day: date, months: int, expected: date) -> None:
    assert add_months(day, months) == expected
