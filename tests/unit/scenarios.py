"""A card's and its wallet's whole life, producing every event type at least once."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal
from uuid import uuid4

from domain.events import DomainEvent
from domain.medcard.commands import (
    ActivateCard,
    AddBeneficiary,
    CancelCard,
    ExpireCard,
    ReactivateCard,
    RemoveBeneficiary,
    RenewCard,
    SuspendCard,
)
from domain.medcard.holds import VoidHold
from domain.medcard.refills import GrantRefillOverride
from domain.wallet.model import Debit, Refund, TopUp
from tests.unit.builders import (
    PHARMACY,
    T0,
    Ledger,
    claim,
    issue,
    item,
    national_id,
    person,
    utc,
)


def full_history() -> Ledger:
    ledger = Ledger.with_card(
        issue(
            activate=False,
            primary_holder=person(date(1985, 7, 1), relationship="self", name="Ahmed Hassan"),
            primary_beneficiary_id=uuid4(),
            insurance_provider="misr",
            policy_number="POL-9",
        )
    )
    ledger.run(ActivateCard(at=T0))
    child, spouse = uuid4(), uuid4()
    ledger.run(AddBeneficiary(child, person(date(2016, 2, 29), relationship="child"), T0))
    ledger.run(
        AddBeneficiary(
            spouse,
            person(nid=national_id(date(1990, 5, 17), governorate="88"), phone="+201212345678"),
            T0,
        )
    )
    ledger.run(RemoveBeneficiary(spouse, T0))

    ledger.open_wallet("200.00")
    ledger.run_wallet(TopUp(uuid4(), "paymob", "pm-1", Decimal("50.00"), T0))
    # declined: no consent yet
    ledger.claim(claim("300.00", items=(item(3, "100.00", "C"),), pay_copayment_from_wallet=True))
    ledger.consent("100.00", "300.00")
    paid = ledger.claim(
        claim(
            "120.50",
            items=(item(2, "10.25", "A"), item(1, "100.00", "B")),
            pay_copayment_from_wallet=True,
        )
    ).claim
    ledger.claim(claim("80.00", beneficiary_id=child))
    ledger.claim(claim("10.00", beneficiary_id=spouse))  # rejected: removed
    ledger.claim(claim("4900.00", at=utc("2026-01-31T21:00")))  # partial
    ledger.reverse(paid.claim_id, at=utc("2026-02-01T09:00"), reason="wrong drug")
    purchase = Debit(uuid4(), Decimal("20.00"), "purchase", "order-1", T0)
    ledger.run_wallet(purchase)
    ledger.run_wallet(Refund(uuid4(), purchase.debit_id, T0, amount=Decimal("5.00")))

    voided = ledger.hold("30.00", prescription_id="rx-voided")
    ledger.void(VoidHold(voided.hold_id, T0, PHARMACY, reason="not dispensed"))
    held = ledger.hold("40.00")
    ledger.claim_capturing(claim("40.00", prescription_id="rx-held", hold_id=held.hold_id))

    ledger.run(SuspendCard(at=utc("2026-03-01T09:00"), reason="card reported lost"))
    ledger.run(ReactivateCard(at=utc("2026-03-02T09:00")))
    ledger.run(RenewCard(at=utc("2026-06-01T09:00")))
    ledger.run(ExpireCard(at=utc("2028-02-01T09:00")))
    ledger.run(RenewCard(at=utc("2028-02-01T10:00")))
    ledger.claim(claim("60.00", at=utc("2028-02-02T10:00")))
    # a 30-day supply, a refill too soon, an override, the refill it lets through
    for at in ("2028-02-03T10:00", "2028-02-04T10:00", "2028-02-04T12:00"):
        if at.endswith("12:00"):
            ledger.grant(
                GrantRefillOverride(uuid4(), "R", "lost", "ops-1", utc("2028-02-04T11:00"))
            )
        supply = replace(item(1, "20.00", "R"), days_supply=30)
        ledger.claim(claim("20.00", items=(supply,), at=utc(at)))
    ledger.run(CancelCard(at=utc("2028-03-01T09:00"), reason="member left"))
    ledger.claim(claim("60.00", at=utc("2028-03-02T10:00")))  # rejected: cancelled
    return ledger


def every_event() -> list[DomainEvent]:
    ledger = full_history()
    return [*ledger.card_log, *ledger.wallet_log]
