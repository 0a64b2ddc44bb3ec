"""Beneficiaries: identity checks, the per-card-type limit, duplicates, removal."""

from __future__ import annotations

from datetime import date
from uuid import UUID, uuid4

import pytest

from domain.errors import Kind
from domain.events import BeneficiaryAdded, BeneficiaryRemoved, Holder
from domain.medcard.commands import (
    AddBeneficiary,
    CancelCard,
    ExpireCard,
    PersonDetails,
    RemoveBeneficiary,
    SuspendCard,
)
from tests.unit.builders import T0, Ledger, issue, national_id, person, refused, utc


def add(ledger: Ledger, details: PersonDetails, beneficiary_id: UUID | None = None) -> Holder:
    events = ledger.run(AddBeneficiary(beneficiary_id or uuid4(), details, T0))
    assert len(events) == 1
    event = events[0]
    assert isinstance(event, BeneficiaryAdded)
    assert event.at == T0
    return event.beneficiary


def test_a_beneficiary_is_added_with_normalised_details() -> None:
    ledger = Ledger.with_card()
    beneficiary_id = uuid4()
    holder = add(
        ledger,
        person(date(2015, 3, 9), relationship="child", name=" Omar  Ali ", phone="00201512345678"),
        beneficiary_id,
    )
    assert holder == Holder(
        beneficiary_id=beneficiary_id,
        relationship="child",
        national_id="31503090112345",
        name="Omar Ali",
        date_of_birth=date(2015, 3, 9),
        phone_number="+201512345678",
    )
    assert ledger.state.beneficiaries[beneficiary_id] == holder


@pytest.mark.parametrize(
    ("details", "code"),
    [
        (person(nid="2900517011234"), "invalid_national_id"),  # 13 digits
        (person(nid="290051701123456"), "invalid_national_id"),  # 15 digits
        (person(nid="29005170112a45"), "invalid_national_id"),
        (person(nid="19005170112345"), "invalid_national_id"),  # century digit 1
        (person(nid="49005170112345"), "invalid_national_id"),  # century digit 4
        (person(date(1990, 2, 28), nid="29002300112345"), "invalid_national_id"),  # 30 Feb
        (person(nid="29013170112345"), "invalid_national_id"),  # month 13
        (person(nid="29005170512345"), "invalid_national_id"),  # governorate 05
        (person(date(1990, 5, 18), nid="29005170112345"), "national_id_birth_date_mismatch"),
        (person(date(2026, 1, 16)), "invalid_national_id"),  # born tomorrow
        (person(phone="01312345678"), "invalid_phone_number"),
        (person(phone="01412345678"), "invalid_phone_number"),
        (person(phone="0101234567"), "invalid_phone_number"),
        (person(relationship="cousin"), "invalid_relationship"),
        (person(name="   "), "invalid_name"),
        (person(name="x" * 101), "invalid_name"),
    ],
)
def test_invalid_beneficiary_details_are_refused(details: PersonDetails, code: str) -> None:
    ledger = Ledger.with_card()
    with refused(code, Kind.INVALID):
        add(ledger, details)


@pytest.mark.parametrize(
    "born", [date(2000, 2, 29), date(1996, 2, 29), date(2026, 1, 15), date(1900, 1, 1)]
)
def test_edge_birth_dates_are_accepted(born: date) -> None:
    ledger = Ledger.with_card()
    assert add(ledger, person(born)).date_of_birth == born


@pytest.mark.parametrize("phone", ["01012345678", "01112345678", "01212345678", "01512345678"])
def test_every_egyptian_mobile_operator_is_accepted(phone: str) -> None:
    ledger = Ledger.with_card()
    assert add(ledger, person(phone="+20" + phone[1:])).phone_number == "+20" + phone[1:]


def test_a_name_of_100_characters_is_accepted() -> None:
    assert add(Ledger.with_card(), person(name="x" * 100)).name == "x" * 100


