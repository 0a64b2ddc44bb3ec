"""The member's consent to copayments paid from the wallet, as the deciders enforce it.

A claim takes its copayment from the wallet only within the consent (per claim, per Cairo
month) and the balance, all of it or none; the claim (what the pharmacy sees) says only
`wallet_payment_declined`, whatever the cause, and the wallet records the cause for the member.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest

from command_service.aggregates import WALLET
from domain.errors import Kind
from domain.events import WalletCopayConsentSet, WalletCopayDeclined, WalletDebited
from domain.medcard.claims import adjudicate
from domain.medcard.commands import ClaimPrescription
from domain.postings import balance_of
from domain.wallet.model import (
    Debit,
    SetCopayConsent,
    WalletState,
    decide,
    evolve,
    wallet_id_for,
)
from tests.unit.builders import T0, USER, Ledger, claim, issue, refused, utc

D = Decimal


def copay_claim(total: str = "350.00", **overrides: object) -> ClaimPrescription:
    """A gold card's claim: the copayment is 10% of `total` (350.00 -> 35.00)."""
    return claim(total, pay_copayment_from_wallet=True, **overrides)


def declined(ledger: Ledger, command: ClaimPrescription) -> WalletCopayDeclined:
    decision = ledger.claim(command)
    assert decision.claim.reasons[-1] == "wallet_payment_declined"
    assert (decision.claim.copayment_paid_from_wallet, decision.claim.wallet_id) == (D(0), None)
    (event,) = decision.wallet_events
    assert isinstance(event, WalletCopayDeclined)
    assert event.claim_id == command.claim_id
    return event


def paid(ledger: Ledger, command: ClaimPrescription) -> D:
    decision = ledger.claim(command)
    assert decision.claim.reasons[-1] == "copayment_paid_from_wallet"
    (event,) = decision.wallet_events
    assert isinstance(event, WalletDebited)
    return decision.claim.copayment_paid_from_wallet


# ---- no consent is the default -----------------------------------------------------------------


def test_a_wallet_pays_no_copay_until_its_member_consents() -> None:
    ledger = Ledger.with_card()
    ledger.open_wallet("1000.00")
    event = declined(ledger, copay_claim())
    assert (event.reason, event.amount, event.balance, event.month) == (
        "no_consent",
        D("35.00"),
        D("1000.00"),
        "2026-01",
    )
    assert ledger.purse.balance == D("1000.00")
    ledger.consent("35.00", "100.00")
    assert paid(ledger, copay_claim()) == D("35.00")
    assert ledger.purse.balance == D("965.00")


def test_withdrawing_the_consent_stops_the_copays() -> None:
    ledger = Ledger.with_card()
    ledger.open_wallet("1000.00", consent=("100.00", "500.00"))
    paid(ledger, copay_claim())
    ledger.consent("0", "0")
    assert declined(ledger, copay_claim()).reason == "no_consent"


def test_a_per_claim_limit_of_zero_is_no_consent() -> None:
    ledger = Ledger.with_card()
    ledger.open_wallet("1000.00", consent=("0.00", "500.00"))
    assert declined(ledger, copay_claim()).reason == "no_consent"


# ---- the limits, all or nothing ----------------------------------------------------------------


def test_a_copay_over_the_per_claim_limit_is_not_paid_at_all() -> None:
    ledger = Ledger.with_card()
    ledger.open_wallet("1000.00", consent=("34.99", "500.00"))
    event = declined(ledger, copay_claim())  # 35.00: one cent over
    assert event.reason == "over_claim_limit"
    assert ledger.purse.balance == D("1000.00")
    ledger.consent("35.00", "500.00")
    assert paid(ledger, copay_claim()) == D("35.00")  # the limit itself is allowed


def test_an_inflated_total_takes_no_more_than_the_member_allowed() -> None:
    """The attack the consent answers: a pharmacy inflating totalAmount to drain the wallet."""
    ledger = Ledger.with_card(issue(monthly_limit=D("1000000.00"), may_override_terms=True))
    ledger.open_wallet("5000.00", consent=("50.00", "120.00"))
    taken = D(0)
    for total in ("400.00", "50000.00", "9999.00", "500.00", "450.00", "300.00", "100.00"):
        decision = ledger.claim(copay_claim(total))
        taken += decision.claim.copayment_paid_from_wallet
        assert decision.claim.copayment_paid_from_wallet in (D(0), decision.claim.copayment_amount)
        assert decision.claim.copayment_paid_from_wallet <= D("50.00")
    assert taken == D("120.00")  # 40 + 50 + 30: the month's limit, exactly
    assert ledger.purse.balance == D("4880.00")
    assert ledger.purse.copay_used_in("2026-01") == D("120.00")


