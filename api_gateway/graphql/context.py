"""Per-request GraphQL context: the caller, one read-only snapshot, and the DataLoaders.

Every resolver of one request reads on the same connection inside one REPEATABLE READ,
READ ONLY transaction (like one REST read), opened on first use and closed when the request
ends. The DataLoaders batch and de-duplicate per request: a card, its beneficiaries, a page
of its claims, a claim's items or a wallet is read once however often the query names it.
Each batch is one call of a batch function of api_gateway/read_models.py (the SQL the REST
reads use too), which answers all its keys in one statement; so a query costs one statement
per kind of thing it reads, however many cards, claims or wallets it reaches. A card named
at the root is read with what the query selects under it in one statement (`card_view`),
which primes the loaders.
"""

from __future__ import annotations

import asyncio
import functools
from contextlib import AsyncExitStack
from typing import Any
from uuid import UUID

import orjson
from graphql import GraphQLError
from strawberry.dataloader import DataLoader
from strawberry.fastapi import BaseContext

from api_gateway import read_models as q
from api_gateway.access import Kind, refusal, visible_to
from api_gateway.commands_client import CommandService
from api_gateway.freshness import ReadSide
from api_gateway.watermarks import Wanted
from infrastructure.auth.tokens import Principal

ClaimsKey = q.ClaimsKey
ClaimsPage = q.ClaimsPage
TransactionsKey = q.TransactionsKey
TransactionsPage = q.TransactionsPage
Items = list[dict[str, Any]]


def error(code: str, message: str) -> GraphQLError:
    return GraphQLError(message, extensions={"code": code})


