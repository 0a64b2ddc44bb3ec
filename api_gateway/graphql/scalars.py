"""Scalars shared by the query and mutation types."""

from __future__ import annotations

from collections.abc import Mapping
from typing import NewType

import strawberry
from graphql import GraphQLError
from strawberry.types.scalar import ScalarDefinition

Long = NewType("Long", int)  # a 64-bit stream position

LONG_MAX = 2**63 - 1


def _parse_long(value: object) -> int:
    # int() would also take "12", 1.5 and True; a position is a JSON integer or nothing.
    # A GraphQLError, not a ValueError: graphql-core would wrap that as an unexpected
    # failure, which the schema masks as "Unexpected error."
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= LONG_MAX:
        raise GraphQLError(
            "a Long is an integer from 0 to 2^63-1", extensions={"code": "BAD_USER_INPUT"}
        )
    return value


SCALARS: Mapping[object, ScalarDefinition] = {
    Long: strawberry.scalar(
        name="Long",
        serialize=int,
        parse_value=_parse_long,
        description="A non-negative 64-bit integer (an event position).",
    )
}
