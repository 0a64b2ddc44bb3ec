"""A complexity limit: the most objects an operation may ask for, estimated before it runs.

Depth and alias limits bound the shape of a query, not its size: a claims page inside a card
inside a page of claims asks for 100 x 100 claims at depth 8. The estimate multiplies each
field by the list sizes above it: a connection by its `first` (the schema's maximum when it
is a variable, since validation runs once per query text, before variables are known), and
the plain lists by the most they hold. A refused operation runs nothing.
"""

from __future__ import annotations

from typing import Any

from graphql import (
    FieldNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationContext,
    ValidationRule,
)

from api_gateway.graphql.arguments import DEFAULT_FIRST

MAX_COST = 10_000
# Plain lists: the most each holds (beneficiaries: the platinum card's maximum; items: a
# typical prescription, not the 200 a claim may carry, else any useful page is refused).
LIST_SIZES = {"beneficiaries": 8, "items": 5, "medcards": 5, "myMedcards": 5}


def _multiplier(field: FieldNode, max_page: int) -> int:
    for argument in field.arguments or ():
        if argument.name.value == "first":
            if isinstance(argument.value, IntValueNode):
                # a larger page is refused on its own (and an Int past 32 bits by
                # validation); counted as the largest, the estimate stays a small number
                return min(max(int(argument.value.value), 0), max_page)
            return max_page
    if field.name.value in ("claims", "transactions", "pharmacyClaims"):
        return DEFAULT_FIRST
    return LIST_SIZES.get(field.name.value, 1)


def operation_cost(
    selections: SelectionSetNode, context: ValidationContext, max_page: int, seen: frozenset[str]
) -> int:
    cost = 0
    for selection in selections.selections:
        if isinstance(selection, FieldNode):
            cost += 1
            if selection.selection_set is not None:
                inner = operation_cost(selection.selection_set, context, max_page, seen)
                cost += _multiplier(selection, max_page) * inner
        elif isinstance(selection, InlineFragmentNode):
            cost += operation_cost(selection.selection_set, context, max_page, seen)
        elif isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            fragment = context.get_fragment(name)
            if fragment is not None and name not in seen:  # cycles: another rule's error
                cost += operation_cost(fragment.selection_set, context, max_page, seen | {name})
    return cost


def cost_limit(max_cost: int, max_page: int) -> type[ValidationRule]:
    class CostLimit(ValidationRule):
        def enter_operation_definition(self, node: OperationDefinitionNode, *_: Any) -> None:
            cost = operation_cost(node.selection_set, self.context, max_page, frozenset())
            if cost > max_cost:
                self.report_error(
                    GraphQLError(
                        f"the operation asks for about {cost} objects, more than {max_cost}:"
                        " ask for smaller pages",
                        node,
                        extensions={"code": "QUERY_TOO_COMPLEX", "cost": cost},
                    )
                )

    return CostLimit
