"""command_service/bodies.decode on bodies a fuzzer sent (make fuzz found a 500 here)."""

from __future__ import annotations

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
