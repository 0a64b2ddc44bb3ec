"""MedCard lifecycle: every allowed and every refused transition."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from uuid import uuid4

import pytest

from domain.errors import Kind
from domain.events import (
    MedCardActivated,
    MedCardCancelled,
    MedCardExpired,
    MedCardReactivated,
    MedCardRenewed,
    MedCardSuspended,
)
from domain.medcard.commands import (
    ActivateCard,
    CancelCard,
    ExpireCard,
    MedCardCommand,
    ReactivateCard,
    RemoveBeneficiary,
    RenewCard,
    SuspendCard,
)
from domain.medcard.decider import decide
from tests.unit.builders import Ledger, issue, refused, utc

# A gold card issued on 2026-01-15 (Cairo) expires on 2027-01-15.
EXPIRY = date(2027, 1, 15)
DURING = utc("2026-06-01T09:00")
AFTER_EXPIRY = utc("2027-03-01T09:00")
STATUSES = ("PENDING", "ACTIVE", "SUSPENDED", "EXPIRED", "CANCELLED")


def card_in(status: str) -> Ledger:
    ledger = Ledger.with_card(issue(activate=status != "PENDING"))
    if status == "SUSPENDED":
        ledger.run(SuspendCard(at=DURING, reason="fraud check"))
    elif status == "CANCELLED":
        ledger.run(CancelCard(at=DURING))
    elif status == "EXPIRED":
        ledger.run(ExpireCard(at=AFTER_EXPIRY))
    assert ledger.state.status == status
    assert ledger.state.expiry_date == EXPIRY
    return ledger


# action -> (command at a time that suits it, statuses from which it is allowed, status after)
ACTIONS: dict[str, tuple[Callable[[], MedCardCommand], set[str], str | None]] = {
    "activate": (lambda: ActivateCard(at=DURING), {"PENDING"}, "ACTIVE"),
    "suspend": (lambda: SuspendCard(at=DURING, reason="r"), {"ACTIVE"}, "SUSPENDED"),
    "reactivate": (lambda: ReactivateCard(at=DURING), {"SUSPENDED"}, "ACTIVE"),
    "cancel": (
        lambda: CancelCard(at=DURING, reason="lost"),
        {"PENDING", "ACTIVE", "SUSPENDED", "EXPIRED"},
        "CANCELLED",
    ),
    "renew": (lambda: RenewCard(at=DURING), {"ACTIVE", "SUSPENDED", "EXPIRED"}, None),
    "expire": (lambda: ExpireCard(at=AFTER_EXPIRY), {"PENDING", "ACTIVE", "SUSPENDED"}, "EXPIRED"),
}
EVENT_OF = {
    "activate": MedCardActivated,
    "suspend": MedCardSuspended,
    "reactivate": MedCardReactivated,
    "cancel": MedCardCancelled,
    "renew": MedCardRenewed,
    "expire": MedCardExpired,
}
TRANSITIONS = [(status, action) for status in STATUSES for action in ACTIONS]


@pytest.mark.parametrize(("status", "action"), TRANSITIONS)
def test_transition_table(status: str, action: str) -> None:
    ledger = card_in(status)
    make, allowed, status_after = ACTIONS[action]
    command = make()
    if status not in allowed:
        with refused("invalid_status_transition", Kind.CONFLICT):
            ledger.run(command)
        return
    events = ledger.run(command)
    assert [type(e) for e in events] == [EVENT_OF[action]]
    expected_status = status_after or ("ACTIVE" if status == "EXPIRED" else status)
    assert ledger.state.status == expected_status


def test_the_allowed_transitions_match_the_design() -> None:
    allowed = {(s, a) for s, a in TRANSITIONS if s in ACTIONS[a][1]}
    assert not any(s == "CANCELLED" for s, _ in allowed)  # terminal
    assert len(allowed) == 13


def test_suspend_and_cancel_record_the_reason_and_time() -> None:
    ledger = card_in("ACTIVE")
    (suspended,) = ledger.run(SuspendCard(at=DURING, reason="fraud check"))
    assert suspended == MedCardSuspended(reason="fraud check", at=DURING)
    (cancelled,) = ledger.run(CancelCard(at=DURING, reason="lost"))
    assert cancelled == MedCardCancelled(reason="lost", at=DURING)


def test_cancelled_is_terminal_for_beneficiary_changes_too() -> None:
    ledger = card_in("CANCELLED")
    with refused("invalid_status_transition", Kind.CONFLICT):
        ledger.run(RemoveBeneficiary(beneficiary_id=uuid4(), at=DURING))


def test_renewal_extends_from_the_current_expiry_when_renewed_early() -> None:
    ledger = card_in("ACTIVE")
    (renewed,) = ledger.run(RenewCard(at=DURING))
    assert renewed == MedCardRenewed(
        previous_expiry_date=EXPIRY, expiry_date=date(2028, 1, 15), at=DURING
    )
    assert ledger.state.expiry_date == date(2028, 1, 15)


def test_renewal_of_an_expired_card_extends_from_today_and_reactivates_it() -> None:
    ledger = card_in("EXPIRED")
    (renewed,) = ledger.run(RenewCard(at=AFTER_EXPIRY))
    assert isinstance(renewed, MedCardRenewed)
    assert renewed.previous_expiry_date == EXPIRY
    assert renewed.expiry_date == date(2028, 3, 1)
    assert ledger.state.status == "ACTIVE"


def test_renewal_past_the_expiry_date_of_a_still_active_card_counts_from_today() -> None:
    ledger = card_in("ACTIVE")
    (renewed,) = ledger.run(RenewCard(at=AFTER_EXPIRY))
    assert isinstance(renewed, MedCardRenewed)
    assert renewed.expiry_date == date(2028, 3, 1)


def test_renewal_uses_the_cairo_date() -> None:
    ledger = card_in("EXPIRED")
    # 22:30 UTC on 28 February 2027 is 1 March in Cairo
    (renewed,) = ledger.run(RenewCard(at=utc("2027-02-28T22:30")))
    assert isinstance(renewed, MedCardRenewed)
    assert renewed.expiry_date == date(2028, 3, 1)


def test_renewal_of_a_platinum_card_adds_its_validity() -> None:
    ledger = Ledger.with_card(issue(card_type="platinum"))
    (renewed,) = ledger.run(RenewCard(at=DURING))
    assert isinstance(renewed, MedCardRenewed)
    assert renewed.expiry_date == date(2030, 1, 15)


def test_renewing_a_suspended_card_keeps_it_suspended() -> None:
    ledger = card_in("SUSPENDED")
    ledger.run(RenewCard(at=DURING))
    assert ledger.state.status == "SUSPENDED"
    assert ledger.state.expiry_date == date(2028, 1, 15)


@pytest.mark.parametrize(
    ("at", "allowed"),
    [
        (utc("2027-01-15T09:00"), False),  # on the expiry date
        (utc("2027-01-15T21:59"), False),  # 23:59 in Cairo
        (utc("2027-01-15T22:00"), True),  # midnight in Cairo: the day after
        (utc("2027-01-16T09:00"), True),
        (utc("2026-06-01T09:00"), False),
    ],
)
def test_expire_only_after_the_expiry_date(at: datetime, allowed: bool) -> None:
    ledger = card_in("ACTIVE")
    if allowed:
        assert ledger.run(ExpireCard(at=at)) == [MedCardExpired(at=at)]
        assert ledger.state.status == "EXPIRED"
    else:
        with refused("card_not_yet_expired", Kind.CONFLICT):
            ledger.run(ExpireCard(at=at))


def test_a_suspended_card_past_its_expiry_cannot_be_reactivated() -> None:
    ledger = card_in("SUSPENDED")
    with refused("card_expired", Kind.CONFLICT):
        ledger.run(ReactivateCard(at=AFTER_EXPIRY))
    assert ledger.run(ReactivateCard(at=utc("2027-01-15T21:00"))) != []


@pytest.mark.parametrize(
    "command",
    [
        ActivateCard(at=DURING),
        SuspendCard(at=DURING),
        ReactivateCard(at=DURING),
        CancelCard(at=DURING),
        RenewCard(at=DURING),
        ExpireCard(at=AFTER_EXPIRY),
        RemoveBeneficiary(beneficiary_id=uuid4(), at=DURING),
    ],
)
def test_commands_on_a_card_that_does_not_exist(command: MedCardCommand) -> None:
    with refused("card_not_found", Kind.NOT_FOUND):
        decide(None, command)
