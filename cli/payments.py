"""`healthpay payments reconcile FILE --gateway fawry|paymob [--from DATE --to DATE]`: a
gateway's settlement file (infrastructure/payments/settlement_files.py says its layout)
against the top-ups the ledger credited from that gateway (its `wallet.topped_up` events),
compared as domain/wallet/reconciliation.py says.

Exit status: 0 when everything in the window matches, 1 when anything is missing on either
side or differs, 2 when the file or an argument is refused (nothing compared).
"""

from __future__ import annotations

import re
import sys
from datetime import date, datetime
from pathlib import Path
from typing import Any

import orjson
import psycopg
from psycopg import IsolationLevel, sql

from domain.events import WalletToppedUp
from domain.upcasting import event_from_payload
from domain.wallet.reconciliation import (
    Credit,
    Reconciliation,
    SettledPayment,
    Window,
    file_days,
    reconcile,
)
from infrastructure.eventstore import log_reads
from infrastructure.eventstore.port import RecordedEvent
from infrastructure.payments import settlement_files

PAGE = 2000
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", re.ASCII)
# The gateway's top-ups, in log order (the one reader of the log: log_reads).
_TOP_UPS = log_reads.from_query(
    "AND e.event_type = {event_type} AND e.event_data->>'gateway' = {gateway}"
)


class UsageError(ValueError):
    pass


def credits(conninfo: str, gateway: str) -> list[Credit]:
    """Every top-up credited from `gateway`, as of one snapshot of the event store."""
    query = sql.SQL(_TOP_UPS).format(
        event_type=sql.Literal(WalletToppedUp.event_type), gateway=sql.Literal(gateway)
    )
    found: list[Credit] = []
    with psycopg.connect(conninfo) as conn:
        conn.isolation_level = IsolationLevel.REPEATABLE_READ
        conn.read_only = True
        with conn.transaction():
            after = log_reads.LOG_START
            while True:
                events, after = log_reads.read_from(conn, after, PAGE, query)
                found.extend(_credit(event) for event in events)
                if len(events) < PAGE:
                    return found


def _credit(event: RecordedEvent) -> Credit:
    top_up = event_from_payload(event.event_type, event.schema_version, event.data)
    assert isinstance(top_up, WalletToppedUp)
    return Credit(
        event.aggregate_id,
        top_up.gateway_reference,
        top_up.amount,
        top_up.paid_at,
        top_up.at,
        event.position,
    )


def _day(text: str, option: str) -> date:
    try:
        if _DAY.fullmatch(text) is None:
            raise ValueError
        return date.fromisoformat(text)
    except ValueError:
        raise UsageError(f"{option} {text!r} is not a date (YYYY-MM-DD)") from None


def window(lines: list[SettledPayment], first: str | None, last: str | None) -> Window:
    """The days asked for; a bound not given is the file's first or last day of payment."""
    days = file_days(lines)
    start = _day(first, "--from") if first is not None else _file_day(days, 0)
    end = _day(last, "--to") if last is not None else _file_day(days, 1)
    if start > end:
        raise UsageError(f"--from {start} is after --to {end}")
    return Window.cairo_days(start, end)


def _file_day(days: tuple[date, date] | None, which: int) -> date:
    if days is None:
        raise UsageError("the file has no time of payment: give the days with --from and --to")
    return days[which]


def run(
    conninfo: str, path: Path, gateway: str, first: str | None, last: str | None, fmt: str
) -> int:
    try:
        lines = settlement_files.read(path, gateway)
        days = window(lines, first, last)
    except (settlement_files.SettlementFileError, UsageError) as exc:
        print(f"healthpay payments reconcile: {exc}", file=sys.stderr)
        return 2
    result = reconcile(lines, credits(conninfo, gateway), days)
    if fmt == "json":
        body = as_json(result, gateway, path)
        sys.stdout.write(orjson.dumps(body, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        sys.stdout.write("".join(line + "\n" for line in as_text(result, gateway, path)))
    return 0 if result.clean else 1


def _at(at: datetime | None) -> str | None:
    return None if at is None else at.isoformat()


def _line(line: SettledPayment) -> dict[str, Any]:
    return {
        "line": line.line,
        "reference": line.reference,
        "amount": f"{line.amount:.2f}",
        "currency": line.currency,
        "paidAt": _at(line.paid_at),
        "status": line.status,
    }


def _credited(credit: Credit) -> dict[str, Any]:
    return {
        "reference": credit.reference,
        "walletId": str(credit.wallet_id),
        "amount": f"{credit.amount:.2f}",
        "paidAt": _at(credit.paid_at),
        "creditedAt": credit.at.isoformat(),
        "position": credit.position,
    }


def as_json(result: Reconciliation, gateway: str, path: Path) -> dict[str, Any]:
    return {
        "gateway": gateway,
        "file": str(path),
        "from": result.window.first_day.isoformat(),
        "to": result.window.last_day.isoformat(),
        "linesInFile": result.lines,
        "matched": [
            {"line": line.line, "reference": line.reference, "walletId": str(credit.wallet_id)}
            for line, credit in result.matched
        ],
        "missingOnOurSide": [_line(line) for line in result.missing_here],
        "missingOnTheirs": [_credited(credit) for credit in result.missing_there],
        "differences": [
            {
                "line": d.line,
                "reference": d.reference,
                "walletId": str(d.wallet_id),
                "field": d.field,
                "file": d.theirs,
                "ledger": d.ours,
            }
            for d in result.differences
        ],
        "notPaidNotCredited": result.not_paid,
        "outsideTheWindow": result.outside,
        "clean": result.clean,
    }


def as_text(result: Reconciliation, gateway: str, path: Path) -> list[str]:
    window = result.window
    out = [
        f"{gateway} settlement file {path}: {window.first_day} to {window.last_day} (Cairo),"
        f" {result.lines} lines",
        f"matched: {len(result.matched)}",
        f"missing on our side (in the file, not credited here): {len(result.missing_here)}",
    ]
    out += [
        f"  line {x.line}: {x.reference} {x.amount:.2f} {x.currency} {x.status}"
        f" paid {_at(x.paid_at)}"
        for x in result.missing_here
    ]
    out.append(f"missing on theirs (credited here, not in the file): {len(result.missing_there)}")
    out += [
        f"  {c.reference} {c.amount:.2f} to wallet {c.wallet_id} (position {c.position})"
        f" paid {_at(c.paid_at) or 'not told'}, credited {c.at.isoformat()}"
        for c in result.missing_there
    ]
    out.append(f"differences: {len(result.differences)}")
    out += [
        f"  line {d.line}: {d.reference} (wallet {d.wallet_id}) {d.field}:"
        f" file {d.theirs}, ledger {d.ours}"
        for d in result.differences
    ]
    out.append(f"took no money and not credited (nothing to reconcile): {result.not_paid}")
    out.append(f"outside the window: {result.outside}")
    out.append("all matched" if result.clean else "NOT RECONCILED")
    return out
