"""A pharmacy's statement: what its arguments mean, read one way by the REST read
(api_gateway/rest.py) and the GraphQL field (api_gateway/graphql/arguments.py).

`from` and `to` bound the claims' `claimedAt`, both inclusive: a date (YYYY-MM-DD) is the
whole day in Cairo (the benefit calendar's zone, domain/calendar.py), an RFC 3339 date-time
with an offset is that instant. `status` is a claim's status (its decision, or "reversed").
Who may read whose statement is api_gateway/access.py's rule; the page size and the keyset
cursor are the claim pages' own (api_gateway/freshness.py).
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import get_args

from api_gateway.read_models import ClaimFilter
from domain.calendar import CAIRO
from infrastructure.http.problems import Problem
from schemas.api.reads import ClaimStatus

STATUSES: tuple[str, ...] = get_args(ClaimStatus)
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
# RFC 3339 §5.6 (T and Z in either case); a second of 60 (a leap second) is refused
_DATE_TIME = re.compile(
    r"([0-9]{4}-[0-9]{2}-[0-9]{2})[Tt]([0-9]{2}:[0-9]{2}:[0-9]{2})(\.[0-9]+)?"
    r"([Zz]|[+-][0-9]{2}:[0-9]{2})"
)
_AN_INSTANT = "a date (YYYY-MM-DD) or an RFC 3339 date-time with an offset"


def invalid(parameter: str, detail: str) -> Problem:
    """A 400 naming the parameter, in its code and in `errors`."""
    return Problem(
        400,
        f"invalid_{parameter}",
        detail,
        errors=[{"field": parameter, "message": detail, "type": "invalid"}],
    )


def _bound(parameter: str, raw: str, *, upper: bool) -> datetime | None:
    """`raw` as a bound of the half-open range [since, until) of claimed_at: the first
    instant it includes (`from`) or the first after it (`to`); None when that is past the
    calendar's end (no bound)."""
    try:
        if _DATE.fullmatch(raw):
            day = date.fromisoformat(raw)
            if upper:
                day += timedelta(days=1)
            return datetime(day.year, day.month, day.day, tzinfo=CAIRO)
        found = _DATE_TIME.fullmatch(raw)
        if found is None:
            raise invalid(parameter, f"{parameter} must be {_AN_INSTANT}")
        day_text, time_text, fraction, offset = found.groups()
        # PostgreSQL keeps microseconds: further digits cannot tell two claims apart
        offset = "+00:00" if offset in ("Z", "z") else offset
        at = datetime.fromisoformat(f"{day_text}T{time_text}{(fraction or '')[:7]}{offset}")
        return at + timedelta(microseconds=1) if upper else at
    except OverflowError:
        return None  # only the day or microsecond after 9999-12-31 23:59:59.999999 overflows
    except ValueError as exc:  # a day or time that does not exist (2023-02-29, 24:00:00)
        raise invalid(parameter, f"{parameter} must be {_AN_INSTANT}") from exc


_EARLIEST, _LATEST = datetime.min.replace(tzinfo=UTC), datetime.max.replace(tzinfo=UTC)


def _utc(at: datetime | None) -> datetime | None:
    """`at` in UTC, clamped to the years 1 to 9999 Python holds: PostgreSQL takes offsets
    only up to 15:59 (RFC 3339 writes up to 23:59), and no claim is outside those years."""
    if at is None:
        return None
    try:
        return at.astimezone(UTC)
    except OverflowError:
        offset = at.utcoffset()
        return _EARLIEST if offset is not None and offset > timedelta(0) else _LATEST


def statement_filter(since: str | None, until: str | None, status: str | None) -> ClaimFilter:
    """The filter the arguments `from`, `to` and `status` ask for; a 400 Problem naming the
    argument when one is not what it must be, or when `from` is after `to`."""
    low = None if since is None else _bound("from", since, upper=False)
    high = None if until is None else _bound("to", until, upper=True)
    if low is not None and high is not None and low >= high:
        raise Problem(
            400,
            "invalid_range",
            "from must not be after to",
            errors=[
                {"field": "from", "message": "after to", "type": "invalid"},
                {"field": "to", "message": "before from", "type": "invalid"},
            ],
        )
    if status is not None and status not in STATUSES:
        raise invalid("status", f"status must be one of {', '.join(STATUSES)}")
    return ClaimFilter(_utc(low), _utc(high), status)
