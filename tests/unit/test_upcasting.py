"""Upcasting (domain/upcasting.py): each upcaster, the chain, and refusals of what this release
cannot read. Old payloads are checked against the committed JSON Schema of their version, so
"v1" here is what a release writing v1 accepted, not what this test imagines."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, ClassVar
from uuid import uuid4

import pytest
from jsonschema import Draft202012Validator  # type: ignore[import-untyped]

from domain import upcasting
from domain.events import (
    EVENT_TYPES,
    DomainEvent,
    UnknownEventType,
    WalletOpened,
    WalletToppedUp,
)
from domain.postings import gateway_account, transfer, wallet_account
from domain.upcasting import UPCASTERS, event_from_payload, upcast
from domain.wallet.model import evolve
from schemas.events import catalog

AT = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
PAID = datetime(2026, 12, 1, 9, 12, 5, tzinfo=UTC)
TOPPED_UP = WalletToppedUp.event_type


def schema_errors(event_type: str, version: int, payload: Any) -> list[str]:
    validator = Draft202012Validator(
        catalog.load(event_type, version), format_checker=Draft202012Validator.FORMAT_CHECKER
    )
    return [e.message for e in validator.iter_errors(payload)]


def topped_up(paid_at: datetime | None, amount: str = "120.00") -> WalletToppedUp:
    wallet_id, value = uuid4(), Decimal(amount)
    return WalletToppedUp(
        topup_id=uuid4(),
        gateway="fawry",
        gateway_reference=f"FWR-{uuid4().hex[:8]}",
        amount=value,
        balance_after=value,
        at=AT,
        paid_at=paid_at,
        postings=transfer(value, gateway_account("fawry"), wallet_account(wallet_id)),
    )


def as_v1(event: WalletToppedUp) -> dict[str, Any]:
    """The payload a release writing wallet.topped_up v1 stored for the same top-up."""
    payload = event.payload()
    del payload["paid_at"]
    assert schema_errors(TOPPED_UP, 1, payload) == []
    return payload


def test_topped_up_v1_reads_as_v2_with_paid_at_null_and_nothing_else_changed() -> None:
    v1 = as_v1(topped_up(paid_at=None))
    before = copy.deepcopy(v1)
    v2 = upcast(TOPPED_UP, 1, v1)
    assert v1 == before, "an upcaster must not change the stored payload it reads"
    assert v2 == {**v1, "paid_at": None}
    assert schema_errors(TOPPED_UP, 2, v2) == []


def test_a_v1_top_up_is_the_same_event_as_its_v2_without_a_payment_time() -> None:
    event = topped_up(paid_at=None)
    assert event_from_payload(TOPPED_UP, 1, as_v1(event)) == event
    assert event_from_payload(TOPPED_UP, 2, event.payload()) == event


def test_a_v2_payment_time_survives_the_round_trip() -> None:
    event = topped_up(paid_at=PAID)
    assert event.payload()["paid_at"] == "2026-12-01T09:12:05Z"
    assert event_from_payload(TOPPED_UP, 2, event.payload()) == event
    assert schema_errors(TOPPED_UP, 1, event.payload()) != [], "v1 had no paid_at"


def test_the_current_version_is_returned_as_it_is() -> None:
    payload = topped_up(paid_at=PAID).payload()
    assert upcast(TOPPED_UP, WalletToppedUp.schema_version, payload) is payload


def test_a_wallet_folded_from_v1_events_is_the_wallet_folded_from_v2() -> None:
    opened = WalletOpened(wallet_id=uuid4(), owner_user_id="u-1", currency="EGP", at=AT)
    top_ups = [topped_up(None, "50.00"), topped_up(None, "70.00")]
    from_v1, from_v2 = evolve(None, opened), evolve(None, opened)  # evolve folds in place
    for event in top_ups:
        from_v1 = evolve(from_v1, event_from_payload(TOPPED_UP, 1, as_v1(event)))
    for event in top_ups:
        from_v2 = evolve(from_v2, event_from_payload(TOPPED_UP, 2, event.payload()))
    assert from_v1 == from_v2
    assert from_v1.balance == Decimal("70.00")


@pytest.mark.parametrize("version", [3, 99])
def test_a_version_newer_than_this_release_is_refused_loudly(version: int) -> None:
    payload = topped_up(paid_at=PAID).payload()
    with pytest.raises(UnknownEventType, match=rf"wallet.topped_up v{version} .*v1 to v2"):
        upcast(TOPPED_UP, version, payload)
    with pytest.raises(UnknownEventType):
        event_from_payload(TOPPED_UP, version, payload)


@pytest.mark.parametrize("version", [0, -1])
def test_a_version_below_one_is_refused(version: int) -> None:
    with pytest.raises(UnknownEventType):
        upcast(TOPPED_UP, version, as_v1(topped_up(None)))


def test_an_unknown_event_type_is_refused() -> None:
    with pytest.raises(UnknownEventType, match=r"wallet\.teleported v1"):
        upcast("wallet.teleported", 1, {})


def test_a_gap_in_the_chain_is_refused_not_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(upcasting, "UPCASTERS", {})
    with pytest.raises(UnknownEventType, match=r"v1 \(no upcaster to v2\)"):
        upcast(TOPPED_UP, 1, as_v1(topped_up(None)))


class _Evolving(DomainEvent):
    """A stand-in event at v3, to drive a chain longer than the real one."""

    event_type: ClassVar[str] = "test.evolving"
    schema_version: ClassVar[int] = 3
    steps: tuple[str, ...]


def test_the_chain_applies_each_step_once_in_order(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(EVENT_TYPES, _Evolving.event_type, _Evolving)
    monkeypatch.setattr(
        upcasting,
        "UPCASTERS",
        {
            (_Evolving.event_type, 1): lambda p: {"steps": [*p["steps"], "1->2"]},
            (_Evolving.event_type, 2): lambda p: {"steps": [*p["steps"], "2->3"]},
        },
    )
    assert upcast(_Evolving.event_type, 1, {"steps": []}) == {"steps": ["1->2", "2->3"]}
    assert upcast(_Evolving.event_type, 2, {"steps": []}) == {"steps": ["2->3"]}
    assert event_from_payload(_Evolving.event_type, 1, {"steps": []}) == _Evolving(
        steps=("1->2", "2->3")
    )


def test_every_older_committed_version_has_an_upcaster_and_every_upcaster_a_schema() -> None:
    committed = set(catalog.committed())
    for ref in committed:
        if ref.version < EVENT_TYPES[ref.event_type].schema_version:
            assert (ref.event_type, ref.version) in UPCASTERS, f"{ref.filename}: no upcaster"
    for event_type, version in UPCASTERS:
        assert catalog.SchemaRef(event_type, version) in committed
        assert catalog.SchemaRef(event_type, version + 1) in committed
