"""The person on a card, one Strawberry type shared by the queries (schema.py) and the
mutations (mutations.py, which schema.py imports, so it cannot import schema.py)."""

from __future__ import annotations

from typing import Generic, TypeVar

import strawberry

IdT = TypeVar("IdT")


@strawberry.type
class Person(Generic[IdT]):
    """A card's holder or beneficiary as the REST bodies have it; only the id's type differs
    (a holder's is a nullable String, a beneficiary's an ID). The GraphQL types are the
    subclasses below; `Person` itself is not in the schema."""

    id: IdT
    relationship: str | None
    national_id: str | None
    name: str | None
    date_of_birth: str | None
    phone_number: str | None


@strawberry.type
class Holder(Person[str | None]):
    """The card's primary holder."""


@strawberry.type
class Beneficiary(Person[strawberry.ID]):
    is_primary: bool
    added_at: str | None


@strawberry.type
class AddedBeneficiary(Person[strawberry.ID]):
    """A beneficiary as the write that added it answers (no primary flag, no time yet)."""
