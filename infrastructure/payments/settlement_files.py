"""The gateways' settlement files, as `healthpay payments reconcile` reads them: CSV, UTF-8 (a
byte-order mark allowed), a header line naming the columns, then one line per payment with
its current status. The columns are found by their names, in any order; other columns are
ignored (the portals' exports carry many). The names are the gateways' own, as their
callbacks spell them:

- fawry: `fawryRefNumber` (the reference), `orderAmount` (EGP, at most two decimals: what
  the wallet gets, not `paymentAmount`, which adds Fawry's fees), `currencyCode`,
  `paymentTime`, `orderStatus` (PAID took money; NEW, CANCELED, REFUNDED, EXPIRED,
  PARTIAL_REFUNDED and FAILED did not);
- paymob: `id` (the transaction id), `amount_cents` (whole piastres), `currency`,
  `created_at`, `status` (success took money; pending, declined, voided, refunded,
  authorized and not_a_payment did not: the words the callback's flags give, paymob.py).

A time is ISO 8601 (`2026-12-03T10:15:00+02:00`, `2026-12-03 10:15:00`: without an offset,
Cairo's, payments/__init__.py gateway_time), or for Fawry milliseconds since 1970 as its
notification sends `paymentTime`; a line that took no money may leave it empty.

A file that breaks any of this is refused whole, with the line and the column of the first
fault: reconciling the lines that happen to parse would report the rest as missing.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path

from domain.money import MONEY, MoneyError
from domain.wallet.reconciliation import SettledPayment
from infrastructure.payments import fawry, gateway_time, paymob

_CURRENCY = re.compile(r"[A-Z]{3}", re.ASCII)
_CENTS = re.compile(r"0|[1-9][0-9]{0,11}", re.ASCII)
_MILLISECONDS = re.compile(r"[0-9]{1,18}", re.ASCII)
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


class SettlementFileError(ValueError):
    """The file is not a settlement file of the layout; the message says where and why."""


def _cents(text: str) -> Decimal:
    if _CENTS.fullmatch(text) is None:
        raise MoneyError("must be whole piastres: ASCII digits without leading zeros")
    return MONEY.parse(format(Decimal(text) / 100, "f"))


def _fawry_time(text: str) -> datetime | None:
    if _MILLISECONDS.fullmatch(text):
        return fawry.payment_time(int(text))
    return gateway_time(text)


@dataclass(frozen=True, slots=True)
class Layout:
    title: str
    reference: str
    amount: str
    currency: str
    paid_at: str
    status: str
    statuses: frozenset[str]
    paid_status: str
    amount_of: Callable[[str], Decimal]  # raises MoneyError, saying why
    time_of: Callable[[str], datetime | None]  # None: not a time

    @property
    def columns(self) -> tuple[str, ...]:
        return (self.reference, self.amount, self.currency, self.paid_at, self.status)


LAYOUTS: dict[str, Layout] = {
    fawry.GATEWAY: Layout(
        "Fawry",
        "fawryRefNumber",
        "orderAmount",
        "currencyCode",
        "paymentTime",
        "orderStatus",
        fawry.STATUSES,
        fawry.PAID,
        MONEY.parse,
        _fawry_time,
    ),
    paymob.GATEWAY: Layout(
        "Paymob",
        "id",
        "amount_cents",
        "currency",
        "created_at",
        "status",
        paymob.STATUSES,
        paymob.SUCCESS,
        _cents,
        gateway_time,
    ),
}


def read(path: Path, gateway: str) -> list[SettledPayment]:
    """Every line of the file at `path`, in the `gateway`'s layout; SettlementFileError names
    the file, the line and the column of the first fault."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SettlementFileError(f"{path}: {exc.strerror}") from exc
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise SettlementFileError(f"{path}: line {line}: not UTF-8 text") from exc
    rows = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        return list(_payments(rows, LAYOUTS[gateway], lambda: rows.line_num))
    except csv.Error as exc:
        raise SettlementFileError(f"{path}: line {rows.line_num}: {exc}") from exc
    except _Fault as fault:
        raise SettlementFileError(f"{path}: {fault}") from None


class _Fault(Exception):
    pass


def _payments(
    rows: Iterator[list[str]], layout: Layout, line_number: Callable[[], int]
) -> Iterator[SettledPayment]:
    header = [name.strip() for name in next(rows, [])]
    index = _columns(header, layout)
    first_line: dict[str, int] = {}
    for row in rows:
        line = line_number()
        if not any(cell.strip() for cell in row):
            continue  # a blank line (the export's last, often)
        if len(row) != len(header):
            raise _Fault(f"line {line}: {len(row)} fields, the header has {len(header)}")
        payment = _payment(line, row, index, layout)
        if payment.reference in first_line:
            column = index[layout.reference]
            raise _Fault(
                f"line {line}, column {column + 1} ({layout.reference}): "
                f"{payment.reference!r} is on line {first_line[payment.reference]} too"
            )
        first_line[payment.reference] = line
        yield payment


def _columns(header: list[str], layout: Layout) -> dict[str, int]:
    if not any(header):
        raise _Fault("line 1: no header line (the file is empty)")
    seen: dict[str, int] = {}
    for position, name in enumerate(header):
        if name in seen:
            raise _Fault(f"line 1, column {position + 1}: {name!r} again (column {seen[name] + 1})")
        seen[name] = position
    for name in layout.columns:
        if name not in seen:
            raise _Fault(
                f"line 1: no column {name!r}; a {layout.title} settlement file has the columns "
                f"{', '.join(layout.columns)} (in any order; others are ignored)"
            )
    return seen


def _payment(line: int, row: list[str], index: dict[str, int], layout: Layout) -> SettledPayment:
    def cell(name: str) -> str:
        return row[index[name]].strip()

    def fault(name: str, why: str) -> _Fault:
        return _Fault(f"line {line}, column {index[name] + 1} ({name}): {why}")

    reference, currency, status = cell(layout.reference), cell(layout.currency), cell(layout.status)
    if not reference or _CONTROL.search(reference):
        raise fault(layout.reference, "empty" if not reference else "holds a control character")
    try:
        amount = layout.amount_of(cell(layout.amount))
    except MoneyError as exc:
        raise fault(layout.amount, f"{cell(layout.amount)!r} {exc}") from None
    if _CURRENCY.fullmatch(currency) is None:
        raise fault(layout.currency, f"{currency!r} is not a currency code (three capitals: EGP)")
    if status not in layout.statuses:
        known = ", ".join(sorted(layout.statuses))
        raise fault(layout.status, f"{status!r} is not one of {layout.title}'s ({known})")
    paid = status == layout.paid_status
    when = cell(layout.paid_at)
    paid_at = layout.time_of(when) if when else None
    if when and paid_at is None:
        raise fault(
            layout.paid_at,
            f"{when!r} is not a time (ISO 8601, e.g. 2026-12-03T10:15:00+02:00; without an"
            " offset, Cairo's)",
        )
    if paid and paid_at is None:
        raise fault(layout.paid_at, f"empty, and the line says {status}: when was it paid?")
    return SettledPayment(line, reference, amount, currency, paid_at, status, paid)