def test_the_monthly_limit_counts_every_copay_of_the_cairo_month() -> None:
    ledger = Ledger.with_card()
    ledger.open_wallet("1000.00", consent=("50.00", "100.00"))
    assert paid(ledger, copay_claim()) == D("35.00")
    assert paid(ledger, copay_claim()) == D("35.00")
    over = declined(ledger, copay_claim())  # 70 + 35 > 100
    assert over.reason == "over_monthly_limit"
    assert paid(ledger, copay_claim("300.00")) == D("30.00")  # 70 + 30 = 100: allowed
    assert declined(ledger, copay_claim("10.00")).reason == "over_monthly_limit"
    # 22:30 UTC on 31 January is 00:30 on 1 February in Cairo: a new month, a new allowance
    february = utc("2026-01-31T22:30")
    assert paid(ledger, copay_claim(at=february)) == D("35.00")
    assert ledger.purse.copay_used == {"2026-01": D("100.00"), "2026-02": D("35.00")}


def test_a_lowered_limit_counts_what_the_month_already_took() -> None:
    ledger = Ledger.with_card()
    ledger.open_wallet("1000.00", consent=("50.00", "100.00"))
    paid(ledger, copay_claim())
    ledger.consent("50.00", "60.00")
    assert declined(ledger, copay_claim()).reason == "over_monthly_limit"  # 35 + 35 > 60
    assert paid(ledger, copay_claim("250.00")) == D("25.00")  # 35 + 25 = 60


def test_a_reversed_claim_gives_its_copay_back_to_the_month_it_was_taken_in() -> None:
    ledger = Ledger.with_card()
    ledger.open_wallet("1000.00", consent=("50.00", "70.00"))
    first = ledger.claim(copay_claim()).claim
    paid(ledger, copay_claim())
    assert declined(ledger, copay_claim()).reason == "over_monthly_limit"
    ledger.reverse(first.claim_id, at=utc("2026-02-03T10:00"))  # refunded in February
    assert ledger.purse.copay_used == {"2026-01": D("35.00")}
    assert paid(ledger, copay_claim()) == D("35.00")  # a rebilled claim fits again


def test_the_balance_is_checked_after_the_consent() -> None:
    ledger = Ledger.with_card()
    ledger.open_wallet("34.99", consent=("50.00", "100.00"))
    event = declined(ledger, copay_claim())
    assert (event.reason, event.balance) == ("insufficient_funds", D("34.99"))
    assert ledger.purse.copay_used_in("2026-01") == D(0)  # a declined copay uses nothing


def test_a_declined_copay_still_approves_the_claim() -> None:
    ledger = Ledger.with_card()
    ledger.open_wallet("0.00")
    decision = ledger.claim(copay_claim())
    claim_event = decision.claim
    assert (claim_event.decision, claim_event.covered_amount) == ("approved", D("315.00"))
    assert claim_event.copayment_amount == D("35.00")  # the pharmacy collects it at the counter
    assert ledger.state.spent_in("2026-01") == D("315.00")


# ---- the pharmacy learns one bit: paid in full, or not ------------------------------------------


def _wallet_declining_for(cause: str) -> WalletState | None:
    """The member's wallet, set up (through the member's other card) to decline for `cause`."""
    other = Ledger.with_card()
    if cause == "no_wallet":
        return None
    if cause == "no_consent":
        return other.open_wallet("1000.00")
    if cause == "over_claim_limit":
        return other.open_wallet("1000.00", consent=("30.00", "500.00"))
    if cause == "over_monthly_limit":
        other.open_wallet("1000.00", consent=("50.00", "60.00"))
        paid(other, copay_claim())  # 35 + 35 > 60
        return other.purse
    assert cause == "insufficient_funds"
    return other.open_wallet("10.00", consent=("50.00", "500.00"))


