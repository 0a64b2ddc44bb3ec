"""Member wallets: open, idempotent top-ups, debits that never overdraw, refunds."""

from __future__ import annotations

from decimal import Decimal
from uuid import UUID, uuid4

import pytest

from domain.errors import CommandRejected, Kind
from domain.events import Posting, WalletDebited, WalletOpened, WalletRefunded, WalletToppedUp
from domain.wallet.model import (
    COPAY_PURPOSE,
    Debit,
    OpenWallet,
    Refund,
    TopUp,
    WalletCommand,
    WalletState,
    decide,
    evolve,
    refund,
    wallet_id_for,
)
from domain.wallet.model import debit as decide_debit
from tests.unit.builders import T0, USER, refused

D = Decimal
WALLET_ID = wallet_id_for(USER)
WALLET_ACCOUNT = f"member_wallet:{WALLET_ID}"


class Wallet:
    def __init__(self, balance: str = "0.00") -> None:
        self.state: WalletState | None = None
        self.run(OpenWallet(WALLET_ID, USER, T0))
        if D(balance) > 0:
            self.run(top_up(balance, reference="initial"))

    def run(self, command: WalletCommand) -> tuple[list[object], object]:
        decision = decide(self.state, command)
        for event in decision.events:
            self.state = evolve(self.state, event)
        return list(decision.events), decision.result

    @property
    def balance(self) -> Decimal:
        assert self.state is not None
        return self.state.balance


def top_up(amount: str, reference: str = "ref-1", gateway: str = "fawry") -> TopUp:
    return TopUp(uuid4(), gateway, reference, D(amount), T0)


def debit(amount: str, reference: str = "order-1", purpose: str = "purchase") -> Debit:
    return Debit(uuid4(), D(amount), purpose, reference, T0)


def test_wallet_ids_are_one_per_member_and_currency() -> None:
    assert wallet_id_for(USER) == wallet_id_for(USER, "EGP") == WALLET_ID
    assert wallet_id_for("someone-else") != WALLET_ID
    assert wallet_id_for(USER, "USD") != WALLET_ID
    assert isinstance(WALLET_ID, UUID)


def test_open_a_wallet() -> None:
    decision = decide(None, OpenWallet(WALLET_ID, USER, T0))
    opened = WalletOpened(wallet_id=WALLET_ID, owner_user_id=USER, currency="EGP", at=T0)
    assert (decision.events, decision.result) == ([opened], opened)
    state = evolve(None, opened)
    assert (state.wallet_id, state.owner_user_id, state.balance) == (WALLET_ID, USER, D("0.00"))


def test_a_wallet_is_opened_once() -> None:
    wallet = Wallet()
    with refused("wallet_exists", Kind.CONFLICT):
        wallet.run(OpenWallet(WALLET_ID, USER, T0))


def test_a_wallet_needs_an_owner() -> None:
    with refused("invalid_user_id"):
        decide(None, OpenWallet(WALLET_ID, " ", T0))


@pytest.mark.parametrize("command", [top_up("1.00"), debit("1.00"), Refund(uuid4(), uuid4(), T0)])
def test_commands_on_a_missing_wallet(command: WalletCommand) -> None:
    with refused("wallet_not_found", Kind.NOT_FOUND):
        decide(None, command)


def test_top_up() -> None:
    wallet = Wallet()
    command = top_up("250.50", gateway="paymob", reference="pm-77")
    events, result = wallet.run(command)
    assert events == [
        WalletToppedUp(
            topup_id=command.topup_id,
            gateway="paymob",
            gateway_reference="pm-77",
            amount=D("250.50"),
            balance_after=D("250.50"),
            at=T0,
            paid_at=None,
            postings=(
                Posting(account="gateway_clearing:paymob", amount=D("-250.50")),
                Posting(account=WALLET_ACCOUNT, amount=D("250.50")),
            ),
        )
    ]
    assert result == events[0]
    wallet.run(top_up("49.50", reference="pm-78"))
    assert wallet.balance == D("300.00")


