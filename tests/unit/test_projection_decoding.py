"""The projector's shape check accepts exactly what the domain model would, in its JSON form
(projection_service/read_models/decoding.py)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, cast
from uuid import UUID, uuid4

import pytest

from domain.events import (
    ClaimItemSplit,
    MedCardSuspended,
    Posting,
    WalletCopayDeclined,
    WalletOpened,
    WalletToppedUp,
)
from infrastructure.eventstore.port import RecordedEvent
from projection_service.read_models.decoding import PoisonEventError, decode

AT = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
WALLET = uuid4()


def recorded(event: Any, aggregate_type: str = "wallet", **data: Any) -> RecordedEvent:
    payload = {**event.payload(), **data}
    return RecordedEvent(
        7,
        uuid4(),
        WALLET,
        aggregate_type,
        event.event_type,
        event.schema_version,
        3,
        payload,
        {},
        AT,
    )


def topped_up() -> WalletToppedUp:
    return WalletToppedUp(
        topup_id=uuid4(),
        gateway="fawry",
        gateway_reference="gw-1",
        amount=Decimal("100.00"),
        balance_after=Decimal("350.00"),
        at=AT,
        paid_at=None,
        postings=(Posting(account="a", amount=Decimal("-100.00")),
                  Posting(account="b", amount=Decimal("100.00"))),
    )  # fmt: skip


def test_a_payload_as_the_model_dumps_it_is_taken_as_it_is() -> None:
    event = recorded(topped_up())
    assert decode(event).data is event.data


def test_a_v1_top_up_is_projected_as_v2_on_the_fast_path_and_the_strict_one() -> None:
    event = recorded(topped_up())
    v1 = replace(
        event, schema_version=1, data={k: v for k, v in event.data.items() if k != "paid_at"}
    )
    for strict in (False, True):
        assert decode(v1, strict=strict).data == event.data
    assert "paid_at" not in v1.data, "the stored payload is not changed"


@pytest.mark.parametrize("version", [0, 3])
def test_a_schema_version_this_release_cannot_read_is_poison(version: int) -> None:
    with pytest.raises(PoisonEventError, match=f"unknown event type wallet.topped_up v{version}"):
        decode(replace(recorded(topped_up()), schema_version=version))


def test_a_v1_payload_an_upcaster_cannot_read_is_poison() -> None:
    # jsonb holds any JSON value: the type says Mapping, a corrupt row need not be one
    not_an_object = cast("dict[str, Any]", ["not", "an", "object"])
    event = replace(recorded(topped_up()), schema_version=1, data=not_an_object)
    with pytest.raises(PoisonEventError, match="invalid payload"):
        decode(event)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"surprise": 1}, "surprise"),  # an unknown field
        ({"gateway": 7}, "gateway"),  # a number where the model has a string
        ({"postings": [{"account": "a"}]}, "amount"),  # a nested model's field missing
        ({"postings": "none"}, "postings"),
    ],
)
def test_what_the_model_refuses_is_poison_with_the_models_reason(
    change: dict[str, Any], reason: str
) -> None:
    with pytest.raises(PoisonEventError) as caught:
        decode(recorded(topped_up(), **change))
    assert caught.value.reason.startswith("invalid payload:")
    assert reason in caught.value.reason


def test_a_missing_field_and_a_literal_out_of_range_are_poison() -> None:
    declined = WalletCopayDeclined(
        claim_id=uuid4(),
        pharmacy_id="ph-1",
        amount=Decimal("5.00"),
        reason="no_consent",
        month="2026-03",
        balance=Decimal("0.00"),
        at=AT,
    )
    for bad in ({"reason": "felt like it"}, {"reason": None}):
        with pytest.raises(PoisonEventError):
            decode(recorded(declined, **bad))
    event = recorded(declined)
    without_month = replace(event, data={k: v for k, v in event.data.items() if k != "month"})
    with pytest.raises(PoisonEventError, match="month"):
        decode(without_month)


def test_another_json_form_the_model_accepts_is_projected_in_its_canonical_form() -> None:
    event = recorded(topped_up(), amount=100, topup_id=str(uuid4()).upper())
    data = decode(event).data
    assert data["amount"] == "100"
    assert data["topup_id"] == str(UUID(event.data["topup_id"]))


def test_strict_validates_in_full() -> None:
    # a string the shape check lets through (PostgreSQL's cast would refuse it)
    event = recorded(topped_up(), amount="lots")
    assert decode(event).data["amount"] == "lots"
    with pytest.raises(PoisonEventError, match="amount"):
        decode(event, strict=True)


def test_the_stream_must_be_the_entity_and_of_its_aggregate_type() -> None:
    opened = WalletOpened(wallet_id=uuid4(), owner_user_id="m-1", currency="EGP", at=AT)
    with pytest.raises(PoisonEventError, match="wallet_id is not the aggregate id"):
        decode(recorded(opened))
    suspended = MedCardSuspended(reason=None, at=AT)
    with pytest.raises(PoisonEventError, match="aggregate type"):
        decode(recorded(suspended, aggregate_type="wallet"))
    assert decode(recorded(suspended, aggregate_type="medcard")).data["reason"] is None


def test_every_event_models_field_has_a_json_shape() -> None:
    """A new kind of field in domain/events.py must be taught to the shape check."""
    from domain.events import EVENT_TYPES
    from projection_service.read_models.decoding import _shape

    for cls in (*EVENT_TYPES.values(), ClaimItemSplit, Posting):
        assert callable(_shape(cls))
