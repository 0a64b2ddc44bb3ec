"""Property: whatever the sequence of claims and reversals, a Cairo month's covered amounts
never exceed the card's monthly limit, and the state's month_spent is exactly their sum."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import partial
from typing import TypeVar
from zoneinfo import ZoneInfo

from hypothesis import event, given, settings
from hypothesis import strategies as st

from domain.errors import CommandRejected
from domain.events import ClaimAdjudicated
from domain.money import percent_of
from tests.unit.builders import Ledger, claim, issue, utc

T = TypeVar("T")
CAIRO = ZoneInfo("Africa/Cairo")
START = datetime(2026, 1, 1, tzinfo=CAIRO).astimezone(UTC)
END = datetime(2026, 7, 1, tzinfo=CAIRO).astimezone(UTC)
# Cairo midnights that start a month, in UTC; April-October are in summer time (UTC+3).
BOUNDARIES = [datetime(2026, m, 1, tzinfo=CAIRO).astimezone(UTC) for m in range(2, 8)]

uniform_times = st.integers(0, int((END - START).total_seconds())).map(
    lambda s: START + timedelta(seconds=s)
)
near_a_boundary = st.tuples(st.sampled_from(BOUNDARIES), st.integers(-5400, 5400)).map(
    lambda b: b[0] + timedelta(seconds=b[1])
)
times = st.one_of(uniform_times, near_a_boundary)
amounts = st.integers(1, 200_000).map(lambda c: Decimal(c).scaleb(-2))
claims = st.tuples(st.just("claim"), amounts, times, st.integers(0, 15))
reversals = st.tuples(st.just("reverse"), st.integers(0, 10_000), times, st.just(0))
operations = st.lists(st.one_of(claims, claims, reversals), max_size=40)


def cairo_month(at: datetime) -> str:
    return at.astimezone(CAIRO).strftime("%Y-%m")


def check_invariants(ledger: Ledger) -> None:
    state = ledger.state
    covered_by_month: dict[str, Decimal] = defaultdict(Decimal)
    for adjudicated, was_reversed in ledger.claims():
        assert adjudicated.covered_amount + adjudicated.copayment_amount == adjudicated.total_amount
        assert adjudicated.covered_amount >= 0
        assert adjudicated.copayment_amount >= 0
        assert adjudicated.month == cairo_month(adjudicated.claimed_at)
        if not was_reversed:
            covered_by_month[adjudicated.month] += adjudicated.covered_amount
    months = set(covered_by_month) | set(state.month_spent)
    for month in months:
        assert covered_by_month[month] <= state.monthly_limit
        assert covered_by_month[month] == state.spent_in(month)
        assert state.remaining_in(month) == state.monthly_limit - state.spent_in(month)


@settings(max_examples=300, deadline=None)
@given(
    limit=st.sampled_from(["50.00", "100.00", "999.99", "5000.00"]),
    copay=st.sampled_from(["0", "10", "20", "33.33", "100"]),
    ops=operations,
)
def test_covered_amounts_in_a_cairo_month_never_exceed_the_limit(
    limit: str, copay: str, ops: list[tuple[str, Decimal | int, datetime, int]]
) -> None:
    ledger = Ledger.with_card(
        issue(
            at=utc("2025-12-01T10:00"),
            monthly_limit=Decimal(limit),
            copay_percent=Decimal(copay),
            may_override_terms=True,
        )
    )
    for kind, value, at, rx in ops:
        claims = ledger.claims()
        if kind == "claim":
            assert isinstance(value, Decimal)
            claim_one(ledger, value, at, rx)
        elif claims:
            assert isinstance(value, int)
            claim_id = claims[value % len(claims)][0].claim_id
            outcome = attempt(partial(ledger.reverse, claim_id, at))
            if isinstance(outcome, CommandRejected):
                assert outcome.code in {"claim_already_reversed", "claim_not_reversible"}
                event(outcome.code)
            else:
                event("reversed")
        check_invariants(ledger)


def claim_one(ledger: Ledger, total: Decimal, at: datetime, rx: int) -> None:
    state = ledger.state
    remaining = state.remaining_in(cairo_month(at))
    outcome = attempt(lambda: ledger.claim(claim(total, prescription_id=f"rx-{rx}", at=at)))
    if isinstance(outcome, CommandRejected):
        assert outcome.code == "duplicate_prescription"
        event(outcome.code)
        return
    adjudicated: ClaimAdjudicated = outcome.claim
    event("replayed" if outcome.replayed else adjudicated.decision)
    if outcome.replayed:
        return
    share = total - percent_of(total, state.copay_percent)
    if remaining == 0:
        assert adjudicated.decision == "rejected"
        assert adjudicated.covered_amount == 0
    else:
        assert adjudicated.covered_amount == min(share, remaining)
        expected = "approved" if share <= remaining else "partially_approved"
        assert adjudicated.decision == expected
    assert adjudicated.remaining_after == remaining - adjudicated.covered_amount


def attempt(action: Callable[[], T]) -> T | CommandRejected:
    try:
        return action()
    except CommandRejected as refused:
        return refused
