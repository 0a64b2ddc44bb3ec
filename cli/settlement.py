"""`healthpay settlement report --period YYYY-MM`: what each insurer owes each pharmacy for a
month, from the ledger's postings in the event store (domain/settlement.py), as CSV or JSON."""

from __future__ import annotations

import csv
import re
import sys
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from typing import Any

import orjson
import psycopg

from domain.calendar import CAIRO
from domain.events import (
    ClaimAdjudicated,
    ClaimReversed,
    MedCardIssued,
    WalletDebited,
    WalletRefunded,
)
from domain.settlement import Recorded, SettlementLine, settle
from domain.upcasting import event_from_payload
from infrastructure.eventstore.log_queries import events_of_types_before

# What settlement reads; everything else in the log is left in the database.
_TYPES = [
    cls.event_type
    for cls in (MedCardIssued, ClaimAdjudicated, ClaimReversed, WalletDebited, WalletRefunded)
]
_PERIOD = re.compile(r"(\d{4})-(0[1-9]|1[0-2])")
COLUMNS = (
    "period", "insurer", "pharmacy", "claims", "reversals", "covered", "reversed",
    "net_covered", "copay_from_wallets", "copay_refunded", "net_copay",
)  # fmt: skip


class PeriodError(ValueError):
    pass


def month_end(period: str) -> datetime:
    """The first instant after the month, in Cairo (where benefit months are counted)."""
    match = _PERIOD.fullmatch(period)
    if match is None:
        raise PeriodError(f"period {period!r} is not YYYY-MM")
    year, month = int(match[1]), int(match[2])
    year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return datetime(year, month, 1, tzinfo=CAIRO)


def _recorded(conninfo: str, until: datetime) -> Iterator[Recorded]:
    # a server-side cursor (in a transaction): the log up to the month may be large
    with psycopg.connect(conninfo, autocommit=True) as conn:
        for aggregate_id, event_type, version, data, at in events_of_types_before(
            conn, _TYPES, until, name="settlement"
        ):
            yield Recorded(aggregate_id, event_from_payload(event_type, version, data), at)


def report(
    conninfo: str, period: str, insurer: str | None = None, pharmacy: str | None = None
) -> list[SettlementLine]:
    lines = settle(period, _recorded(conninfo, month_end(period)))
    return [
        line
        for line in lines
        if (insurer is None or line.insurer in {insurer, f"insurer:{insurer}"})
        and (pharmacy is None or line.pharmacy in {pharmacy, f"pharmacy:{pharmacy}"})
    ]


def as_row(line: SettlementLine) -> dict[str, Any]:
    values: dict[str, Any] = {name: getattr(line, name) for name in COLUMNS}
    return {k: f"{v:.2f}" if isinstance(v, Decimal) else v for k, v in values.items()}


def run(conninfo: str, period: str, insurer: str | None, pharmacy: str | None, fmt: str) -> int:
    try:
        lines = report(conninfo, period, insurer, pharmacy)
    except PeriodError as exc:
        print(f"healthpay settlement: {exc}", file=sys.stderr)
        return 2
    rows = [as_row(line) for line in lines]
    if fmt == "json":
        sys.stdout.write(orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        writer = csv.DictWriter(sys.stdout, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return 0
