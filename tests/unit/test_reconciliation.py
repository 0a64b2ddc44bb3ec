"""What a settlement file's line and a credit are to each other (domain/wallet/reconciliation.py):
times at the window's edges, the time tolerance, a status that took no money."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from uuid import uuid4

from domain.calendar import CAIRO
from domain.wallet.model import GATEWAYS
from domain.wallet.reconciliation import Credit, SettledPayment, Window, file_days, reconcile
from infrastructure.payments.settlement_files import LAYOUTS

DAY = Window.cairo_days(date(2026, 12, 3), date(2026, 12, 3))
WALLET = uuid4()


def line(
    reference: str,
    paid_at: datetime | None,
    amount: str = "100.00",
    status: str = "PAID",
    number: int = 2,
) -> SettledPayment:
    return SettledPayment(
        number, reference, Decimal(amount), "EGP", paid_at, status, paid=status == "PAID"
    )


def credit(
    reference: str, paid_at: datetime | None, at: datetime, amount: str = "100.00"
) -> Credit:
    return Credit(WALLET, reference, Decimal(amount), paid_at, at, position=7)


def cairo(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=CAIRO)


def test_the_window_is_whole_days_in_cairo_summer_time_included() -> None:
    assert DAY.start == datetime(2026, 12, 2, 22, 0, tzinfo=UTC)  # UTC+2
    assert DAY.end == datetime(2026, 12, 3, 22, 0, tzinfo=UTC)
    summer = Window.cairo_days(date(2026, 7, 1), date(2026, 7, 2))
    assert (summer.start, summer.end) == (
        datetime(2026, 6, 30, 21, 0, tzinfo=UTC),  # UTC+3
        datetime(2026, 7, 2, 21, 0, tzinfo=UTC),
    )
    assert DAY.holds(DAY.start)
    assert not DAY.holds(DAY.end)


def test_a_callback_after_midnight_matches_its_line_and_is_not_missing_twice() -> None:
    paid = cairo("2026-12-03T23:59:50")
    late = cairo("2026-12-04T00:00:30")  # credited after midnight, the gateway told no time
    result = reconcile([line("R1", paid)], [credit("R1", None, late)], DAY)
    assert [(x.reference, c.reference) for x, c in result.matched] == [("R1", "R1")]
    assert result.clean
    assert result.missing_there == []
    assert result.missing_here == []


def test_a_credit_in_the_window_whose_line_is_outside_it_is_not_missing() -> None:
    lines = [line("R1", cairo("2026-12-04T00:00:10"))]  # the gateway says the next day
    result = reconcile(lines, [credit("R1", None, cairo("2026-12-03T23:59:59"))], DAY)
    assert result.missing_there == []
    assert result.outside == 1
    elsewhere = reconcile(lines, [credit("R2", None, cairo("2026-12-03T23:59:59"))], DAY)
    assert [c.reference for c in elsewhere.missing_there] == ["R2"]
    assert not elsewhere.clean


def test_times_a_second_apart_differ_and_closer_ones_do_not() -> None:
    paid = cairo("2026-12-03T10:00:00")
    close = reconcile(
        [line("R1", paid)],
        [credit("R1", paid + timedelta(milliseconds=999), paid)],
        DAY,
    )
    assert close.clean
    apart = reconcile([line("R1", paid)], [credit("R1", paid + timedelta(seconds=1), paid)], DAY)
    assert [(d.field, d.theirs, d.ours) for d in apart.differences] == [
        ("paid_at", "2026-12-03T10:00:00+02:00", "2026-12-03T10:00:01+02:00")
    ]


def test_a_line_that_took_no_money_but_was_credited_is_a_status_difference() -> None:
    paid = cairo("2026-12-03T10:00:00")
    refunded = reconcile(
        [line("R1", paid, "90.00", status="REFUNDED")], [credit("R1", paid, paid)], DAY
    )
    assert [(d.field, d.theirs, d.ours) for d in refunded.differences] == [
        ("status", "REFUNDED", "credited"),
        ("amount", "90.00", "100.00"),
    ]
    assert refunded.matched == []
    expired = reconcile([line("R2", None, status="EXPIRED")], [], DAY)
    assert (expired.not_paid, expired.clean) == (1, True)


def test_the_files_days_are_its_first_and_last_days_of_payment_in_cairo() -> None:
    lines = [
        line("R1", datetime(2026, 12, 2, 22, 30, tzinfo=UTC)),  # 00:30 on the 3rd in Cairo
        line("R2", None, status="EXPIRED"),
        line("R3", cairo("2026-12-05T12:00:00")),
    ]
    assert file_days(lines) == (date(2026, 12, 3), date(2026, 12, 5))
    assert file_days([line("R2", None, status="EXPIRED")]) is None


def test_every_gateway_a_wallet_takes_has_a_settlement_file_layout() -> None:
    assert set(LAYOUTS) == GATEWAYS
