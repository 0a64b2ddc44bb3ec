"""Benefit months are calendar months in Cairo, whatever the server's time zone."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

CAIRO = ZoneInfo("Africa/Cairo")


def cairo_date(at: datetime) -> date:
    if at.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware")
    return at.astimezone(CAIRO).date()


def benefit_month(at: datetime) -> str:
    return month_of(cairo_date(at))


def month_of(local: date) -> str:
    """The benefit month of a Cairo day (for a caller that has the day already: converting
    a time to Cairo's costs ~4 µs, on the claim path)."""
    return f"{local.year:04d}-{local.month:02d}"


def add_months(day: date, months: int) -> date:
    """Same day `months` later, clamped to the month's last day (Jan 31 + 1 -> Feb 28 or 29)."""
    index = day.year * 12 + (day.month - 1) + months
    year, month = divmod(index, 12)
    month += 1
    for candidate in (day.day, 30, 29, 28):
        try:
            return date(year, month, min(day.day, candidate))
        except ValueError:
            continue
    raise AssertionError("unreachable: every month has 28 days")
