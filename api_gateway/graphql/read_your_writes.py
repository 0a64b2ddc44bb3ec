"""Read-your-writes over GraphQL: `minPosition` on the root fields that name one stream.

The write API answers every command with its event's `position`. A root field given
`minPosition` (medcard, medcardByNumber, claim, wallet) must be answered from a snapshot in
which that object's stream has reached the position (api_gateway/freshness.py says why the
watermark is per stream). All resolvers of a request share one snapshot, opened by the first
resolver that reads; so the waiting cannot happen inside a resolver (another root field may
already have opened an older snapshot). It happens here, before execution starts, for every
such field at once, polling outside any snapshot until each has reached its position or the
read-side bound (`ReadSide.wait_seconds`) ends. The resolvers then check the position they
read (`require_position`): a field still behind is null with PROJECTION_BEHIND, the rest of
the query is answered.

The watermark queries apply the same visibility as the reads, so another member's card waits
exactly as long as a card that does not exist: the wait cannot be used to probe ids.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any
from uuid import UUID

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

from api_gateway.graphql.context import Context
from infrastructure.auth.tokens import Principal, Role

ARGUMENT = "minPosition"

# per root field: its key argument, and the last projected position of the stream it reads
# (NULL when absent or not the caller's: both wait alike)
_WATERMARKS: dict[str, tuple[str, str]] = {
    "medcard": (
        "id",
        "SELECT last_position FROM medcards WHERE id = %(key)s::uuid"
        " AND (%(member)s::text IS NULL OR user_id = %(member)s)",
    ),
    "medcardByNumber": (
        "cardNumber",
        "SELECT last_position FROM medcards WHERE card_number = %(key)s"
        " AND (%(member)s::text IS NULL OR user_id = %(member)s)",
    ),
    "wallet": (
        "id",
        "SELECT last_position FROM wallets WHERE id = %(key)s::uuid"
        " AND (%(member)s::text IS NULL OR owner_user_id = %(member)s)",
    ),
    "claim": (
        "id",
        "SELECT m.last_position FROM prescription_claims c JOIN medcards m ON m.id = c.medcard_id"
        " WHERE c.id = %(key)s::uuid AND (%(member)s::text IS NULL OR m.user_id = %(member)s)"
        " AND (%(pharmacy)s::text IS NULL OR c.pharmacy_id = %(pharmacy)s)",
    ),
}
_CARDS_AND_WALLETS = frozenset({"medcard", "medcardByNumber", "wallet"})


@dataclass(frozen=True, slots=True)
class Wanted:
    field: str
    key: str
    position: int


def require_position(field: str, seen: int, wanted: int | None) -> None:
    """Refuses an answer older than the caller's own write (only after the wait ran out)."""
    if wanted is not None and seen < wanted:
        raise GraphQLError(
            f"{field}: the read model did not reach position {wanted} in time (at {seen});"
            " retry later",
            extensions={"code": "PROJECTION_BEHIND", "position": seen, "minPosition": wanted},
        )


class ReadYourWrites(SchemaExtension):
    async def on_execute(self) -> AsyncIterator[None]:
        ctx = self.execution_context.context
        if isinstance(ctx, Context) and ctx.has_principal:
            wanted = list(self._wanted())
            if wanted:
                await _wait(ctx, wanted)
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
            if node.name.value in _WATERMARKS
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
            position, key = args.get(ARGUMENT), args.get(_WATERMARKS[name][0])
            if isinstance(position, int) and isinstance(key, str):
                yield Wanted(name, key, position)


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


def _params(principal: Principal, key: str) -> dict[str, Any]:
    if principal.role is Role.MEMBER:
        return {"key": key, "member": principal.subject, "pharmacy": None}
    if principal.role is Role.PHARMACY:
        return {"key": key, "member": None, "pharmacy": principal.pharmacy_id or ""}
    return {"key": key, "member": None, "pharmacy": None}


async def _wait(ctx: Context, wanted: list[Wanted]) -> None:
    principal = ctx.principal
    pending: list[tuple[str, dict[str, Any], int]] = []
    for want in wanted:
        if principal.role is Role.PHARMACY and want.field in _CARDS_AND_WALLETS:
            continue  # refused whatever the position: nothing to wait for
        if want.field != "medcardByNumber" and not _is_uuid(want.key):
            continue  # not found whatever the position
        pending.append((_WATERMARKS[want.field][1], _params(principal, want.key), want.position))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + ctx.side.wait_seconds
    while pending:
        async with ctx.side.pool.connection() as conn:
            still = []
            for query, params, position in pending:
                cursor = await conn.execute(query, params)
                row = await cursor.fetchone()
                if row is None or row[0] < position:
                    still.append((query, params, position))
        pending = still
        if not pending or loop.time() >= deadline:
            return
        await asyncio.sleep(min(ctx.side.poll_seconds, max(deadline - loop.time(), 0.0)))


def _is_uuid(value: str) -> bool:
    try:
        UUID(value)
    except ValueError:
        return False
    return True
