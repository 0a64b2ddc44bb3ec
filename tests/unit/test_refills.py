"""Refill too soon, its overrides, and velocity flags, through the pure deciders."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal
from uuid import uuid4

import pytest

from command_service.aggregates import MEDCARD
from domain.events import ClaimAdjudicated, RefillOverrideGranted
from domain.medcard.claims import adjudicate
from domain.medcard.commands import AddBeneficiary, ClaimItem
from domain.medcard.refills import (
    FILLS_KEPT,
    OVERRIDES_KEPT,
    REFILL_TOO_SOON,
    ClaimRules,
    GrantRefillOverride,
)
from domain.medcard.state import MedCardState, evolve
from domain.medcard.velocity import AMOUNT_PER_DAY, CLAIMS_PER_DAY, TALLIES_KEPT
from domain.upcasting import event_from_payload
from tests.unit.builders import T0, Ledger, claim, item, person, refused

DAY = timedelta(days=1)


def dose(drug: str = "D-1", days: int | None = 30) -> ClaimItem:
    return replace(item(1, "100.00", drug), days_supply=days)


def fill(
    ledger: Ledger, *items: ClaimItem, days_later: float = 0, **kw: object
) -> ClaimAdjudicated:
    total = sum((i.quantity * i.unit_price for i in items), Decimal(0))
    command = claim(total, items=items, at=T0 + timedelta(days=days_later), **kw)
    return ledger.claim(command).claim


def override(ledger: Ledger, drug: str = "D-1", **kw: object) -> RefillOverrideGranted:
    command = GrantRefillOverride(uuid4(), drug, "lost the pack", "ops-1", T0, **kw)  # type: ignore[arg-type]
    return ledger.grant(command)


def test_a_refill_before_three_quarters_of_the_supply_is_rejected_with_the_next_fill_date() -> None:
    ledger = Ledger.with_card()
    assert fill(ledger, dose(days=30)).decision == "approved"
    early = fill(ledger, dose(days=30), days_later=22)
    assert early.decision == "rejected"
    assert early.reasons == (REFILL_TOO_SOON,)
    assert early.covered_amount == 0
    # 30 x 0.75 = 22.5 days: the 23rd day after the fill is the first that passes
    assert early.next_available_fill_date == date(2026, 1, 15) + 23 * DAY
    on_time = fill(ledger, dose(days=30), days_later=23)
    assert on_time.decision == "approved"
    assert on_time.next_available_fill_date is None


def test_another_drug_or_another_beneficiary_is_not_held_back() -> None:
    ledger = Ledger.with_card()
    [added] = ledger.run(AddBeneficiary(uuid4(), person(), T0))
    fill(ledger, dose("D-1"))
    assert fill(ledger, dose("D-2"), days_later=1).decision == "approved"
    spouse = added.beneficiary.beneficiary_id  # type: ignore[attr-defined]
    assert fill(ledger, dose("D-1"), days_later=1, beneficiary_id=spouse).decision == "approved"
    assert fill(ledger, dose("D-1"), days_later=1).reasons == (REFILL_TOO_SOON,)


def test_a_claim_without_days_supply_is_checked_and_leaves_the_last_fill() -> None:
    ledger = Ledger.with_card()
    fill(ledger, dose(days=10))
    assert fill(ledger, dose(days=None), days_later=2).reasons == (REFILL_TOO_SOON,)
    assert fill(ledger, dose(days=None), days_later=8).decision == "approved"
    assert fill(ledger, dose(days=10), days_later=9).decision == "approved"  # 8 days after 0


def test_the_share_is_a_setting() -> None:
    ledger = Ledger.with_card()
    fill(ledger, dose(days=30))
    strict = ClaimRules(refill_min_elapsed_share=Decimal("1.0"))
    command = claim("100.00", items=(dose(),), at=T0 + 25 * DAY)
    decided = adjudicate(ledger.card, None, command, rules=strict).claim
    assert decided.next_available_fill_date == date(2026, 2, 14)


def test_a_reversed_fill_does_not_block() -> None:
    ledger = Ledger.with_card()
    first = fill(ledger, dose())
    ledger.reverse(first.claim_id)
    assert fill(ledger, dose(), days_later=1).decision == "approved"


def test_a_single_use_override_lets_exactly_one_early_claim_through() -> None:
    ledger = Ledger.with_card()
    fill(ledger, dose())
    granted = override(ledger)
    through = fill(ledger, dose(), days_later=1)
    assert through.decision == "approved"
    assert through.refill_overrides_used == (granted.override_id,)
    again = fill(ledger, dose(), days_later=2)
    assert again.reasons == (REFILL_TOO_SOON,)
    assert again.refill_overrides_used == ()


def test_a_dated_override_holds_until_its_day() -> None:
    ledger = Ledger.with_card()
    fill(ledger, dose(days=90))
    override(ledger, valid_until=date(2026, 1, 20))
    assert fill(ledger, dose(days=90), days_later=1).decision == "approved"
    assert fill(ledger, dose(days=90), days_later=5).decision == "approved"  # not consumed
    assert fill(ledger, dose(days=90), days_later=6).reasons == (REFILL_TOO_SOON,)


def test_a_rejected_claim_consumes_no_override() -> None:
    ledger = Ledger.with_card()
    fill(ledger, dose("D-1"))
    fill(ledger, dose("D-2"))
    override(ledger, "D-1")
    both = fill(ledger, dose("D-1"), dose("D-2"), days_later=1)  # D-2 is still early
    assert both.reasons == (REFILL_TOO_SOON,)
    assert fill(ledger, dose("D-1"), days_later=1).decision == "approved"


def test_an_override_is_refused_for_someone_not_on_the_card_or_a_past_day() -> None:
    ledger = Ledger.with_card()
    with refused("beneficiary_not_on_card"):
        override(ledger, beneficiary_id=uuid4())
    with refused("invalid_valid_until"):
        override(ledger, valid_until=date(2026, 1, 14))


@pytest.mark.parametrize("days", [0, 366, -1])
def test_days_supply_is_bounded(days: int) -> None:
    with refused("invalid_days_supply"):
        fill(Ledger.with_card(), dose(days=days))


def test_the_maps_stay_bounded_dropping_the_oldest() -> None:
    ledger = Ledger.with_card()
    for n in range(FILLS_KEPT + 5):
        fill(ledger, dose(f"D-{n:03d}"), days_later=n / 10)
        override(ledger, f"O-{n:03d}")
    fills = ledger.state.refills.fills
    assert len(fills) == FILLS_KEPT
    assert {key.split("/")[1] for key in fills} == {f"D-{n:03d}" for n in range(5, FILLS_KEPT + 5)}
    assert len(ledger.state.refills.overrides) == OVERRIDES_KEPT


def test_a_snapshot_carries_the_fills_and_overrides() -> None:
    ledger = Ledger.with_card()
    fill(ledger, dose())
    override(ledger, "D-9")
    cold: MedCardState = MEDCARD.state.validate_python(
        MEDCARD.state.dump_python(ledger.state, mode="json")
    )
    assert cold == ledger.state
    early = claim("100.00", items=(dose(),), at=T0 + DAY)
    assert adjudicate(cold, None, early).claim.reasons == (REFILL_TOO_SOON,)


def test_velocity_flags_the_claim_past_the_day_limits_and_never_refuses() -> None:
    ledger = Ledger.with_card()
    rules = ClaimRules(velocity_max_claims_per_day=2, velocity_max_amount_per_day=Decimal("250"))
    flags = []
    for n in range(3):
        command = claim("100.00", at=T0 + timedelta(minutes=n))
        decided = adjudicate(ledger.card, None, command, rules=rules)
        assert decided.claim.decision == "approved"
        ledger._apply_card(decided.card_events)
        flags.append(decided.claim.flags)
    assert flags == [(), (), (CLAIMS_PER_DAY, AMOUNT_PER_DAY)]
    next_day = adjudicate(ledger.card, None, claim("100.00", at=T0 + DAY), rules=rules)
    assert next_day.claim.flags == ()


def test_velocity_tallies_are_bounded() -> None:
    state = Ledger.with_card().state
    for n in range(TALLIES_KEPT + 3):
        event = fill(Ledger.with_card(), dose(days=None), days_later=n)
        state = evolve(state, event.model_copy(update={"beneficiary_id": uuid4()}))
    assert len(state.day_tallies) == TALLIES_KEPT


def test_a_v1_claim_reads_as_v2_without_supply_dates_or_flags() -> None:
    v2 = fill(Ledger.with_card(), dose(days=None))
    payload = v2.payload()
    for key in ("next_available_fill_date", "refill_overrides_used", "flags"):
        del payload[key]
    for split in payload["items"]:
        del split["days_supply"]
    assert event_from_payload(ClaimAdjudicated.event_type, 1, payload) == v2
