"""Settlement: what each insurer owes each pharmacy for a benefit month, read from the ledger's
postings only (never from the answers' amounts), so the report reconciles to the postings to
the piastre.

Per (insurer account, pharmacy account) and month (Cairo, the events' own time):
- covered: what claims moved from the insurer to the pharmacy; reversed: what reversals moved
  back (a reversal counts in the month it happened, whatever the claim's month);
- copay from wallets: what claims' copayment debits moved from members' wallets to the
  pharmacy, less what the reversals' wallet refunds moved back; attributed to the insurer of
  the claim they paid for (the debit's reference is the claim's id).

Pure: `settle` reads decoded events twice: first who is whose (a claim's insurer is its card's
provider, a copayment debit's claim its reference; a claim may be older than the month, and a
debit may precede its claim in the log), then the month's money. It is fed every event up to
the month's end and counts only the month's.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from uuid import UUID

from domain.calendar import benefit_month
from domain.events import (
    ClaimAdjudicated,
    ClaimReversed,
    DomainEvent,
    MedCardIssued,
    Posting,
    WalletDebited,
    WalletRefunded,
)
from domain.money import ZERO
from domain.postings import insurer_account
from domain.wallet.model import COPAY_PURPOSE

_INSURER = "insurer:"
_PHARMACY = "pharmacy:"


@dataclass(slots=True)
class SettlementLine:
    period: str
    insurer: str  # the account, insurer:<provider>
    pharmacy: str  # the account, pharmacy:<id>
    claims: int = 0  # claims that moved money from this insurer to this pharmacy
    reversals: int = 0
    covered: Decimal = ZERO
    reversed: Decimal = ZERO
    copay_from_wallets: Decimal = ZERO
    copay_refunded: Decimal = ZERO

    @property
    def net_covered(self) -> Decimal:
        """What the insurer owes the pharmacy for the month."""
        return self.covered - self.reversed

    @property
    def net_copay(self) -> Decimal:
        """What members' wallets paid the pharmacy for the month, through the ledger."""
        return self.copay_from_wallets - self.copay_refunded


@dataclass(frozen=True, slots=True)
class Recorded:
    """One stored event as settlement reads it: its stream, its payload decoded, its time."""

    aggregate_id: UUID
    event: DomainEvent
    at: datetime


@dataclass(slots=True)
class _Ledger:
    period: str
    lines: dict[tuple[str, str], SettlementLine] = field(default_factory=dict)
    insurer_of_card: dict[UUID, str] = field(default_factory=dict)
    insurer_of_claim: dict[UUID, str] = field(default_factory=dict)
    claim_of_debit: dict[UUID, UUID] = field(default_factory=dict)

    def learn(self, recorded: Recorded) -> None:
        event = recorded.event
        if isinstance(event, MedCardIssued):
            self.insurer_of_card[recorded.aggregate_id] = insurer_account(event.insurance_provider)
        elif isinstance(event, ClaimAdjudicated):
            insurer = self.insurer_of_card.get(recorded.aggregate_id)
            if insurer is not None:
                self.insurer_of_claim[event.claim_id] = insurer
        elif isinstance(event, WalletDebited) and event.purpose == COPAY_PURPOSE:
            self.claim_of_debit[event.debit_id] = UUID(event.reference)

    def line(self, insurer: str, pharmacy: str) -> SettlementLine:
        key = (insurer, pharmacy)
        if key not in self.lines:
            self.lines[key] = SettlementLine(self.period, insurer, pharmacy)
        return self.lines[key]

    def count(self, event: DomainEvent) -> None:
        if isinstance(event, ClaimAdjudicated | ClaimReversed):
            self._claim(event)
        elif isinstance(event, WalletDebited | WalletRefunded):
            self._copay(event)

    def _claim(self, event: ClaimAdjudicated | ClaimReversed) -> None:
        moved = _to_pharmacy(event.postings, _INSURER)
        if moved is None:
            return  # a rejected claim moves nothing
        insurer, pharmacy, amount = moved
        line = self.line(insurer, pharmacy)
        if isinstance(event, ClaimAdjudicated):
            line.claims += 1
            line.covered += amount
        else:
            line.reversals += 1
            line.reversed -= amount  # the reversal debits the pharmacy

    def _copay(self, event: WalletDebited | WalletRefunded) -> None:
        claim_id = self.claim_of_debit.get(event.debit_id)
        insurer = None if claim_id is None else self.insurer_of_claim.get(claim_id)
        moved = _to_pharmacy(event.postings, "member_wallet:")
        if insurer is None or moved is None:
            return  # no claim's copayment: a member's own purchase is not the insurer's business
        _, pharmacy, amount = moved
        line = self.line(insurer, pharmacy)
        if isinstance(event, WalletDebited):
            line.copay_from_wallets += amount
        else:
            line.copay_refunded -= amount


def _to_pharmacy(postings: Iterable[Posting], source: str) -> tuple[str, str, Decimal] | None:
    """(the source account, the pharmacy account, what the pharmacy received: negative when
    it gave back) of one event's postings; None when they move nothing between the two."""
    account = pharmacy = None
    amount = ZERO
    for posting in postings:
        if posting.account.startswith(source):
            account = posting.account
        elif posting.account.startswith(_PHARMACY):
            pharmacy, amount = posting.account, amount + posting.amount
    if account is None or pharmacy is None:
        return None
    return account, pharmacy, amount


def settle(period: str, events: Iterable[Recorded]) -> list[SettlementLine]:
    """The month's lines, sorted by insurer then pharmacy. `events`: every event up to at
    least the month's end (later ones are ignored)."""
    ledger = _Ledger(period)
    until = [r for r in events if benefit_month(r.at) <= period]
    for recorded in until:
        ledger.learn(recorded)
    for recorded in until:
        if benefit_month(recorded.at) == period:
            ledger.count(recorded.event)
    return sorted(ledger.lines.values(), key=lambda line: (line.insurer, line.pharmacy))