@pytest.mark.parametrize(
    "cause",
    ["no_wallet", "no_consent", "over_claim_limit", "over_monthly_limit", "insufficient_funds"],
)
def test_every_cause_gives_the_pharmacy_the_same_claim(cause: str) -> None:
    card = Ledger.with_card().card
    command = copay_claim()
    expected = adjudicate(card, None, command).claim
    decision = adjudicate(card, _wallet_declining_for(cause), command)
    assert decision.claim == expected
    assert decision.claim.reasons == ("covered_within_monthly_limit", "wallet_payment_declined")
    # only the member's own record tells the causes apart
    reasons = [e.reason for e in decision.wallet_events if isinstance(e, WalletCopayDeclined)]
    assert reasons == ([] if cause == "no_wallet" else [cause])


# ---- setting the consent ----------------------------------------------------------------------


def test_setting_the_consent_is_an_event_that_moves_no_money() -> None:
    ledger = Ledger.with_card()
    ledger.open_wallet("100.00")
    decision = ledger.consent("50.00", "200.00")
    (event,) = decision.events
    assert event == WalletCopayConsentSet(
        per_claim_limit=D("50.00"), monthly_limit=D("200.00"), at=T0
    )
    assert not hasattr(event, "postings")
    assert not hasattr(event, "balance_after")
    assert (ledger.purse.copay_per_claim_limit, ledger.purse.copay_monthly_limit) == (
        D("50.00"),
        D("200.00"),
    )
    assert ledger.purse.balance == D("100.00")
    again = ledger.consent("50.00", "200.00")
    assert again.events == [again.result]  # each setting is recorded, the same one too


def test_the_consent_is_replayed_from_the_stream() -> None:
    ledger = Ledger.with_card()
    ledger.open_wallet("1000.00", consent=("50.00", "100.00"))
    paid(ledger, copay_claim())
    declined(ledger, copay_claim("600.00"))
    ledger.reverse(ledger.claim(copay_claim()).claim.claim_id)
    rebuilt: WalletState | None = None
    for event in ledger.wallet_log:
        rebuilt = evolve(rebuilt, event)
    assert rebuilt == ledger.purse
    assert rebuilt is not None
    assert rebuilt.copay_used == {"2026-01": D("35.00")}
    assert balance_of(p for e in ledger.wallet_log for p in getattr(e, "postings", ())) == 0


@pytest.mark.parametrize(
    ("per_claim", "monthly", "code"),
    [
        ("50.01", "50.00", "invalid_copay_consent"),
        ("-1.00", "50.00", "invalid_amount"),
        ("10.00", "-50.00", "invalid_amount"),
        ("10.001", "50.00", "invalid_amount"),
        ("NaN", "50.00", "invalid_amount"),
    ],
)
def test_an_invalid_consent_is_refused(per_claim: str, monthly: str, code: str) -> None:
    ledger = Ledger.with_card()
    ledger.open_wallet()
    with refused(code):
        ledger.consent(per_claim, monthly)
    assert ledger.purse.copay_monthly_limit == D(0)


def test_no_consent_on_a_missing_wallet() -> None:
    with refused("wallet_not_found", Kind.NOT_FOUND):
        decide(None, SetCopayConsent(D("10.00"), D("50.00"), T0))


def test_the_copay_purpose_is_reserved_for_claims() -> None:
    """Else a member's own debit would count against (or forge) the month's copay usage."""
    ledger = Ledger.with_card()
    state = ledger.open_wallet("100.00")
    debit = Debit(wallet_id_for(USER), D("10.00"), "claim_copayment", "order-1", T0)
    with refused("reserved_purpose"):
        decide(state, debit)
    assert decide(state, replace(debit, purpose="purchase")).events


def test_the_consent_and_the_months_use_survive_a_snapshot() -> None:
    """A wallet snapshot (command_service/aggregates.py) keeps both, else a cold load after a
    snapshot would start the month afresh; older snapshots lack them and are not read."""
    ledger = Ledger.with_card()
    ledger.open_wallet("1000.00", consent=("50.00", "100.00"))
    paid(ledger, copay_claim())
    snapshot = WALLET.state.dump_python(ledger.purse, mode="json")
    assert WALLET.state.validate_python(snapshot) == ledger.purse
    assert snapshot["copay_used"] == {"2026-01": "35.00"}
    assert WALLET.state_version >= 2  # 2: the state gained the consent; old snapshots ignored
