"""command_service/bodies.decode on bodies a fuzzer sent (make fuzz found a 500 here)."""

from __future__ import annotations

from decimal import Decimal

import orjson
import pytest
from pydantic import BaseModel, Field

from command_service.bodies import decode
from infrastructure.http.problems import Problem


class _Body(BaseModel):
    ratio: float
    count: int = Field(le=1000)


@pytest.mark.parametrize(
    "raw",
    [
        # A fraction sends the body down the exact-numbers path; an integer past 64 bits
        # beside it broke that path's re-encoding (TypeError -> 500).
        b'{"ratio": 1.5, "count": 100000000000000000000000}',
        b'{"ratio": 1e400, "count": 100000000000000000000000}',
    ],
)
def test_an_integer_past_64_bits_beside_a_fraction_is_a_422(raw: bytes) -> None:
    with pytest.raises(Problem) as info:
        decode(_Body, raw)
    assert info.value.status == 422


@pytest.mark.parametrize("spelt", ["145979.0", "145979.00", "145979"])
def test_a_whole_number_with_zero_decimals_is_an_integer_on_either_path(spelt: str) -> None:
    """A negative number elsewhere (an ignored field of a gateway's callback) sends the body
    down the exact-numbers path; what JSON calls an integer stays one there (make fuzz found
    145979.0 refused as 'must be a whole number')."""
    from schemas.api.commands import PaymobCallbackBody
    from tests.api.gateways import PAYMOB_SAMPLE

    obj = (
        orjson.dumps(PAYMOB_SAMPLE)
        .decode()
        .replace('"amount_cents":100000', f'"amount_cents":{spelt}')
    )
    for extra in ("", ', "other": -1977', ', "other": 3.3e+16'):
        raw = f'{{"type": "TRANSACTION", "obj": {obj}{extra}}}'.encode()
        assert decode(PaymobCallbackBody, raw).obj.amount_cents == 145979


@pytest.mark.parametrize("spelt", ["145979.5", "145979.000", "-145979.0", "1.45979e5"])
def test_other_fractions_are_not_integers_on_the_exact_path(spelt: str) -> None:
    from schemas.api.commands import PaymobCallbackBody
    from tests.api.gateways import PAYMOB_SAMPLE

    obj = (
        orjson.dumps(PAYMOB_SAMPLE)
        .decode()
        .replace('"amount_cents":100000', f'"amount_cents":{spelt}')
    )
    raw = f'{{"type": "TRANSACTION", "obj": {obj}, "other": -1}}'.encode()
    with pytest.raises(Problem) as info:
        decode(PaymobCallbackBody, raw)
    assert info.value.status == 422


@pytest.mark.parametrize(
    "number", ["1.1659326681898194e+207", "-2.530433953397108e-184", "-1", "-0", "1.005"]
)
def test_a_number_for_a_text_field_is_refused_on_the_exact_path(number: str) -> None:
    """The exact-numbers path passes numbers on as their text: a text field must still refuse
    them (make fuzz: {"reason": 1.1659326681898194e+207} suspended a card)."""
    from schemas.api.commands import StatusChangeBody

    with pytest.raises(Problem) as info:
        decode(StatusChangeBody, f'{{"reason": {number}}}'.encode())
    assert info.value.status == 422
    [error] = info.value.errors or []
    assert error["field"] == "reason"
    # (an integer reaches the field as one: pydantic's own words)
    assert error["message"] in {"must be a string, not a number", "Input should be a valid string"}


def test_amounts_on_the_exact_path_are_judged_by_their_text() -> None:
    from schemas.api.commands import TopUpBody

    def top_up(amount: str) -> bytes:
        return f'{{"gateway": "fawry", "gatewayReference": "r-1", "amount": {amount}}}'.encode()

    assert decode(TopUpBody, top_up("100.5")).amount == Decimal("100.50")
    for refused in ("1E+2", "100.505", "-1"):
        with pytest.raises(Problem) as info:
            decode(TopUpBody, top_up(refused))
        assert [e["field"] for e in info.value.errors or []] == ["amount"]
