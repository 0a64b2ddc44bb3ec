"""Read-your-writes over GraphQL: `minPosition` on the root fields that name one stream.

The write API answers every command with its event's `position`. A root field given
`minPosition` (medcard, medcardByNumber, claim, wallet) must be answered from a snapshot that
reflects that position for the object's stream. All resolvers of a request share one
snapshot, opened by the first resolver that reads; so the waiting cannot happen inside a
resolver (another root field may already have opened an older snapshot). It happens here,
before execution starts, for every such field at once: the process's one watcher
(api_gateway/watermarks.py, the REST reads' own) says which have settled, within the
read-side bound (`ReadSide.wait_seconds`). The resolvers then check what they read
(`require_position`): a field neither at its position nor settled is null with
PROJECTION_BEHIND, the rest of the query is answered.

Settling asks nothing of whom a stream belongs to: another member's card settles exactly when
a missing one does, and both are NOT_FOUND alike.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

from graphql import (
    FieldNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
)
from graphql.execution.values import get_argument_values, get_variable_values
from graphql.utilities import get_operation_ast
from strawberry.extensions import SchemaExtension

from api_gateway.freshness import waitable
from api_gateway.graphql.context import Context
from api_gateway.watermarks import Stream, Wanted

log = logging.getLogger("healthpay.gateway.graphql")
ARGUMENT = "minPosition"

# per root field: its key argument, and the kind of stream that key names
_STREAMS: dict[str, tuple[str, Stream]] = {
    "medcard": ("id", "card"),
    "medcardByNumber": ("cardNumber", "card_number"),
    "wallet": ("id", "wallet"),
    "claim": ("id", "claim"),
}


def require_position(ctx: Context, field: str, key: str, seen: int, wanted: int | None) -> None:
    """Refuses an answer older than the caller's own write (only after the wait ran out)."""
    if wanted is None or seen >= wanted:
        return
    asked = waitable(ctx.principal, Wanted(_STREAMS[field][1], key, wanted))
    if asked is None or asked in ctx.settled:
        return
    raise GraphQLError(
        f"{field}: the read model did not reach position {wanted} in time (at {seen}); retry later",
        extensions={"code": "PROJECTION_BEHIND", "position": seen, "minPosition": wanted},
    )


class ReadYourWrites(SchemaExtension):
    async def on_execute(self) -> AsyncIterator[None]:
        ctx = self.execution_context.context
        if isinstance(ctx, Context) and ctx.has_principal:
            asked = (waitable(ctx.principal, w) for w in self._wanted())
            wanted = [w for w in asked if w is not None]
            if wanted:
                side = ctx.side
                try:
                    ctx.settled = await side.watermarks.settle(wanted, side.wait_seconds)
                except Exception:
                    # as if nothing settled: each field still reads, and answers for itself
                    # (PROJECTION_BEHIND, or the read's own failure, at its path)
                    log.warning("waiting for minPosition failed", exc_info=True)
        yield

    def _wanted(self) -> Iterator[Wanted]:
        """The root fields of the operation to run that carry `minPosition`."""
        document = self.execution_context.graphql_document
        if document is None:
            return
        operation = get_operation_ast(document, self.execution_context.operation_name)
        root = self.execution_context.schema._schema.query_type
        if operation is None or root is None or operation.operation.value != "query":
            return
        # Every query passes here: only one that names minPosition on a waitable root field
        # pays for coercing its variables.
        asking = [
            node
            for node in _root_fields(operation.selection_set, document.definitions, set())
            if node.name.value in _STREAMS
            and node.name.value in root.fields
            and any(a.name.value == ARGUMENT for a in node.arguments or ())
        ]
        if not asking:
            return
        variables = get_variable_values(
            self.execution_context.schema._schema,
            operation.variable_definitions or (),
            self.execution_context.variables or {},
        )
        if isinstance(variables, list):  # invalid variables: execution reports them
            return
        for node in asking:
            name = node.name.value
            try:
                args = get_argument_values(root.fields[name], node, variables)
            except GraphQLError:  # execution reports it
                continue
            key_argument, stream = _STREAMS[name]
            position, key = args.get(ARGUMENT), args.get(key_argument)
            if isinstance(position, int) and isinstance(key, str):
                yield Wanted(stream, key, position)


def _root_fields(
    selections: SelectionSetNode, definitions: Any, seen: set[str]
) -> Iterator[FieldNode]:
    for selection in selections.selections:
        if isinstance(selection, FieldNode):
            yield selection
        elif isinstance(selection, InlineFragmentNode):
            yield from _root_fields(selection.selection_set, definitions, seen)
        elif isinstance(selection, FragmentSpreadNode) and selection.name.value not in seen:
            seen.add(selection.name.value)
            for definition in definitions:
                if (
                    not isinstance(definition, OperationDefinitionNode)
                    and getattr(definition, "name", None) is not None
                    and definition.name.value == selection.name.value
                ):
                    yield from _root_fields(definition.selection_set, definitions, seen)
