"""The GraphQL schema: the REST reads' JSON bodies (api_gateway/read_models.py) as types.

Money stays a two-decimal string and timestamps ISO strings, as in the REST bodies. Every
read goes through the request's DataLoaders (api_gateway/graphql/context.py), so the number
of SQL statements a query costs does not grow with the number of cards, claims or wallets.
Authorization is api_gateway/access.py's, as for the REST reads: an object the caller may not
see is null with a NOT_FOUND error (so ids cannot be probed), a kind the caller's role may
not read at all FORBIDDEN.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from typing import Annotated, Any, TypeVar
from uuid import UUID

import strawberry
from graphql import GraphQLError, NoSchemaIntrospectionCustomRule
from strawberry.extensions import (
    AddValidationRules,
    MaskErrors,
    MaxTokensLimiter,
    ParserCache,
    ValidationCache,
)
from strawberry.extensions.max_aliases import create_validator as alias_limit
from strawberry.extensions.query_depth_limiter import create_validator as depth_limit
from strawberry.types import ExecutionContext, Info

from api_gateway.access import Refusal, statement_pharmacy
from api_gateway.freshness import claims_cursor, transactions_cursor
from api_gateway.graphql.arguments import (
    DEFAULT_FIRST,
    MAX_PAGE,
    benefit_month,
    claims_after,
    page_size,
    statement_filter,
    transactions_before,
    uuid_or_none,
)
from api_gateway.graphql.card_plan import card_plan, reads_alone
from api_gateway.graphql.consent import CopayConsent
from api_gateway.graphql.context import Context, error
from api_gateway.graphql.cost import MAX_COST, cost_limit
from api_gateway.graphql.inputs import NoControlCharacters
from api_gateway.graphql.mutations import Mutation
from api_gateway.graphql.people import Beneficiary, Holder
from api_gateway.graphql.read_your_writes import ReadYourWrites, require_position
from api_gateway.graphql.scalars import SCALARS, Long
from api_gateway.read_models import ClaimsPage, Owned
from domain.wallet.model import wallet_id_for

MAX_DEPTH = 8
MAX_ALIASES = 15
MinPosition = Annotated[
    Long | None,
    strawberry.argument(
        description="The `position` a write on this object answered: the read waits (bounded)"
        " until the projection has reached it, else the field is null with PROJECTION_BEHIND."
    ),
]

T = TypeVar("T")


@functools.cache
def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


_WANTED: dict[type, frozenset[str]] = {}


def _from(cls: type[T], body: dict[str, Any], **extra: Any) -> T:
    """A type built from a REST JSON body (camelCase keys) and any `extra` fields (the
    name maps are cached: a page of claims builds hundreds of these per request)."""
    wanted = _WANTED.get(cls)
    if wanted is None:
        fields = dataclasses.fields(cls)  # type: ignore[arg-type]
        wanted = _WANTED[cls] = frozenset(f.name for f in fields if f.init)
    values = {name: v for k, v in body.items() if (name := _snake(k)) in wanted}
    return cls(**(values | extra))


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None


@strawberry.type
class ClaimItem:
    drug_code: str | None
    drug_name: str | None
    quantity: int
    unit_price: str | None
    total_price: str | None
    covered_amount: str | None
    copayment_amount: str | None


@strawberry.type
class Claim:
    id: strawberry.ID
    medcard_id: strawberry.ID
    prescription_id: str
    pharmacy_id: str
    beneficiary_id: str
    decision: str
    status: str
    reasons: list[str]
    total_amount: str | None
    covered_amount: str | None
    copayment_amount: str | None
    copayment_percentage: str | None
    copayment_paid_from_wallet: str | None
    wallet_id: str | None
    month: str
    monthly_limit: str | None
    month_spent: str | None
    remaining_monthly_limit: str | None
    claimed_at: str | None
    reversed_at: str | None
    reversal_reason: str | None
    position: Long
    # the card's projected position, when the claim was read by id (a page's card has it)
    projection_position: Long | None = None

    @strawberry.field
    async def items(self, info: Info[Context, None]) -> list[ClaimItem]:
        # the claim was authorized where it was reached (its card, or claim(id))
        found = await info.context.claim_items.load(UUID(str(self.id)))
        return [_from(ClaimItem, i) for i in found]

    @strawberry.field
    async def medcard(self, info: Info[Context, None]) -> Medcard | None:
        ctx = info.context
        ctx.may_read("card")
        return _medcard(ctx.visible(await ctx.cards.load(UUID(str(self.medcard_id))), "card"))


def _claim(body: dict[str, Any], projection_position: int | None = None) -> Claim:
    return _from(Claim, body, id=body["claimId"], projection_position=projection_position)


@strawberry.type
class ClaimEdge:
    node: Claim
    cursor: str


@strawberry.type
class ClaimConnection:
    edges: list[ClaimEdge]
    page_info: PageInfo


def _claim_connection(page: ClaimsPage) -> ClaimConnection:
    items, last = page
    edges = [
        ClaimEdge(node=_claim(c), cursor=claims_cursor(c["claimedAt"], c["claimId"])) for c in items
    ]
    end = edges[-1].cursor if edges else None
    return ClaimConnection(
        edges=edges, page_info=PageInfo(has_next_page=last is not None, end_cursor=end)
    )


@strawberry.type
class MonthlySpend:
    month: str
    spent: str
    limit: str
    remaining: str


@strawberry.type
class Hold:
    """A benefit hold open now: part of the month's benefit reserved for a prescription,
    counted against the limit until a claim captures it, it is voided or it expires."""

    hold_id: strawberry.ID
    prescription_id: str
    pharmacy_id: str
    beneficiary_id: strawberry.ID | None
    amount: str
    expires_at: str
    placed_at: str


@strawberry.type
class Medcard:
    id: strawberry.ID
    card_number: str
    user_id: str
    card_type: str
    status: str
    monthly_limit: str | None
    copayment_percentage: str | None
    max_beneficiaries: int | None
    currency: str
    primary_holder: Holder
    insurance_provider: str | None
    policy_number: str | None
    issued_at: str | None
    expiry_date: str | None
    updated_at: str | None
    current_month: str
    current_month_spent: str | None
    held_this_month: str | None  # open holds of the current month (not spending)
    remaining_this_month: str | None  # the limit less the month's spend and open holds
    open_holds: list[Hold]
    version: int
    projection_position: Long  # the last event of this card the answer reflects

    @strawberry.field
    async def beneficiaries(self, info: Info[Context, None]) -> list[Beneficiary]:
        found = await info.context.beneficiaries.load(UUID(str(self.id)))
        return [_from(Beneficiary, b) for b in found]

    @strawberry.field  # one benefit month (Cairo calendar month); nothing claimed is 0.00
    async def monthly_spend(self, info: Info[Context, None], month: str) -> MonthlySpend:
        found = await info.context.monthly_spend.load((UUID(str(self.id)), benefit_month(month)))
        if found is None:  # the card was read in this same snapshot, so it exists
            raise error("NOT_FOUND", "no such card")
        return _from(MonthlySpend, found)

    @strawberry.field  # newest first; `after` is an edge cursor or pageInfo.endCursor
    async def claims(
        self, info: Info[Context, None], first: int = DEFAULT_FIRST, after: str | None = None
    ) -> ClaimConnection:
        key = (UUID(str(self.id)), page_size(first), claims_after(after))
        return _claim_connection(await info.context.claims.load(key))


def _medcard(card: Owned) -> Medcard:
    body = card.body
    return _from(
        Medcard,
        body,
        primary_holder=_from(Holder, body["primaryHolder"]),
        open_holds=[_from(Hold, hold) for hold in body.get("openHolds", ())],
        projection_position=card.position,
    )


@strawberry.type
class Transaction:
    wallet_id: strawberry.ID
    transaction_id: strawberry.ID
    type: str
    amount: str | None
    balance: str | None
    at: str | None
    position: Long
    gateway: str | None = None
    gateway_reference: str | None = None
    paid_at: str | None = None  # topup: when the gateway says the member paid; null: not told
    purpose: str | None = None
    reference: str | None = None
    debit_id: str | None = None
    reason: str | None = None


@strawberry.type
class TransactionEdge:
    node: Transaction
    cursor: str


@strawberry.type
class TransactionConnection:
    edges: list[TransactionEdge]
    page_info: PageInfo


@strawberry.type
class Wallet:
    id: strawberry.ID
    owner_user_id: str
    currency: str
    balance: str | None
    opened_at: str | None
    updated_at: str | None
    version: int
    copay_consent: CopayConsent
    projection_position: Long  # the last event of this wallet the answer reflects

    @strawberry.field  # newest first by position
    async def transactions(
        self, info: Info[Context, None], first: int = DEFAULT_FIRST, after: str | None = None
    ) -> TransactionConnection:
        key = (UUID(str(self.id)), page_size(first), transactions_before(after))
        items, last = await info.context.transactions.load(key)
        edges = [
            TransactionEdge(node=_from(Transaction, t), cursor=transactions_cursor(t["position"]))
            for t in items
        ]
        end = edges[-1].cursor if edges else None
        return TransactionConnection(
            edges=edges, page_info=PageInfo(has_next_page=last is not None, end_cursor=end)
        )


async def _card_view(info: Info[Context, None], key: UUID | str) -> Owned | None:
    plan = card_plan(info)
    return await info.context.card_view(key, plan, alone=reads_alone(info, plan))


async def _my_medcards(ctx: Context) -> list[Medcard]:
    ctx.may_read("card")
    ids = await ctx.card_ids.load(ctx.principal.subject)
    found = await ctx.cards.load_many(ids)
    return [_medcard(c) for c in map(ctx.sees, found) if c is not None]


def _wallet(found: Owned) -> Wallet:
    consent = CopayConsent.from_body(found.body["copayConsent"])
    return _from(Wallet, found.body, copay_consent=consent, projection_position=found.position)


@strawberry.type
class Me:
    subject: str
    role: str
    pharmacy_id: str | None

    @strawberry.field
    async def medcards(self, info: Info[Context, None]) -> list[Medcard]:
        return await _my_medcards(info.context)

    @strawberry.field  # the caller's wallet (one per member); null: none opened
    async def wallet(self, info: Info[Context, None]) -> Wallet | None:
        ctx = info.context
        ctx.may_read("wallet")
        found = ctx.sees(await ctx.wallets.load(wallet_id_for(ctx.principal.subject)))
        return None if found is None else _wallet(found)


@strawberry.type
class Query:
    @strawberry.field  # the caller named by the bearer token
    def me(self, info: Info[Context, None]) -> Me:
        p = info.context.principal
        return Me(subject=p.subject, role=p.role.value, pharmacy_id=p.pharmacy_id)

    @strawberry.field  # the cards issued to the caller
    async def my_medcards(self, info: Info[Context, None]) -> list[Medcard]:
        return await _my_medcards(info.context)

    @strawberry.field
    async def medcard(
        self, info: Info[Context, None], id: strawberry.ID, min_position: MinPosition = None
    ) -> Medcard | None:
        ctx = info.context
        ctx.may_read("card")
        card_id = uuid_or_none(id)
        read = None if card_id is None else await _card_view(info, card_id)
        found = ctx.visible(read, "card")
        require_position(ctx, "medcard", id, found.position, min_position)
        return _medcard(found)

    @strawberry.field  # a card by its 16-digit number
    async def medcard_by_number(
        self, info: Info[Context, None], card_number: str, min_position: MinPosition = None
    ) -> Medcard | None:
        ctx = info.context
        ctx.may_read("card")
        found = ctx.visible(await _card_view(info, card_number), "card")
        require_position(ctx, "medcardByNumber", card_number, found.position, min_position)
        return _medcard(found)

    @strawberry.field
    async def claim(
        self, info: Info[Context, None], id: strawberry.ID, min_position: MinPosition = None
    ) -> Claim | None:
        ctx = info.context
        claim_id = uuid_or_none(id)
        loaded = None if claim_id is None else await ctx.claim_details.load(claim_id)
        found = ctx.visible(loaded, "claim")
        require_position(ctx, "claim", id, found.position, min_position)
        return _claim(found.body, found.position)

    @strawberry.field
    async def wallet(
        self, info: Info[Context, None], id: strawberry.ID, min_position: MinPosition = None
    ) -> Wallet | None:
        ctx = info.context
        ctx.may_read("wallet")
        wallet_id = uuid_or_none(id)
        found = ctx.visible(
            None if wallet_id is None else await ctx.wallets.load(wallet_id), "wallet"
        )
        require_position(ctx, "wallet", id, found.position, min_position)
        return _wallet(found)

    # A pharmacy's statement, the claims it posted, newest first: staff name any pharmacy, a
    # pharmacy only its own (api_gateway/access.py). `from` and `to` (inclusive): dates (the
    # whole day in Cairo) or RFC 3339 date-times with an offset (api_gateway/statements.py).
    # It spans many cards, so it has no one position to wait for (no minPosition).
    @strawberry.field
    async def pharmacy_claims(
        self,
        info: Info[Context, None],
        pharmacy_id: str,
        since: Annotated[str | None, strawberry.argument(name="from")] = None,
        to: str | None = None,
        status: str | None = None,
        first: int = DEFAULT_FIRST,
        after: str | None = None,
    ) -> ClaimConnection | None:
        ctx = info.context
        pharmacy = statement_pharmacy(ctx.principal, pharmacy_id)
        if isinstance(pharmacy, Refusal):
            raise error("FORBIDDEN", pharmacy.why)
        chosen = statement_filter(since, to, status)
        key = (pharmacy, page_size(first), claims_after(after), chosen)
        return _claim_connection(await ctx.statements.load(key))


def _mask(error: GraphQLError) -> bool:
    """Hide unexpected failures; keep the errors raised on purpose (they carry a code) and
    the validation errors (no original error)."""
    original = error.original_error
    return original is not None and not isinstance(original, GraphQLError)


class _Schema(strawberry.Schema):
    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        # a refusal on purpose (NOT_FOUND, FORBIDDEN, a forwarded 4xx) or an invalid query is an
        # answer, not an incident: only unexpected failures are logged, with their stack
        super().process_errors([e for e in errors if _mask(e)], execution_context)


# Parsing and validating a query cost more than running it (a profile of the card query put
# ~60 % of request handling in validation); apps send the same few query texts, so both are
# cached per text. The limit rules are built once: the validation cache keys on the rule
# classes, and QueryDepthLimiter/MaxAliasesLimiter would make new ones for every request.
LIMITS = (
    depth_limit(MAX_DEPTH, None, None),
    alias_limit(MAX_ALIASES),
    cost_limit(MAX_COST, MAX_PAGE),
    NoControlCharacters,
)
CACHED_DOCUMENTS = 256  # distinct query texts kept parsed and validated (LRU)
MAX_TOKENS = 2_000  # bounds parsing work before any cache is consulted


def build_schema(*, introspection: bool) -> strawberry.Schema:
    """The schema; `introspection` only where developers explore it (HEALTHPAY_ENV
    development, with GraphiQL): elsewhere the schema is the apps' contract, not a map
    handed to whoever asks."""
    rules = [*LIMITS] if introspection else [*LIMITS, NoSchemaIntrospectionCustomRule]
    return _Schema(
        query=Query,
        mutation=Mutation,
        extensions=[
            lambda: MaxTokensLimiter(max_token_count=MAX_TOKENS),
            lambda: ParserCache(maxsize=CACHED_DOCUMENTS),
            lambda: AddValidationRules(rules),
            lambda: ValidationCache(maxsize=CACHED_DOCUMENTS),
            lambda: MaskErrors(should_mask_error=_mask),
            ReadYourWrites,
        ],
        scalar_overrides=SCALARS,
    )


schema = build_schema(introspection=False)


@functools.cache
def development_schema() -> strawberry.Schema:
    return build_schema(introspection=True)
