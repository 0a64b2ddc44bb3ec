"""Card events for the notifier's tests, published to Kafka as the relay publishes them."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime
from decimal import Decimal
from uuid import UUID, uuid4

from confluent_kafka import Producer

from domain.events import (
    BeneficiaryAdded,
    ClaimAdjudicated,
    DomainEvent,
    Holder,
    MedCardIssued,
    WalletDebited,
    WalletOpened,
    WalletToppedUp,
)
from infrastructure.eventstore.envelope import to_envelope
from infrastructure.eventstore.port import RecordedEvent
from tests.log_scan import personal

NOW = datetime(2026, 12, 4, 10, 0, tzinfo=UTC)
_positions = itertools.count(1)


class CardStream:
    """One card's events, in order, with the stream's versions."""

    def __init__(self, phone: str, monthly_limit: Decimal = Decimal("1000.00")) -> None:
        self.card_id = uuid4()
        self.holder_id = uuid4()
        self.phone = personal(phone)  # the log scan checks no log line carries it
        self.monthly_limit = monthly_limit
        self.version = 0
        self.spent = Decimal("0.00")

    @property
    def user_id(self) -> str:
        return f"user-{self.card_id}"

    def _recorded(self, event: DomainEvent) -> RecordedEvent:
        self.version += 1
        return recorded(self.card_id, "medcard", self.version, event)

    def beneficiary(self, phone: str) -> tuple[UUID, RecordedEvent]:
        person = Holder(
            beneficiary_id=uuid4(),
            relationship="child",
            name="Test Child",
            phone_number=personal(phone),
        )
        return person.beneficiary_id, self._recorded(BeneficiaryAdded(beneficiary=person, at=NOW))

    def issued(self) -> RecordedEvent:
        holder = Holder(
            beneficiary_id=self.holder_id,
            relationship="self",
            name="Test Holder",
            phone_number=self.phone,
        )
        return self._recorded(
            MedCardIssued(
                card_id=self.card_id,
                card_number=f"6{self.card_id.int % 10**15:015d}",
                user_id=self.user_id,
                card_type="standard",
                status="ACTIVE",
                monthly_limit=self.monthly_limit,
                copay_percent=Decimal("20"),
                max_beneficiaries=5,
                currency="EGP",
                primary_holder=holder,
                insurance_provider=None,
                policy_number=None,
                issued_at=NOW,
                expiry_date=date(2027, 12, 31),
            )
        )

    def claim(
        self, covered: Decimal, copay: Decimal, beneficiary: UUID | None = None
    ) -> RecordedEvent:
        self.spent += covered
        return self._recorded(
            ClaimAdjudicated(
                claim_id=uuid4(),
                prescription_id=f"rx-{uuid4()}",
                pharmacy_id="pharmacy-1",
                beneficiary_id=beneficiary or self.holder_id,
                request_fingerprint="f" * 64,
                decision="approved",
                reasons=(),
                total_amount=covered + copay,
                covered_amount=covered,
                copayment_amount=copay,
                copay_percent=Decimal("20"),
                items=(),
                month="2026-12",
                monthly_limit=self.monthly_limit,
                month_spent_after=self.spent,
                remaining_after=self.monthly_limit - self.spent,
                wallet_id=None,
                copayment_paid_from_wallet=Decimal("0.00"),
                claimed_at=NOW,
                postings=(),
            )
        )


def recorded(aggregate_id: UUID, kind: str, version: int, event: DomainEvent) -> RecordedEvent:
    return RecordedEvent(
        position=next(_positions),
        event_id=uuid4(),
        aggregate_id=aggregate_id,
        aggregate_type=kind,
        event_type=event.event_type,
        schema_version=event.schema_version,
        version=version,
        data=event.payload(),
        metadata={},
        timestamp=NOW,
    )


class WalletStream:
    def __init__(self, owner_user_id: str) -> None:
        self.wallet_id = uuid4()
        self.owner = owner_user_id
        self.version = 0
        self.balance = Decimal("0.00")

    def _recorded(self, event: DomainEvent) -> RecordedEvent:
        self.version += 1
        return recorded(self.wallet_id, "wallet", self.version, event)

    def opened(self) -> RecordedEvent:
        return self._recorded(
            WalletOpened(wallet_id=self.wallet_id, owner_user_id=self.owner, currency="EGP", at=NOW)
        )

    def topped_up(self, amount: Decimal) -> RecordedEvent:
        self.balance += amount
        return self._recorded(
            WalletToppedUp(
                topup_id=uuid4(),
                gateway="fawry",
                gateway_reference=f"ref-{uuid4()}",
                amount=amount,
                balance_after=self.balance,
                at=NOW,
                paid_at=None,
                postings=(),
            )
        )

    def debited(self, amount: Decimal) -> RecordedEvent:
        self.balance -= amount
        return self._recorded(
            WalletDebited(
                debit_id=uuid4(),
                amount=amount,
                purpose="copayment",
                reference=f"claim-{uuid4()}",
                balance_after=self.balance,
                at=NOW,
                postings=(),
            )
        )


def publish(bootstrap: str, topic: str, events: list[RecordedEvent], partition: int = 0) -> None:
    producer = Producer({"bootstrap.servers": bootstrap})
    for event in events:
        producer.produce(
            topic,
            key=str(event.aggregate_id).encode(),
            value=to_envelope(event),
            partition=partition,
        )
    assert producer.flush(30) == 0
