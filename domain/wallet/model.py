"""Member wallets: open, top up (idempotent by gateway reference), debit (no overdraft), refund,
and the member's consent to claims' copayments paid from the wallet (the consent's rule:
copay.py; docs/architecture.md, "Copayments from the wallet").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from uuid import NAMESPACE_URL, UUID, uuid5

from domain.calendar import benefit_month
from domain.errors import CommandRejected, Kind
from domain.events import (
    DomainEvent,
    WalletCopayConsentSet,
    WalletCopayDeclined,
    WalletDebited,
    WalletOpened,
    WalletRefunded,
    WalletToppedUp,
)
from domain.money import CURRENCY, ZERO, MoneyError, money
from domain.postings import gateway_account, transfer, wallet_account

GATEWAYS = frozenset({"fawry", "paymob"})
_WALLET_NAMESPACE = uuid5(NAMESPACE_URL, "https://healthpay.tech/ns/wallet")
DEFAULT_COUNTERPARTY = "settlement:healthpay"
# The purpose of a claim's copayment debit: reserved for claims (copay.pay_copay), because
# the consent's monthly usage is the sum of these debits.
COPAY_PURPOSE = "claim_copayment"


def wallet_id_for(user_id: str, currency: str = CURRENCY) -> UUID:
    """One wallet per member and currency, so a card finds its holder's wallet without a lookup."""
    return uuid5(_WALLET_NAMESPACE, f"{currency}:{user_id}")


@dataclass(frozen=True, slots=True)
class OpenWallet:
    wallet_id: UUID
    owner_user_id: str
    at: datetime


@dataclass(frozen=True, slots=True)
class TopUp:
    topup_id: UUID
    gateway: str
    gateway_reference: str
    amount: Decimal
    at: datetime
    paid_at: datetime | None = None  # the gateway's time of payment, if it told it


@dataclass(frozen=True, slots=True)
class Debit:
    debit_id: UUID
    amount: Decimal
    purpose: str
    reference: str
    at: datetime
    counterparty_account: str = DEFAULT_COUNTERPARTY


@dataclass(frozen=True, slots=True)
class Refund:
    refund_id: UUID
    debit_id: UUID
    at: datetime
    amount: Decimal | None = None  # None: whatever of the debit is not refunded yet
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class SetCopayConsent:
    per_claim_limit: Decimal
    monthly_limit: Decimal
    at: datetime


WalletCommand = OpenWallet | TopUp | Debit | Refund | SetCopayConsent


@dataclass(slots=True)
class WalletState:
    """Mutable on purpose, like MedCardState: `evolve` folds into it in place."""

    wallet_id: UUID
    owner_user_id: str
    currency: str
    balance: Decimal = ZERO
    # keyed by pair_key(gateway, gateway_reference) / pair_key(purpose, reference): string keys
    # keep the state serialisable to JSON for snapshots
    topups: dict[str, WalletToppedUp] = field(default_factory=dict)
    debits: dict[UUID, WalletDebited] = field(default_factory=dict)
    debits_by_reference: dict[str, UUID] = field(default_factory=dict)
    refunded: dict[UUID, Decimal] = field(default_factory=dict)
    # The member's consent (0: none, the default) and what claims took under it per Cairo
    # month ("2026-01"), net of refunds: one entry a month, so it stays small.
    copay_per_claim_limit: Decimal = ZERO
    copay_monthly_limit: Decimal = ZERO
    copay_used: dict[str, Decimal] = field(default_factory=dict)

    def copay_used_in(self, month: str) -> Decimal:
        return self.copay_used.get(month, ZERO)


def pair_key(first: str, second: str) -> str:
    """One unambiguous string for a pair (length-prefixed, so no separator can collide)."""
    return f"{len(first)}:{first}{second}"