def test_a_repeated_top_up_returns_the_original_and_credits_nothing() -> None:
    wallet = Wallet()
    original, _ = wallet.run(top_up("100.00", reference="fw-1"))
    events, result = wallet.run(top_up("100", reference="fw-1"))
    assert events == []
    assert result == original[0]
    assert wallet.balance == D("100.00")


def test_a_repeated_gateway_reference_with_another_amount_is_a_conflict() -> None:
    wallet = Wallet()
    wallet.run(top_up("100.00", reference="fw-1"))
    with refused("duplicate_gateway_reference", Kind.CONFLICT):
        wallet.run(top_up("100.01", reference="fw-1"))


def test_the_same_reference_at_another_gateway_is_another_top_up() -> None:
    wallet = Wallet()
    wallet.run(top_up("100.00", reference="x-1", gateway="fawry"))
    events, _ = wallet.run(top_up("100.00", reference="x-1", gateway="paymob"))
    assert len(events) == 1
    assert wallet.balance == D("200.00")


@pytest.mark.parametrize("gateway", ["paypal", "Fawry", ""])
def test_unknown_gateway(gateway: str) -> None:
    with refused("unknown_gateway"):
        Wallet().run(top_up("1.00", gateway=gateway))


def test_blank_gateway_reference() -> None:
    with refused("invalid_gateway_reference"):
        Wallet().run(top_up("1.00", reference="  "))


@pytest.mark.parametrize("amount", ["0", "-5.00", "1.001", "Infinity"])
def test_top_up_amount_must_be_positive_cents(amount: str) -> None:
    with refused("invalid_amount"):
        Wallet().run(top_up(amount))


def test_debit() -> None:
    wallet = Wallet("100.00")
    command = Debit(uuid4(), D("40.00"), "purchase", "order-1", T0, "merchant:7")
    events, result = wallet.run(command)
    assert events == [
        WalletDebited(
            debit_id=command.debit_id,
            amount=D("40.00"),
            purpose="purchase",
            reference="order-1",
            balance_after=D("60.00"),
            at=T0,
            postings=(
                Posting(account=WALLET_ACCOUNT, amount=D("-40.00")),
                Posting(account="merchant:7", amount=D("40.00")),
            ),
        )
    ]
    assert result == events[0]
    assert wallet.balance == D("60.00")


def test_a_debit_of_the_whole_balance_is_allowed() -> None:
    wallet = Wallet("100.00")
    wallet.run(debit("100.00"))
    assert wallet.balance == D("0.00")


@pytest.mark.parametrize(("balance", "amount"), [("100.00", "100.01"), ("0.00", "0.01")])
def test_a_debit_never_overdraws(balance: str, amount: str) -> None:
    wallet = Wallet(balance)
    with refused("insufficient_funds", Kind.CONFLICT):
        wallet.run(debit(amount))
    assert wallet.balance == D(balance)


def test_a_repeated_debit_reference_returns_the_original() -> None:
    wallet = Wallet("100.00")
    original, _ = wallet.run(debit("30.00"))
    events, result = wallet.run(debit("30.00"))
    assert (events, result) == ([], original[0])
    assert wallet.balance == D("70.00")
    with refused("duplicate_debit_reference", Kind.CONFLICT):
        wallet.run(debit("31.00"))


def test_the_same_reference_for_another_purpose_is_another_debit() -> None:
    wallet = Wallet("100.00")
    wallet.run(debit("30.00", purpose="purchase"))
    wallet.run(debit("30.00", purpose="fee"))
    assert wallet.balance == D("40.00")


@pytest.mark.parametrize("amount", ["0.00", "-1.00", "0.001"])
def test_debit_amount_must_be_positive_cents(amount: str) -> None:
    with refused("invalid_amount"):
        Wallet("10.00").run(debit(amount))


def debited(wallet: Wallet, amount: str) -> WalletDebited:
    events, _ = wallet.run(debit(amount, reference=str(uuid4())))
    event = events[0]
    assert isinstance(event, WalletDebited)
    return event


