"""What a card query's one statement must fetch, read from its selection set.

`medcard(id)` and `medcardByNumber` read the card in one statement (read_models.card_view)
with whatever the query selects under it: its beneficiaries, one page of its claims (with
their items when selected) and its spend in the months named. The plan is only an
optimisation: the fields still resolve through the request's DataLoaders, which the card
read primes, so anything the plan leaves out (two different claims pages under one card, an
argument the field will refuse, an argument given as something other than a literal or a
variable) is read by its own loader as before, and refused by its own field.

When the card is the operation's only root field and the plan covers every field under it
(`reads_alone`), its statement is the request's only read and runs without a transaction.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    IntValueNode,
    NullValueNode,
    SelectionSetNode,
    StringValueNode,
    VariableNode,
)
from strawberry.types import Info

from api_gateway.graphql.arguments import DEFAULT_FIRST, benefit_month, claims_after, page_size
from api_gateway.read_models import CardPlan

_UNKNOWN = object()  # an argument the plan does not read (the field reads it itself)


Fragments = Mapping[str, FragmentDefinitionNode]


def _fields(selections: SelectionSetNode | None, fragments: Fragments) -> Iterator[FieldNode]:
    """The fields of a selection set, fragments spread (a cycle is refused by validation)."""
    for selection in selections.selections if selections is not None else ():
        if isinstance(selection, FieldNode):
            yield selection
        elif isinstance(selection, InlineFragmentNode):
            yield from _fields(selection.selection_set, fragments)
        elif isinstance(selection, FragmentSpreadNode):
            fragment = fragments.get(selection.name.value)
            if fragment is not None:
                yield from _fields(fragment.selection_set, fragments)


def _argument(field: FieldNode, name: str, variables: Mapping[str, Any], default: Any) -> Any:
    for argument in field.arguments or ():
        if argument.name.value != name:
            continue
        value = argument.value
        if isinstance(value, VariableNode):
            return variables.get(value.name.value, default)
        if isinstance(value, IntValueNode):
            return int(value.value)
        if isinstance(value, StringValueNode):
            return value.value
        if isinstance(value, NullValueNode):
            return None
        return _UNKNOWN
    return default


def _selects_items(claims: FieldNode, fragments: Fragments) -> bool:
    return any(
        item.name.value == "items"
        for edges in _fields(claims.selection_set, fragments)
        if edges.name.value == "edges"
        for node in _fields(edges.selection_set, fragments)
        if node.name.value == "node"
        for item in _fields(node.selection_set, fragments)
    )


def card_plan(info: Info[Any, Any]) -> CardPlan:
    """The plan of the card field `info` resolves (every node of it, if aliased alike)."""
    raw = info._raw_info
    fragments, values = raw.fragments, raw.variable_values
    # graphql-core's executor hands resolvers the coerced values themselves (a dict), though
    # its type names the NamedTuple that holds them
    variables: Mapping[str, Any] = values if isinstance(values, Mapping) else values.coerced
    beneficiaries, items = False, False
    pages: set[Any] = set()
    months: list[str] = []
    for card in raw.field_nodes:
        for field in _fields(card.selection_set, fragments):
            name = field.name.value
            if name == "beneficiaries":
                beneficiaries = True
            elif name == "claims":
                first = _argument(field, "first", variables, DEFAULT_FIRST)
                after = _argument(field, "after", variables, None)
                try:
                    pages.add((page_size(first), claims_after(after)))
                except (GraphQLError, TypeError):
                    pages.add(_UNKNOWN)
                items = items or _selects_items(field, fragments)
            elif name == "monthlySpend":
                month = _argument(field, "month", variables, None)
                with contextlib.suppress(GraphQLError, TypeError):
                    months.append(benefit_month(month))
    claims = next(iter(pages)) if len(pages) == 1 and _UNKNOWN not in pages else None
    return CardPlan(
        beneficiaries=beneficiaries,
        claims=claims,
        claim_items=items and claims is not None,
        months=tuple(dict.fromkeys(months)),
    )


def _claims_read_nothing_more(claims: FieldNode, fragments: Fragments, items: bool) -> bool:
    """A claims page's selection whose fields are all in the page the plan fetched: plain
    fields, and the items when the plan fetched them (a claim's medcard is another read)."""
    for field in _fields(claims.selection_set, fragments):
        if field.name.value != "edges":
            continue  # pageInfo, __typename: plain data
        for node in _fields(field.selection_set, fragments):
            if node.name.value != "node":
                continue  # cursor
            for inner in _fields(node.selection_set, fragments):
                name = inner.name.value
                if name == "medcard" or (name == "items" and not items):
                    return False
    return True


def reads_alone(info: Info[Any, Any], plan: CardPlan) -> bool:
    """Whether the card's one statement is the whole operation's only read: the card is its
    only root field and every field under it is in `plan` or refuses before it reads (a bad
    month). Such an operation needs no transaction around its one statement."""
    raw = info._raw_info
    fragments = raw.fragments
    if len(list(_fields(raw.operation.selection_set, fragments))) != 1:
        return False
    for card in raw.field_nodes:
        for field in _fields(card.selection_set, fragments):
            name = field.name.value
            if field.selection_set is None or name in (
                "primaryHolder",
                "openHolds",
                "monthlySpend",
            ):
                continue  # plain data (in the card's JSON); each valid month is in the plan,
                # a bad one reads nothing
            if name == "beneficiaries" and plan.beneficiaries:
                continue
            if (
                name == "claims"
                and plan.claims is not None
                and _claims_read_nothing_more(field, fragments, plan.claim_items)
            ):
                continue
            return False
    return True
