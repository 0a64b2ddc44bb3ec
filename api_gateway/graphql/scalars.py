"""Scalars shared by the query and mutation types."""

from __future__ import annotations

from collections.abc import Mapping
from typing import NewType

import strawberry
from strawberry.types.scalar import ScalarDefinition

Long = NewType("Long", int)  # a 64-bit stream position

SCALARS: Mapping[object, ScalarDefinition] = {
    Long: strawberry.scalar(
        name="Long", serialize=int, parse_value=int, description="A 64-bit integer."
    )
}