def test_a_full_refund() -> None:
    wallet = Wallet("100.00")
    spent = debited(wallet, "40.00")
    command = Refund(uuid4(), spent.debit_id, T0, reason="returned")
    events, result = wallet.run(command)
    assert events == [
        WalletRefunded(
            refund_id=command.refund_id,
            debit_id=spent.debit_id,
            amount=D("40.00"),
            reason="returned",
            balance_after=D("100.00"),
            at=T0,
            postings=(
                Posting(account="settlement:healthpay", amount=D("-40.00")),
                Posting(account=WALLET_ACCOUNT, amount=D("40.00")),
            ),
        )
    ]
    assert result == events[0]
    with refused("refund_exceeds_debit", Kind.CONFLICT):
        wallet.run(Refund(uuid4(), spent.debit_id, T0))


def test_partial_refunds_up_to_the_debit() -> None:
    wallet = Wallet("100.00")
    spent = debited(wallet, "40.00")
    wallet.run(Refund(uuid4(), spent.debit_id, T0, amount=D("15.00")))
    assert wallet.balance == D("75.00")
    with refused("refund_exceeds_debit", Kind.CONFLICT):
        wallet.run(Refund(uuid4(), spent.debit_id, T0, amount=D("25.01")))
    events, _ = wallet.run(Refund(uuid4(), spent.debit_id, T0))  # the rest
    assert isinstance(events[0], WalletRefunded)
    assert events[0].amount == D("25.00")
    assert wallet.balance == D("100.00")
    with refused("refund_exceeds_debit", Kind.CONFLICT):
        wallet.run(Refund(uuid4(), spent.debit_id, T0, amount=D("0.01")))


def test_an_over_refund_is_refused() -> None:
    wallet = Wallet("100.00")
    spent = debited(wallet, "40.00")
    with refused("refund_exceeds_debit", Kind.CONFLICT):
        wallet.run(Refund(uuid4(), spent.debit_id, T0, amount=D("40.01")))
    assert wallet.balance == D("60.00")


@pytest.mark.parametrize("amount", ["0.00", "-1.00", "1.001"])
def test_refund_amount_must_be_positive_cents(amount: str) -> None:
    wallet = Wallet("100.00")
    spent = debited(wallet, "40.00")
    with refused("invalid_amount"):
        wallet.run(Refund(uuid4(), spent.debit_id, T0, amount=D(amount)))


def test_refund_of_an_unknown_debit() -> None:
    with refused("debit_not_found", Kind.NOT_FOUND):
        Wallet("100.00").run(Refund(uuid4(), uuid4(), T0))


def test_the_refused_refund_says_what_is_still_refundable() -> None:
    wallet = Wallet("100.00")
    spent = debited(wallet, "50.00")
    wallet.run(Refund(uuid4(), spent.debit_id, T0, amount=D("20.00")))
    with pytest.raises(CommandRejected) as info:
        wallet.run(Refund(uuid4(), spent.debit_id, T0, amount=D("30.01")))
    assert (info.value.code, info.value.kind) == ("refund_exceeds_debit", Kind.CONFLICT)
    assert "30.00 EGP" in info.value.detail


def test_a_claims_copayment_is_not_refunded_by_a_refund_command() -> None:
    """Only the claim's reversal gives a copayment back (with the card's month)."""
    wallet = Wallet("100.00")
    assert wallet.state is not None
    # as a claim takes it (copay.pay_copay): the purpose a command may not use
    copay = decide_debit(wallet.state, debit("35.00", reference="claim-1", purpose=COPAY_PURPOSE))
    assert copay is not None
    wallet.state = evolve(wallet.state, copay)
    with refused("not_a_direct_debit"):
        wallet.run(Refund(uuid4(), copay.debit_id, T0, amount=D("1.00")))
    assert wallet.balance == D("65.00")
    # ... while refund() itself, as the reversal calls it, still refunds it
    assert refund(wallet.state, Refund(uuid4(), copay.debit_id, T0)).amount == D("35.00")


def test_a_top_up_is_no_debit_to_refund() -> None:
    wallet = Wallet()
    [topped], _ = wallet.run(top_up("80.00"))
    assert isinstance(topped, WalletToppedUp)
    with refused("not_a_direct_debit"):
        wallet.run(Refund(uuid4(), topped.topup_id, T0))
    assert wallet.balance == D("80.00")