@pytest.mark.parametrize(("card_type", "limit"), [("silver", 3), ("gold", 5), ("platinum", 8)])
def test_beneficiaries_per_card_type_besides_the_primary_holder(card_type: str, limit: int) -> None:
    ledger = Ledger.with_card(issue(card_type=card_type))
    for n in range(limit):
        add(ledger, person(nid=national_id(date(1990, 5, 17), serial=f"{n:04d}")))
    assert len(ledger.state.beneficiaries) == limit + 1
    with refused("beneficiary_limit_reached", Kind.CONFLICT):
        add(ledger, person(nid=national_id(date(1990, 5, 17), serial="9999")))


def test_removing_a_beneficiary_frees_a_place() -> None:
    ledger = Ledger.with_card(issue(card_type="silver"))
    ids = [uuid4() for _ in range(3)]
    for n, beneficiary_id in enumerate(ids):
        add(ledger, person(nid=national_id(date(1990, 5, 17), serial=f"{n:04d}")), beneficiary_id)
    ledger.run(RemoveBeneficiary(ids[0], T0))
    add(ledger, person(nid=national_id(date(1990, 5, 17), serial="9999")))


def test_the_same_national_id_cannot_be_on_a_card_twice() -> None:
    ledger = Ledger.with_card()
    add(ledger, person())
    with refused("beneficiary_already_on_card", Kind.CONFLICT):
        add(ledger, person(name="Someone Else", phone="01112345678"))


def test_the_primary_holders_national_id_counts_as_on_the_card() -> None:
    ledger = Ledger.with_card(issue(primary_holder=person(relationship="self")))
    with refused("beneficiary_already_on_card", Kind.CONFLICT):
        add(ledger, person())


def test_a_removed_beneficiary_can_be_added_again() -> None:
    ledger = Ledger.with_card()
    first = add(ledger, person())
    ledger.run(RemoveBeneficiary(first.beneficiary_id, T0))
    add(ledger, person())


def test_remove_a_beneficiary() -> None:
    ledger = Ledger.with_card()
    holder = add(ledger, person())
    events = ledger.run(RemoveBeneficiary(holder.beneficiary_id, T0))
    assert events == [BeneficiaryRemoved(beneficiary_id=holder.beneficiary_id, at=T0)]
    assert holder.beneficiary_id not in ledger.state.beneficiaries


def test_the_primary_holder_cannot_be_removed() -> None:
    ledger = Ledger.with_card()
    with refused("primary_holder_not_removable", Kind.CONFLICT):
        ledger.run(RemoveBeneficiary(ledger.state.primary_beneficiary_id, T0))


def test_removing_an_unknown_beneficiary() -> None:
    ledger = Ledger.with_card()
    with refused("beneficiary_not_found", Kind.NOT_FOUND):
        ledger.run(RemoveBeneficiary(uuid4(), T0))
    holder = add(ledger, person())
    ledger.run(RemoveBeneficiary(holder.beneficiary_id, T0))
    with refused("beneficiary_not_found", Kind.NOT_FOUND):
        ledger.run(RemoveBeneficiary(holder.beneficiary_id, T0))


def test_beneficiaries_cannot_be_added_to_cancelled_or_expired_cards() -> None:
    cancelled = Ledger.with_card()
    cancelled.run(CancelCard(at=T0))
    with refused("invalid_status_transition", Kind.CONFLICT):
        add(cancelled, person())
    expired = Ledger.with_card()
    expired.run(ExpireCard(at=utc("2027-02-01T10:00")))
    with refused("invalid_status_transition", Kind.CONFLICT):
        add(expired, person())


def test_beneficiaries_can_be_added_to_pending_and_suspended_cards() -> None:
    add(Ledger.with_card(issue(activate=False)), person())
    suspended = Ledger.with_card()
    suspended.run(SuspendCard(at=T0))
    add(suspended, person())


def test_unknown_card() -> None:
    with refused("card_not_found", Kind.NOT_FOUND):
        Ledger().run(AddBeneficiary(uuid4(), person(), T0))