def evolve(state: WalletState | None, event: DomainEvent) -> WalletState:
    if isinstance(event, WalletOpened):
        return WalletState(event.wallet_id, event.owner_user_id, event.currency)
    if state is None:
        raise ValueError(f"{event.event_type} before wallet.opened")
    match event:
        case WalletToppedUp():
            state.topups[pair_key(event.gateway, event.gateway_reference)] = event
            state.balance = event.balance_after
        case WalletDebited():
            state.debits[event.debit_id] = event
            state.debits_by_reference[pair_key(event.purpose, event.reference)] = event.debit_id
            if event.purpose == COPAY_PURPOSE:
                _add_copay_use(state, benefit_month(event.at), event.amount)
            state.balance = event.balance_after
        case WalletRefunded():
            state.refunded[event.debit_id] = state.refunded.get(event.debit_id, ZERO) + event.amount
            original = state.debits.get(event.debit_id)
            if original is not None and original.purpose == COPAY_PURPOSE:
                # a reversed claim gives the allowance back to the month it was taken from
                _add_copay_use(state, benefit_month(original.at), -event.amount)
            state.balance = event.balance_after
        case WalletCopayConsentSet():
            state.copay_per_claim_limit = event.per_claim_limit
            state.copay_monthly_limit = event.monthly_limit
        case WalletCopayDeclined():
            pass  # a record for the member; nothing changes
        case _:
            raise ValueError(f"not a wallet event: {event.event_type}")
    return state


def _add_copay_use(state: WalletState, month: str, amount: Decimal) -> None:
    state.copay_used[month] = state.copay_used_in(month) + amount


@dataclass(frozen=True, slots=True)
class WalletDecision:
    events: list[DomainEvent]
    # the event that answers the command: new, or the original one of an idempotent repeat
    result: DomainEvent


def decide(state: WalletState | None, command: WalletCommand) -> WalletDecision:
    if isinstance(command, OpenWallet):
        if state is not None:
            raise CommandRejected(
                "wallet_exists", "this member already has a wallet", Kind.CONFLICT
            )
        if not command.owner_user_id.strip():
            raise CommandRejected("invalid_user_id", "userId must not be blank")
        opened = WalletOpened(
            wallet_id=command.wallet_id,
            owner_user_id=command.owner_user_id,
            currency=CURRENCY,
            at=command.at,
        )
        return WalletDecision([opened], opened)
    if state is None:
        raise CommandRejected("wallet_not_found", "no such wallet", Kind.NOT_FOUND)
    match command:
        case TopUp():
            return _top_up(state, command)
        case SetCopayConsent():
            return _set_copay_consent(command)
        case Debit():
            if command.purpose == COPAY_PURPOSE:
                raise CommandRejected(
                    "reserved_purpose", f"{COPAY_PURPOSE!r} is reserved for claims' copayments"
                )
            event = debit(state, command)
            if event is None:
                original = state.debits[
                    state.debits_by_reference[pair_key(command.purpose, command.reference)]
                ]
                return WalletDecision([], original)
            return WalletDecision([event], event)
        case Refund():
            _refuse_unless_direct_debit(state, command.debit_id)
            refunded = refund(state, command)
            return WalletDecision([refunded], refunded)
    raise TypeError(f"unknown command {type(command).__name__}")


def _top_up(state: WalletState, command: TopUp) -> WalletDecision:
    if command.gateway not in GATEWAYS:
        raise CommandRejected(
            "unknown_gateway", f"gateway must be one of {', '.join(sorted(GATEWAYS))}"
        )
    amount = _positive(command.amount)
    if not command.gateway_reference.strip():
        raise CommandRejected("invalid_gateway_reference", "gateway reference must not be blank")
    original = state.topups.get(pair_key(command.gateway, command.gateway_reference))
    if original is not None:
        if original.amount != amount:
            raise CommandRejected(
                "duplicate_gateway_reference",
                "this gateway reference was already credited with another amount",
                Kind.CONFLICT,
            )
        return WalletDecision([], original)
    event = WalletToppedUp(
        topup_id=command.topup_id,
        gateway=command.gateway,
        gateway_reference=command.gateway_reference,
        amount=amount,
        balance_after=state.balance + amount,
        at=command.at,
        paid_at=command.paid_at,
        postings=transfer(
            amount, gateway_account(command.gateway), wallet_account(state.wallet_id)
        ),
    )
    return WalletDecision([event], event)


