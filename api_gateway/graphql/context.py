"""Per-request GraphQL context: the caller, one read-only snapshot, and the DataLoaders.

Every resolver of one request reads on the same connection inside one REPEATABLE READ,
READ ONLY transaction (like one REST read), opened on first use and closed when the request
ends. The DataLoaders batch and de-duplicate per request: a card, its beneficiaries or a page
of its claims is read once however often the query names it. Each batch reuses the REST
functions of api_gateway/read_models.py per key (no SQL of its own), so a query costs one
statement per distinct card and field, never one per occurrence.
"""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from datetime import datetime
from typing import Any
from uuid import UUID

from graphql import GraphQLError
from strawberry.dataloader import DataLoader
from strawberry.fastapi import BaseContext

from api_gateway import read_models as q
from api_gateway.rest import ReadSide, visible_to
from infrastructure.auth.tokens import Principal, Role

ClaimsKey = tuple[UUID, int, tuple[datetime, UUID] | None]
ClaimsPage = tuple[list[dict[str, Any]], tuple[datetime, UUID] | None]


def error(code: str, message: str) -> GraphQLError:
    return GraphQLError(message, extensions={"code": code})


class Context(BaseContext):
    def __init__(self, side: ReadSide, principal: Principal | None) -> None:
        super().__init__()
        self.side = side
        self._principal = principal
        self.now = side.clock()
        self._stack = AsyncExitStack()
        self._conn: q.Conn | None = None
        self._opening = asyncio.Lock()
        self.cards: DataLoader[UUID, q.Owned | None] = DataLoader(self._cards)
        self.beneficiaries: DataLoader[UUID, list[dict[str, Any]]] = DataLoader(self._beneficiaries)
        self.claims: DataLoader[ClaimsKey, ClaimsPage] = DataLoader(self._claims)
        self.claim_details: DataLoader[UUID, q.Owned | None] = DataLoader(self._claim_details)

    @property
    def principal(self) -> Principal:
        """The caller; only the GraphiQL page itself is served without one."""
        if self._principal is None:
            raise error("UNAUTHENTICATED", "a bearer token is required")
        return self._principal

    def sees(self, owned: q.Owned | None) -> q.Owned | None:
        """The same object-level rule as the REST reads."""
        return visible_to(self.principal, owned)

    def no_pharmacy(self, what: str) -> None:
        if self.principal.role is Role.PHARMACY:
            raise error("FORBIDDEN", f"the pharmacy role may not read {what}")

    async def conn(self) -> q.Conn:
        async with self._opening:
            if self._conn is None:
                conn = await self._stack.enter_async_context(self.side.pool.connection())
                await self._stack.enter_async_context(conn.transaction())
                await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                self._conn = conn
            return self._conn

    async def close(self) -> None:
        await self._stack.aclose()

    async def _cards(self, keys: list[UUID]) -> list[q.Owned | None]:
        conn = await self.conn()
        return [await q.card(conn, key, self.now) for key in keys]

    async def _beneficiaries(self, keys: list[UUID]) -> list[list[dict[str, Any]]]:
        conn = await self.conn()
        return [await q.beneficiaries(conn, key) for key in keys]

    async def _claims(self, keys: list[ClaimsKey]) -> list[ClaimsPage]:
        conn = await self.conn()
        return [await q.claims_page(conn, *key) for key in keys]

    async def _claim_details(self, keys: list[UUID]) -> list[q.Owned | None]:
        conn = await self.conn()
        return [await q.claim(conn, key) for key in keys]

    async def card_ids_of(self, user_id: str) -> list[UUID]:
        """The member's cards: the one lookup the REST reads have no function for."""
        conn = await self.conn()
        async with conn.cursor() as cur:
            await cur.execute(
                "SELECT id FROM medcards WHERE user_id = %s ORDER BY issued_at, id", (user_id,)
            )
            return [row[0] for row in await cur.fetchall()]
