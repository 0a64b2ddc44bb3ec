"""Double entry: every money event's postings sum to zero, and so does the whole ledger."""

from __future__ import annotations

from decimal import Decimal

import pytest

from domain.events import ClaimAdjudicated, ClaimReversed, DomainEvent, Posting
from domain.postings import balance_of, reverse, transfer, wallet_account
from tests.unit.scenarios import every_event, full_history

MONEY_EVENTS = {
    "medcard.claim_adjudicated",
    "medcard.claim_reversed",
    "wallet.topped_up",
    "wallet.debited",
    "wallet.refunded",
}
ACCOUNT_KINDS = {"insurer", "pharmacy", "member_wallet", "gateway_clearing", "settlement"}


def postings_of(event: DomainEvent) -> tuple[Posting, ...]:
    postings = getattr(event, "postings", ())
    assert isinstance(postings, tuple)
    return postings


def all_postings(events: list[DomainEvent]) -> list[Posting]:
    return [p for e in events for p in postings_of(e)]


def test_the_events_that_carry_postings_are_the_money_events() -> None:
    assert {e.event_type for e in every_event() if hasattr(e, "postings")} == MONEY_EVENTS


@pytest.mark.parametrize(
    "event", [e for e in every_event() if e.event_type in MONEY_EVENTS], ids=lambda e: e.event_type
)
def test_each_money_event_balances(event: DomainEvent) -> None:
    postings = postings_of(event)
    assert balance_of(postings) == 0
    accounts = [p.account for p in postings]
    assert len(set(accounts)) == len(accounts)
    assert all(p.amount != 0 for p in postings)
    assert {a.split(":")[0] for a in accounts} <= ACCOUNT_KINDS


def test_the_whole_ledger_balances() -> None:
    assert balance_of(all_postings(every_event())) == 0


def test_the_wallet_account_holds_the_wallet_balance() -> None:
    ledger = full_history()
    account = wallet_account(ledger.purse.wallet_id)
    postings = all_postings([*ledger.card_log, *ledger.wallet_log])
    held = balance_of(p for p in postings if p.account == account)
    assert held == ledger.purse.balance > 0


def test_the_insurer_paid_what_was_covered_and_not_reversed() -> None:
    events = every_event()
    reversed_ids = {e.claim_id for e in events if isinstance(e, ClaimReversed)}
    covered = sum(
        (
            e.covered_amount
            for e in events
            if isinstance(e, ClaimAdjudicated) and e.claim_id not in reversed_ids
        ),
        Decimal(0),
    )
    insurer = balance_of(p for p in all_postings(events) if p.account.startswith("insurer:"))
    assert covered > 0
    assert insurer == -covered


def test_transfer_and_reverse() -> None:
    legs = transfer(Decimal("12.34"), "a", "b")
    assert legs == (
        Posting(account="a", amount=Decimal("-12.34")),
        Posting(account="b", amount=Decimal("12.34")),
    )
    assert reverse(legs) == (
        Posting(account="a", amount=Decimal("12.34")),
        Posting(account="b", amount=Decimal("-12.34")),
    )
    assert transfer(Decimal("0.00"), "a", "b") == ()
    assert balance_of(()) == 0