class Context(BaseContext):
    def __init__(
        self,
        side: ReadSide,
        principal: Principal | None,
        *,
        authorization: str | None = None,
        commands: CommandService | None = None,
    ) -> None:
        super().__init__()
        self.side = side
        self.authorization = authorization  # forwarded as is: the command service judges it
        self.commands = commands  # the mutations' forwarder; None where writes are off
        self._principal = principal
        self.now = side.clock()
        self._stack = AsyncExitStack()
        self._conn: q.Conn | None = None
        self._opening = asyncio.Lock()
        # the minPosition reads the watcher found settled before execution (read_your_writes)
        self.settled: frozenset[Wanted] = frozenset()

    # Built on first use: most requests touch two or three of these.
    @functools.cached_property
    def card_ids(self) -> DataLoader[str, list[UUID]]:
        return DataLoader(self._card_ids)

    @functools.cached_property
    def cards(self) -> DataLoader[UUID, q.Owned | None]:
        return DataLoader(self._cards)

    @functools.cached_property
    def cards_by_number(self) -> DataLoader[str, q.Owned | None]:
        return DataLoader(self._cards_by_number)

    @functools.cached_property
    def beneficiaries(self) -> DataLoader[UUID, Items]:
        return DataLoader(self._beneficiaries)

    @functools.cached_property
    def monthly_spend(self) -> DataLoader[q.SpendKey, dict[str, Any] | None]:
        return DataLoader(self._monthly_spend)

    @functools.cached_property
    def claims(self) -> DataLoader[ClaimsKey, ClaimsPage]:
        return DataLoader(self._claims)

    @functools.cached_property
    def claim_details(self) -> DataLoader[UUID, q.Owned | None]:
        return DataLoader(self._claim_details)

    @functools.cached_property
    def claim_items(self) -> DataLoader[UUID, Items]:
        return DataLoader(self._claim_items)

    @functools.cached_property
    def statements(self) -> DataLoader[q.StatementKey, ClaimsPage]:
        return DataLoader(self._statements)

    @functools.cached_property
    def wallets(self) -> DataLoader[UUID, q.Owned | None]:
        return DataLoader(self._wallets)

    @functools.cached_property
    def transactions(self) -> DataLoader[TransactionsKey, TransactionsPage]:
        return DataLoader(self._transactions)

    @property
    def has_principal(self) -> bool:
        return self._principal is not None

    @property
    def principal(self) -> Principal:
        """The caller; only the GraphiQL page itself is served without one."""
        if self._principal is None:
            raise error("UNAUTHENTICATED", "a bearer token is required")
        return self._principal

    def sees(self, owned: q.Owned | None) -> q.Owned | None:
        """The object-level rule (api_gateway/access.py): None when not the caller's."""
        return visible_to(self.principal, owned)

    def visible(self, owned: q.Owned | None, what: str) -> q.Owned:
        """`owned` if the caller may see it; NOT_FOUND, as for an id that exists nowhere,
        otherwise."""
        found = visible_to(self.principal, owned)
        if found is None:
            raise error("NOT_FOUND", f"no such {what}")
        return found

    def may_read(self, kind: Kind) -> None:
        """FORBIDDEN when the caller's role may read no object of this kind."""
        why = refusal(self.principal, kind)
        if why is not None:
            raise error("FORBIDDEN", why)

    async def card_view(
        self, key: UUID | str, plan: q.CardPlan, *, alone: bool = False
    ) -> q.Owned | None:
        """A card by id or number in one statement with what `plan` asks for (card_plan.py);
        None when absent or not the caller's. What it read is primed into the loaders, so the
        fields under the card read nothing again. `alone`: that statement is the request's
        only read (card_plan.reads_alone), so it needs no transaction: one statement is one
        snapshot, and on the pool's autocommit connection it costs one round trip, not three."""
        if alone and self._conn is None:
            async with self.side.pool.connection() as conn:
                found = await q.card_view(conn, key, self.now, plan)
        else:
            found = await q.card_view(await self.conn(), key, self.now, plan)
        view = visible_to(self.principal, found)
        if view is None:
            return None
        card_id = view.medcard_id
        body = orjson.loads(view.document)
        beneficiaries = body.pop("beneficiaries", None)
        claims = body.pop("claims", None)
        spends = body.pop("monthlySpend", None) or {}
        card = q.Owned(view.owner, None, view.position, body, card_id)
        self.cards.prime(card_id, card)
        if beneficiaries is not None:
            self.beneficiaries.prime(card_id, beneficiaries)
        if plan.claims is not None and claims is not None:
            size, after = plan.claims
            if plan.claim_items:
                for c in claims:
                    self.claim_items.prime(UUID(c["claimId"]), c.pop("items"))
            self.claims.prime((card_id, size, after), q.claims_page_of(size, claims))
        for month in plan.months:
            self.monthly_spend.prime((card_id, month), spends.get(month))
        return card

    async def conn(self) -> q.Conn:
        async with self._opening:
            if self._conn is None:
                conn = await self._stack.enter_async_context(self.side.pool.connection())
                # REPEATABLE READ, READ ONLY: the gateway's pool is built with snapshot_reads
                await self._stack.enter_async_context(conn.transaction())
                self._conn = conn
            return self._conn

    async def close(self) -> None:
        await self._stack.aclose()

    async def _card_ids(self, keys: list[str]) -> list[list[UUID]]:
        return await q.card_ids_of(await self.conn(), keys)

    async def _cards(self, keys: list[UUID]) -> list[q.Owned | None]:
        return await q.cards(await self.conn(), keys, self.now)

    async def _cards_by_number(self, keys: list[str]) -> list[q.Owned | None]:
        found = await q.cards_by_number(await self.conn(), keys, self.now)
        # the same card reached again by id (a claim's medcard) costs no second read
        for card in found:
            if card is not None and card.medcard_id is not None:
                self.cards.prime(card.medcard_id, card)
        return found

    async def _beneficiaries(self, keys: list[UUID]) -> list[Items]:
        return await q.beneficiaries_of(await self.conn(), keys)

    async def _monthly_spend(self, keys: list[q.SpendKey]) -> list[dict[str, Any] | None]:
        return await q.monthly_spends(await self.conn(), keys)

    async def _claims(self, keys: list[ClaimsKey]) -> list[ClaimsPage]:
        return await q.claims_pages(await self.conn(), keys)

    async def _claim_details(self, keys: list[UUID]) -> list[q.Owned | None]:
        found = await q.claims(await self.conn(), keys)
        # claim(id) { items } then needs no read of its own: the details carry the items
        for key, claim in zip(keys, found, strict=True):
            if claim is not None:
                self.claim_items.prime(key, claim.body["items"])
        return found

    async def _claim_items(self, keys: list[UUID]) -> list[Items]:
        return await q.claim_items(await self.conn(), keys)

    async def _statements(self, keys: list[q.StatementKey]) -> list[ClaimsPage]:
        return await q.statement_pages(await self.conn(), keys)

    async def _wallets(self, keys: list[UUID]) -> list[q.Owned | None]:
        return await q.wallets(await self.conn(), keys)

    async def _transactions(self, keys: list[TransactionsKey]) -> list[TransactionsPage]:
        return await q.transactions_pages(await self.conn(), keys)
