"""A card's state keeps only its latest claims; its decisions must not depend on that.

The ledger of tests/unit/builders.py answers what the window cannot say from its whole log,
as the command service does from the event store. Whatever the sequence of claims, retries
(same or other body), rejections and reversals, a card with a window of 2 claims must
decide exactly what a card with an unbounded window decides.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from decimal import Decimal
from functools import partial
from uuid import UUID

from hypothesis import given, settings
from hypothesis import strategies as st

from domain.errors import CommandRejected
from domain.events import DomainEvent
from domain.medcard import state as card_state
from domain.medcard.commands import ReactivateCard, SuspendCard
from domain.medcard.state import ClaimRecord
from tests.unit.builders import T0, Ledger, claim, issue

# (operation, prescription number, body variant, reversal pick)
operations = st.lists(
    st.tuples(
        st.sampled_from(["claim", "claim", "claim", "reverse", "suspend", "reactivate"]),
        st.integers(0, 5),
        st.integers(0, 1),
        st.integers(0, 1_000),
    ),
    max_size=60,
)


@contextmanager
def window(size: int) -> Iterator[None]:
    saved = card_state.CLAIM_WINDOW
    card_state.CLAIM_WINDOW = size
    try:
        yield
    finally:
        card_state.CLAIM_WINDOW = saved


Answer = tuple[str, object]


def answer(action: Callable[[], object]) -> Answer:
    try:
        result = action()
    except CommandRejected as refused:
        return "refused", refused.code
    events: list[DomainEvent] = getattr(result, "card_events", None) or []
    replayed = getattr(result, "replayed", False)
    shown = getattr(result, "claim", None) or getattr(result, "reversal", None) or result
    return ("replayed" if replayed else "done"), (shown, events)


def action(
    kind: str, rx: int, variant: int, pick: int, at: datetime, claim_ids: list[UUID]
) -> Callable[[Ledger], object] | None:
    """One operation of the sequence, to run on either ledger."""
    if kind == "claim":
        body = claim(("100.00", "250.00")[variant], prescription_id=f"rx-{rx}", at=at)
        claim_ids.append(body.claim_id)
        return lambda ledger: ledger.claim(body)
    if kind == "reverse" and claim_ids:
        claim_id = claim_ids[pick % len(claim_ids)]
        return lambda ledger: ledger.reverse(claim_id, at)
    if kind == "suspend":
        return lambda ledger: ledger.run(SuspendCard(at=at))
    if kind == "reactivate":
        return lambda ledger: ledger.run(ReactivateCard(at=at))
    return None


@settings(max_examples=200, deadline=None)
@given(ops=operations)
def test_a_tiny_window_decides_like_an_unbounded_one(
    ops: list[tuple[str, int, int, int]],
) -> None:
    command = issue(monthly_limit=Decimal("2000.00"), may_override_terms=True)
    with window(2):
        small = Ledger.with_card(command)
    big = Ledger.with_card(command)
    claim_ids: list[UUID] = []
    for step, (kind, rx, variant, pick) in enumerate(ops):
        run = action(kind, rx, variant, pick, T0 + timedelta(minutes=step), claim_ids)
        if run is None:
            continue
        with window(2):
            small_answer = answer(partial(run, small))
        assert small_answer == answer(partial(run, big)), (step, kind)
    assert small.card_log == big.card_log
    assert len(small.state.recent_claims) <= 2
    assert small.state.month_spent == big.state.month_spent


def test_the_state_keeps_only_the_latest_claims() -> None:
    ledger = Ledger.with_card(issue(monthly_limit=Decimal("1000000"), may_override_terms=True))
    first = ledger.claim(claim("10.00", prescription_id="rx-first")).claim
    for n in range(card_state.CLAIM_WINDOW + 10):
        ledger.claim(claim("10.00", prescription_id=f"rx-{n}"))
    state = ledger.state
    assert len(state.recent_claims) == card_state.CLAIM_WINDOW
    assert state.claims_forgotten == 11
    assert state.claim(first.claim_id) is card_state.BEYOND_WINDOW
    assert state.charge_of("rx-first") is card_state.BEYOND_WINDOW
    latest = state.recent_claims[-1]
    assert isinstance(latest, ClaimRecord)
    assert state.charge_of(latest.prescription_id) == latest
    # the old prescription is still charged once: a retry replays, another body is refused
    assert ledger.claim(claim("10.00", prescription_id="rx-first")).replayed
    assert ledger.reverse(first.claim_id).reversal.restored_amount == first.covered_amount
    assert not ledger.claim(claim("10.00", prescription_id="rx-first")).replayed
