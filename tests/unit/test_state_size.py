"""The aggregate cache's byte estimate stays close to what the states really hold.

The cache is bounded by `kind.size(state)` (command_service/aggregates.py), a sum of
per-part constants; this measures states with a deep sys.getsizeof, both as the write path
builds them (folded from the decider's events) and as a cold load does (from a snapshot's
JSON), and holds the estimate within a band of the measurement (a new field in a state
that the estimate does not count shows up here).
"""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

import pytest
from pydantic import BaseModel

from command_service.aggregates import HOLD_BYTES, MEDCARD, WALLET, AggregateKind, Loaded
from domain.medcard.commands import AddBeneficiary
from domain.medcard.holds import MAX_OPEN_HOLDS
from domain.medcard.refills import FILLS_KEPT, OVERRIDES_KEPT, GrantRefillOverride
from domain.medcard.state import CLAIM_WINDOW
from domain.wallet.model import Debit, TopUp
from tests.unit.builders import T0, Ledger, claim, issue, item, person


def deep_size(obj: Any, seen: set[int] | None = None) -> int:
    seen = set() if seen is None else seen
    if id(obj) in seen:
        return 0
    seen.add(id(obj))
    size = sys.getsizeof(obj)
    if isinstance(obj, UUID):
        return size + deep_size(obj.int, seen)
    if isinstance(obj, dict):
        return size + sum(deep_size(k, seen) + deep_size(v, seen) for k, v in obj.items())
    if isinstance(obj, list | tuple | set | frozenset):
        return size + sum(deep_size(x, seen) for x in obj)
    if isinstance(obj, BaseModel):
        return size + deep_size(obj.__dict__, seen) + deep_size(obj.__pydantic_fields_set__, seen)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return size + sum(deep_size(getattr(obj, f.name), seen) for f in dataclasses.fields(obj))
    return size  # str, int, Decimal, date, None...


def as_cold_loaded(kind: AggregateKind[Any], state: Any) -> Any:
    return kind.state.validate_python(kind.state.dump_python(state, mode="json"))


def assert_estimate_close(kind: AggregateKind[Any], state: Any) -> None:
    for built in (state, as_cold_loaded(kind, state)):
        measured = deep_size(Loaded(built, 1, kind.name))
        # Over is safe (the cache holds less than its budget); under would break the bound.
        assert 0.8 <= kind.size(built) / measured <= 1.5, (kind.size(built), measured)


def full_card(items_per_claim: int) -> Ledger:
    ledger = Ledger.with_card(
        issue(
            monthly_limit=Decimal("100000000"),
            may_override_terms=True,
            primary_holder=person(date(1980, 3, 3), relationship="self"),
            primary_beneficiary_id=uuid4(),
        )
    )
    ledger.run(AddBeneficiary(uuid4(), person(), T0))
    for n in range(CLAIM_WINDOW + 8):
        items = tuple(item(1, "1.50", f"D-{i}") for i in range(items_per_claim))
        total = Decimal("1.50") * items_per_claim if items else Decimal("350.00")
        ledger.claim(claim(total, prescription_id=f"rx-2026-{n:06d}", items=items))
    return ledger


def test_a_new_card() -> None:
    assert_estimate_close(MEDCARD, Ledger.with_card().state)


@pytest.mark.parametrize("items_per_claim", [0, 200])
def test_a_card_with_a_full_window(items_per_claim: int) -> None:
    state = full_card(items_per_claim).state
    assert len(state.recent_claims) == CLAIM_WINDOW
    assert_estimate_close(MEDCARD, state)


def test_a_card_with_full_refill_maps() -> None:
    ledger = full_card(0)
    for n in range(FILLS_KEPT):
        supplied = replace(item(1, "1.50", f"DRUG-{n:05d}"), days_supply=30)
        ledger.claim(claim("1.50", items=(supplied,), at=T0 + timedelta(hours=n)))
    for n in range(OVERRIDES_KEPT):
        ledger.grant(GrantRefillOverride(uuid4(), f"DRUG-{n:05d}", "travel", "ops-1", T0))
    assert len(ledger.state.refills.fills) == FILLS_KEPT
    assert len(ledger.state.refills.overrides) == OVERRIDES_KEPT
    assert_estimate_close(MEDCARD, ledger.state)


def test_a_claims_items_are_not_kept() -> None:
    # A 200-item claim event is ~370 KB in memory; its record is the size of a plain one's.
    plain, itemised = full_card(0).state, full_card(200).state
    assert deep_size(itemised) < 1.1 * deep_size(plain)


def test_a_wallet_with_movements() -> None:
    ledger = Ledger.with_card()
    ledger.open_wallet("0.00")
    for n in range(10):
        ledger.run_wallet(TopUp(uuid4(), "fawry", f"ref-{n:08d}", Decimal("100.00"), T0))
        ledger.run_wallet(Debit(uuid4(), Decimal("10.00"), "purchase", f"order-{n:08d}", T0))
    assert_estimate_close(WALLET, ledger.purse)


def test_a_card_with_its_open_holds_at_the_cap() -> None:
    ledger = full_card(0)
    for n in range(MAX_OPEN_HOLDS):
        ledger.hold("1.00", prescription_id=f"rx-held-{n:06d}")
    holds_only = deep_size(ledger.state.open_holds)
    assert_estimate_close(MEDCARD, ledger.state)
    # the estimate's per-hold bytes, against the holds measured on their own
    assert 0.8 <= HOLD_BYTES * MAX_OPEN_HOLDS / holds_only <= 1.5, holds_only / MAX_OPEN_HOLDS
