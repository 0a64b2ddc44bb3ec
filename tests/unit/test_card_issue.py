"""Issuing a MedCard: card-type defaults, admin-only overrides, card numbers, expiry, status."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any
from uuid import uuid4

import pytest

from domain.errors import Kind
from domain.events import MedCardIssued
from domain.medcard.card_types import CARD_TYPES
from domain.medcard.decider import decide
from tests.unit.builders import T0, USER, Ledger, card_number, issue, person, refused, utc


def issued(**overrides: Any) -> MedCardIssued:
    events = decide(None, issue(**overrides))
    assert len(events) == 1
    event = events[0]
    assert isinstance(event, MedCardIssued)
    return event


@pytest.mark.parametrize(
    ("card_type", "limit", "copay", "max_beneficiaries", "expiry"),
    [
        ("silver", "2000.00", "20.00", 3, date(2027, 1, 15)),
        ("gold", "5000.00", "10.00", 5, date(2027, 1, 15)),
        ("platinum", "10000.00", "5.00", 8, date(2028, 1, 15)),
    ],
)
def test_card_type_defaults(
    card_type: str, limit: str, copay: str, max_beneficiaries: int, expiry: date
) -> None:
    event = issued(card_type=card_type)
    assert event.card_type == card_type
    assert event.monthly_limit == Decimal(limit)
    assert event.copay_percent == Decimal(copay)
    assert event.max_beneficiaries == max_beneficiaries
    assert event.expiry_date == expiry
    assert event.currency == "EGP"
    assert event.status == "ACTIVE"
    assert event.issued_at == T0
    assert event.user_id == USER


def test_the_card_types_are_exactly_silver_gold_platinum() -> None:
    assert set(CARD_TYPES) == {"silver", "gold", "platinum"}


def test_unknown_card_type_is_refused() -> None:
    with refused("unknown_card_type"):
        decide(None, issue(card_type="diamond"))


def test_card_type_is_case_sensitive() -> None:
    with refused("unknown_card_type"):
        decide(None, issue(card_type="Gold"))


def test_a_limit_equal_to_the_default_is_not_an_override() -> None:
    # the seed's end-to-end flow sends monthlyLimit 5000 for a gold card as a non-admin
    event = issued(monthly_limit=Decimal("5000"), copay_percent=Decimal("10"))
    assert event.monthly_limit == Decimal("5000.00")
    assert event.copay_percent == Decimal("10.00")


@pytest.mark.parametrize(
    "override",
    [
        {"monthly_limit": Decimal("6000")},
        {"monthly_limit": Decimal("4999.99")},
        {"copay_percent": Decimal("0")},
        {"copay_percent": Decimal("10.01")},
    ],
)
def test_only_admins_may_override_limit_or_copay(override: dict[str, Any]) -> None:
    with refused("terms_override_forbidden", Kind.FORBIDDEN):
        decide(None, issue(**override))
    event = issued(may_override_terms=True, **override)
    for field_name, value in override.items():
        assert getattr(event, field_name) == value


@pytest.mark.parametrize("limit", ["0", "-100", "100.001", "NaN"])
def test_monthly_limit_must_be_a_positive_amount(limit: str) -> None:
    with refused("invalid_amount"):
        decide(None, issue(monthly_limit=Decimal(limit), may_override_terms=True))


@pytest.mark.parametrize("copay", ["-0.01", "100.01", "250"])
def test_copay_percent_must_be_between_0_and_100(copay: str) -> None:
    with refused("invalid_copay_percent"):
        decide(None, issue(copay_percent=Decimal(copay), may_override_terms=True))


def test_copay_percent_of_0_and_100_are_allowed_to_admins() -> None:
    assert issued(copay_percent=Decimal("0"), may_override_terms=True).copay_percent == 0
    assert issued(copay_percent=Decimal("100"), may_override_terms=True).copay_percent == 100


@pytest.mark.parametrize(
    "number",
    [
        card_number()[:-1] + str((int(card_number()[-1]) + 1) % 10),  # Luhn check digit off
        card_number()[:15],
        card_number() + "0",
        "79927398713",  # Luhn-valid but 11 digits
        "6048-1234-5678-9012",
        "",
    ],
)
def test_card_number_must_be_16_luhn_valid_digits(number: str) -> None:
    with refused("invalid_card_number"):
        decide(None, issue(card_number=number))


@pytest.mark.parametrize("user_id", ["", "   "])
def test_user_id_must_not_be_blank(user_id: str) -> None:
    with refused("invalid_user_id"):
        decide(None, issue(user_id=user_id))


def test_default_expiry_counts_from_the_cairo_date() -> None:
    # 22:30 UTC on 31 January is already 1 February in Cairo
    event = issued(at=utc("2026-01-31T22:30"))
    assert event.expiry_date == date(2027, 2, 1)
    event = issued(at=utc("2026-01-31T21:30"))
    assert event.expiry_date == date(2027, 1, 31)


def test_default_expiry_from_a_leap_day_is_clamped() -> None:
    assert issued(at=utc("2028-02-29T10:00")).expiry_date == date(2029, 2, 28)


def test_an_explicit_expiry_date_is_kept() -> None:
    assert issued(expiry_date=date(2026, 6, 30)).expiry_date == date(2026, 6, 30)


@pytest.mark.parametrize("expiry", [date(2026, 1, 15), date(2025, 12, 31)])
def test_expiry_date_must_be_after_today_in_cairo(expiry: date) -> None:
    with refused("invalid_expiry_date"):
        decide(None, issue(expiry_date=expiry))


def test_a_new_card_is_active_unless_asked_otherwise() -> None:
    assert issued().status == "ACTIVE"
    assert issued(activate=False).status == "PENDING"


def test_without_holder_details_the_primary_beneficiary_is_the_card_itself() -> None:
    card_id = uuid4()
    event = issued(card_id=card_id)
    assert event.primary_holder.beneficiary_id == card_id
    assert event.primary_holder.relationship == "self"
    assert event.primary_holder.national_id is None


def test_primary_holder_details_are_validated_and_normalised() -> None:
    holder_id = uuid4()
    event = issued(
        primary_beneficiary_id=holder_id,
        primary_holder=person(relationship="self", name="  Ahmed   Hassan ", phone="+201112345678"),
        insurance_provider="Misr Insurance",
        policy_number="POL-1",
    )
    holder = event.primary_holder
    assert holder.beneficiary_id == holder_id
    assert holder.name == "Ahmed Hassan"
    assert holder.phone_number == "+201112345678"
    assert holder.national_id == "29005170112345"
    assert (event.insurance_provider, event.policy_number) == ("Misr Insurance", "POL-1")


def test_invalid_primary_holder_is_refused() -> None:
    with refused("invalid_phone_number"):
        decide(None, issue(primary_holder=person(relationship="self", phone="01312345678")))
    with refused("national_id_birth_date_mismatch"):
        decide(
            None,
            issue(primary_holder=person(relationship="self", nid="29005180112345")),
        )


def test_a_card_id_cannot_be_issued_twice() -> None:
    ledger = Ledger.with_card()
    with refused("card_exists", Kind.CONFLICT):
        ledger.run(issue(card_id=ledger.state.card_id))


def test_state_after_issue() -> None:
    command = issue(card_type="silver")
    ledger = Ledger.with_card(command)
    state = ledger.state
    assert state.card_id == command.card_id
    assert state.status == "ACTIVE"
    assert state.monthly_limit == Decimal("2000.00")
    assert state.primary_beneficiary_id == command.card_id
    assert list(state.beneficiaries) == [command.card_id]
    assert state.remaining_in("2026-01") == Decimal("2000.00")
