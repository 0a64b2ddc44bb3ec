"""The GraphQL fields' argument checks, in one place: the resolvers (schema.py) and the card
query's plan (card_plan.py) read an argument the same way, so a plan never fetches what the
field would refuse. A refusal is BAD_USER_INPUT at the field; the cursor formats themselves
are api_gateway/freshness.py's, shared with the REST reads."""

from __future__ import annotations

import re
from uuid import UUID

import strawberry
from graphql import GraphQLError

from api_gateway import freshness, statements
from api_gateway.graphql.context import error
from api_gateway.read_models import ClaimFilter, ClaimsAfter
from infrastructure.http.problems import Problem

MAX_PAGE = 100
DEFAULT_FIRST = 20  # the connections' page size when `first` is not given
MONTH = re.compile(r"\d{4}-(0[1-9]|1[0-2])")


def uuid_or_none(value: strawberry.ID | str) -> UUID | None:
    """An id argument as a UUID; None for text that is no UUID (it names nothing)."""
    try:
        return UUID(str(value))
    except ValueError:
        return None


def page_size(first: int) -> int:
    if not 1 <= first <= MAX_PAGE:
        raise error("BAD_USER_INPUT", f"first must be an integer from 1 to {MAX_PAGE}")
    return first


def claims_after(after: str | None) -> ClaimsAfter | None:
    if after is None:
        return None
    try:
        return freshness.claims_after(after)
    except Problem as exc:
        raise error("BAD_USER_INPUT", "the cursor is not one this API issued") from exc


def transactions_before(after: str | None) -> int | None:
    if after is None:
        return None
    try:
        return freshness.transactions_before(after)
    except Problem as exc:
        raise error("BAD_USER_INPUT", "the cursor is not one this API issued") from exc


def benefit_month(month: str) -> str:
    if MONTH.fullmatch(month) is None:
        raise error("BAD_USER_INPUT", "month must be a benefit month, YYYY-MM")
    return month


def statement_filter(since: str | None, until: str | None, status: str | None) -> ClaimFilter:
    """`from`, `to` and `status` of a pharmacy's statement, as the REST read takes them; the
    error names the argument (extensions.argument)."""
    try:
        return statements.statement_filter(since, until, status)
    except Problem as exc:
        argument = exc.errors[0]["field"] if exc.errors else None
        raise GraphQLError(
            exc.detail, extensions={"code": "BAD_USER_INPUT", "argument": argument}
        ) from exc