def debit(state: WalletState, command: Debit) -> WalletDebited | None:
    """The debit event, or None when this purpose and reference were already debited alike."""
    amount = _positive(command.amount)
    known = state.debits_by_reference.get(pair_key(command.purpose, command.reference))
    if known is not None:
        if state.debits[known].amount != amount:
            raise CommandRejected(
                "duplicate_debit_reference",
                "this reference was already debited with another amount",
                Kind.CONFLICT,
            )
        return None
    if amount > state.balance:
        raise CommandRejected(
            "insufficient_funds",
            f"the wallet holds {state.balance} {state.currency}, less than {amount}",
            Kind.CONFLICT,
        )
    return WalletDebited(
        debit_id=command.debit_id,
        amount=amount,
        purpose=command.purpose,
        reference=command.reference,
        balance_after=state.balance - amount,
        at=command.at,
        postings=transfer(amount, wallet_account(state.wallet_id), command.counterparty_account),
    )


def _set_copay_consent(command: SetCopayConsent) -> WalletDecision:
    per_claim = _limit(command.per_claim_limit, "perClaimLimit")
    monthly = _limit(command.monthly_limit, "monthlyLimit")
    if per_claim > monthly:
        raise CommandRejected(
            "invalid_copay_consent", "perClaimLimit must not be more than monthlyLimit"
        )
    # Always a new event, even for the same limits: each setting is the member's act, audited.
    event = WalletCopayConsentSet(per_claim_limit=per_claim, monthly_limit=monthly, at=command.at)
    return WalletDecision([event], event)


def _refuse_unless_direct_debit(state: WalletState, debit_id: UUID) -> None:
    """A refund asked for by itself is of a direct debit (a member's or staff's purchase).
    A claim's copayment goes back only with its claim's reversal (domain/medcard/claims.py),
    which restores the card's month in the same append; a top-up is no debit at all."""
    original = state.debits.get(debit_id)
    if original is not None and original.purpose == COPAY_PURPOSE:
        raise CommandRejected(
            "not_a_direct_debit",
            "this debit is a claim's copayment: reversing the claim refunds it",
        )
    if original is None and any(t.topup_id == debit_id for t in state.topups.values()):
        raise CommandRejected(
            "not_a_direct_debit", "this id is a top-up of the wallet, not a debit"
        )


def refund(state: WalletState, command: Refund) -> WalletRefunded:
    """The refunds of one debit never come to more than it: the one owner of that rule."""
    original = state.debits.get(command.debit_id)
    if original is None:
        raise CommandRejected("debit_not_found", "no such debit on this wallet", Kind.NOT_FOUND)
    refundable = original.amount - state.refunded.get(command.debit_id, ZERO)
    amount = refundable if command.amount is None else _positive(command.amount)
    if amount <= ZERO or amount > refundable:
        raise CommandRejected(
            "refund_exceeds_debit",
            f"{refundable} {state.currency} of this debit ({original.amount}) is still refundable",
            Kind.CONFLICT,
        )
    wallet_leg, counterparty_leg = original.postings
    return WalletRefunded(
        refund_id=command.refund_id,
        debit_id=command.debit_id,
        amount=amount,
        reason=command.reason,
        balance_after=state.balance + amount,
        at=command.at,
        postings=transfer(amount, counterparty_leg.account, wallet_leg.account),
    )


def _limit(value: Decimal, field: str) -> Decimal:
    try:
        amount = money(value)
    except MoneyError as exc:
        raise CommandRejected("invalid_amount", f"{field}: {exc}") from exc
    if amount < ZERO:
        raise CommandRejected("invalid_amount", f"{field} must not be negative")
    return amount


def _positive(value: Decimal) -> Decimal:
    try:
        amount = money(value)
    except MoneyError as exc:
        raise CommandRejected("invalid_amount", str(exc)) from exc
    if amount <= ZERO:
        raise CommandRejected("invalid_amount", "amount must be greater than zero")
    return amount
