"""Reconciling a payment gateway's settlement file with the top-ups the ledger credited: the
one owner of what matches, what is missing on either side and what differs.

A line of the file and a credit (`wallet.topped_up`) are the same payment when they carry
the same gateway reference (one reference credits one wallet, once, ever: the reservation of
domain/uniqueness.py). The window (days in Cairo, where the gateways keep time) picks the
file's lines and the ledger's credits by their time of payment: the gateway's for a line,
`paid_at` for a credit, or the time the ledger credited it when the gateway never said. A
line in the window is looked up among every credit, and a credit in the window among every
line of the file, whatever their times: a callback that came after midnight, or a payment
the gateway settles a day late, is matched, not reported missing twice.

Then, for each payment:
- in the file and credited here, agreeing: matched;
- in the file as a payment that took money, not credited here: missing on our side;
- credited here, in no line of the file: missing on theirs;
- in both but disagreeing: a difference per field (the amount, the currency, the status
  when the file says no money was taken, the time of payment when both sides have one and
  they are a second or more apart: the gateway's report may drop the fraction);
- in the file as taking no money (declined, expired...) and not credited here: nothing to
  reconcile, counted only.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from uuid import UUID

from domain.calendar import CAIRO, cairo_date
from domain.money import CURRENCY

# Times of payment closer than this are the same time (a report in whole seconds).
PAID_AT_TOLERANCE = timedelta(seconds=1)


@dataclass(frozen=True, slots=True)
class SettledPayment:
    """A line of the gateway's settlement file."""

    line: int  # in the file, for the operator
    reference: str  # the gateway's reference of the payment
    amount: Decimal
    currency: str
    paid_at: datetime | None  # None: the line says no time (a payment that took no money)
    status: str  # the gateway's word
    paid: bool  # the status says money was taken


@dataclass(frozen=True, slots=True)
class Credit:
    """A top-up the ledger credited from this gateway."""

    wallet_id: UUID
    reference: str
    amount: Decimal
    paid_at: datetime | None  # the gateway's time of payment, when it told it
    at: datetime  # when the ledger credited it
    position: int

    @property
    def when(self) -> datetime:
        return self.paid_at if self.paid_at is not None else self.at


@dataclass(frozen=True, slots=True)
class Window:
    start: datetime  # inclusive
    end: datetime  # exclusive
    first_day: date
    last_day: date

    @classmethod
    def cairo_days(cls, first: date, last: date) -> Window:
        """From the start of `first` to the end of `last`, in Cairo."""
        start = datetime.combine(first, time(), CAIRO)
        end = datetime.combine(last + timedelta(days=1), time(), CAIRO)
        return cls(start, end, first, last)

    def holds(self, at: datetime | None) -> bool:
        return at is None or self.start <= at < self.end


def file_days(lines: Iterable[SettledPayment]) -> tuple[date, date] | None:
    """The first and last day (Cairo) of the file's times of payment; None when it has none."""
    days = [cairo_date(line.paid_at) for line in lines if line.paid_at is not None]
    return (min(days), max(days)) if days else None


@dataclass(frozen=True, slots=True)
class Difference:
    line: int
    reference: str
    wallet_id: UUID
    field: str  # amount, currency, status, paid_at
    theirs: str
    ours: str


@dataclass(slots=True)
class Reconciliation:
    window: Window
    lines: int = 0  # in the file
    credits: int = 0  # credited here from this gateway, ever
    matched: list[tuple[SettledPayment, Credit]] = field(default_factory=list)
    missing_here: list[SettledPayment] = field(default_factory=list)
    missing_there: list[Credit] = field(default_factory=list)
    differences: list[Difference] = field(default_factory=list)
    not_paid: int = 0  # lines that took no money, not credited here either
    outside: int = 0  # lines outside the window

    @property
    def clean(self) -> bool:
        return not (self.missing_here or self.missing_there or self.differences)


def reconcile(
    lines: list[SettledPayment], credits: Iterable[Credit], window: Window
) -> Reconciliation:
    by_reference = {credit.reference: credit for credit in credits}
    result = Reconciliation(window, lines=len(lines), credits=len(by_reference))
    in_file = {line.reference for line in lines}
    for line in lines:
        if not window.holds(line.paid_at):
            result.outside += 1
            continue
        credit = by_reference.get(line.reference)
        if credit is None:
            if line.paid:
                result.missing_here.append(line)
            else:
                result.not_paid += 1
            continue
        differences = compare(line, credit)
        if differences:
            result.differences.extend(differences)
        else:
            result.matched.append((line, credit))
    result.missing_there = [
        credit
        for reference, credit in by_reference.items()
        if reference not in in_file and window.holds(credit.when)
    ]
    return result


def compare(line: SettledPayment, credit: Credit) -> list[Difference]:
    """What a line of the file and the credit of its reference disagree on."""
    found: list[tuple[str, str, str]] = []
    if not line.paid:
        found.append(("status", line.status, "credited"))
    if line.amount != credit.amount:
        found.append(("amount", f"{line.amount:.2f}", f"{credit.amount:.2f}"))
    if line.currency != CURRENCY:
        found.append(("currency", line.currency, CURRENCY))
    if (
        line.paid_at is not None
        and credit.paid_at is not None
        and abs(line.paid_at - credit.paid_at) >= PAID_AT_TOLERANCE
    ):
        found.append(("paid_at", line.paid_at.isoformat(), credit.paid_at.isoformat()))
    return [
        Difference(line.line, line.reference, credit.wallet_id, name, theirs, ours)
        for name, theirs, ours in found
    ]
