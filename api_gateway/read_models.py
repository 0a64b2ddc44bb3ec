"""Queries over the PostgreSQL read models (never the event store), answered in the write
API's JSON shapes: camelCase, money as two-decimal strings, ISO timestamps.

Each read is a batch: one SQL statement answers every key it is given, in the order given
(None or an empty list where a key matches nothing). GraphQL's DataLoaders call the batches
with all the keys of a request; the REST reads call the single-key wrappers, so both share
one SQL text and one JSON shaping per thing. A card has one read more, `card_view`: the card
and whatever a screen shows with it in one statement. The caller owns the connection and
runs its reads in one REPEATABLE READ transaction so a body and the position it claims to
reflect agree (a single statement is such a snapshot by itself).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import orjson
from psycopg import AsyncConnection
from psycopg.rows import TupleRow, dict_row

from domain.calendar import benefit_month

Conn = AsyncConnection[TupleRow]
Row = dict[str, Any]

ClaimsAfter = tuple[datetime, UUID]
ClaimsKey = tuple[UUID, int, ClaimsAfter | None]  # card, page size, keyset cursor
ClaimsPage = tuple[list[dict[str, Any]], ClaimsAfter | None]
TransactionsKey = tuple[UUID, int, int | None]  # wallet, page size, position cursor
TransactionsPage = tuple[list[dict[str, Any]], int | None]
SpendKey = tuple[UUID, str]  # card, benefit month 'YYYY-MM'


@dataclass(frozen=True, slots=True)
class Owned:
    """A read-model row with who may see it and how far its stream is projected."""

    owner: str
    pharmacy_id: str | None
    position: int
    body: dict[str, Any]
    medcard_id: UUID | None = None


async def _all(conn: Conn, query: str, params: tuple[Any, ...] | dict[str, Any]) -> list[Row]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(query, params)
        return await cur.fetchall()


def _grouped(keys: Sequence[Any], rows: list[Row], column: str) -> list[list[Row]]:
    """The rows of each key, in the order the query returned them."""
    groups: dict[Any, list[Row]] = {key: [] for key in keys}
    for r in rows:
        groups[r[column]].append(r)
    return [groups[key] for key in keys]


def _pages(sizes: Sequence[int], rows: list[Row]) -> list[tuple[list[Row], Row | None]]:
    """Keyset pages from rows fetched `LIMIT size + 1` per key and numbered by the key's
    ordinal `n` (1 for the first key): each page's rows, and its last row when the extra row
    says a next page exists (its cursor), else None."""
    pages = []
    for size, found in zip(sizes, _grouped(range(1, len(sizes) + 1), rows, "n"), strict=True):
        page = found[:size]
        pages.append((page, page[-1] if len(found) > size else None))
    return pages


def _money(value: Decimal | None) -> str | None:
    return None if value is None else f"{value:.2f}"


def _iso(value: Any) -> str | None:
    return None if value is None else str(value.isoformat())


# ------------------------------------------------------------------------ JSON shapes
# Each body shape of a card's reads is written once, here, as the SQL that builds it:
# PostgreSQL answers the JSON document itself, which orjson reads (or a REST read sends on
# untouched). Money is two-decimal text (every amount column is DECIMAL(_, 2), so ::text
# is exactly Python's f"{value:.2f}"); a timestamp is written as Python's isoformat() writes
# the datetime psycopg would have loaded (the session's zone, microseconds only when any).


def _iso_sql(column: str) -> str:
    return (
        f"to_char({column}, 'YYYY-MM-DD\"T\"HH24:MI:SS')"
        f" || CASE WHEN date_trunc('second', {column}) = {column} THEN ''"
        f" ELSE to_char({column}, '.US') END || to_char({column}, 'TZH:TZM')"
    )


# the month's spend of medcards `m`: current_month_spent belongs to current_month; a later
# Cairo month (the `month` parameter) has spent nothing yet
_SPENT = "(CASE WHEN m.current_month = %(month)s::text THEN m.current_month_spent ELSE 0.00 END)"

# the card `m`'s benefit holds open at %(now)s on the month %(month)s (expiry is judged by the
# time of the read: no event marks it); they are not spending, but no claim can use them
_OPEN_HOLDS = (
    "FROM medcard_holds h WHERE h.medcard_id = m.id AND h.status = 'open'"
    " AND h.month = %(month)s::text AND h.expires_at > %(now)s::timestamptz"
)
_HELD = f"(SELECT coalesce(sum(h.amount), 0.00) {_OPEN_HOLDS})"
_HOLD_JSON = f"""json_build_object(
 'holdId', h.id, 'prescriptionId', h.prescription_id, 'pharmacyId', h.pharmacy_id,
 'beneficiaryId', h.beneficiary_id, 'amount', h.amount::text,
 'expiresAt', {_iso_sql("h.expires_at")}, 'placedAt', {_iso_sql("h.placed_at")})"""

_CARD_JSON = f"""json_build_object(
 'id', m.id, 'cardNumber', m.card_number, 'userId', m.user_id, 'cardType', m.card_type,
 'status', m.status, 'monthlyLimit', m.monthly_limit::text,
 'copaymentPercentage', m.copayment_percentage::text, 'maxBeneficiaries', m.max_beneficiaries,
 'currency', m.currency,
 'primaryHolder', json_build_object('id', m.primary_holder -> 'beneficiary_id',
   'relationship', m.primary_holder -> 'relationship',
   'nationalId', m.primary_holder -> 'national_id', 'name', m.primary_holder -> 'name',
   'dateOfBirth', m.primary_holder -> 'date_of_birth',
   'phoneNumber', m.primary_holder -> 'phone_number'),
 'insuranceProvider', m.insurance_provider, 'policyNumber', m.policy_number,
 'issuedAt', {_iso_sql("m.issued_at")}, 'expiryDate', m.expiry_date,
 'updatedAt', {_iso_sql("m.updated_at")}, 'currentMonth', %(month)s::text,
 'currentMonthSpent', {_SPENT}::text,
 'heldThisMonth', {_HELD}::text,
 'remainingThisMonth', greatest(m.monthly_limit - {_SPENT} - {_HELD}, 0.00)::text,
 'openHolds', (SELECT coalesce(json_agg({_HOLD_JSON} ORDER BY h.placed_at, h.id), '[]')
   {_OPEN_HOLDS}),
 'version', m.version{{extra}})"""

_BENEFICIARY_JSON = f"""json_build_object(
 'id', b.id, 'relationship', b.relationship, 'nationalId', b.national_id, 'name', b.name,
 'dateOfBirth', b.date_of_birth, 'phoneNumber', b.phone_number, 'isPrimary', b.is_primary,
 'addedAt', {_iso_sql("b.added_at")})"""

_ITEM_JSON = """json_build_object(
 'drugCode', i.drug_code, 'drugName', i.drug_name, 'quantity', i.quantity,
 'unitPrice', i.unit_price::text, 'totalPrice', i.total_price::text,
 'coveredAmount', i.covered_amount::text, 'copaymentAmount', i.copayment_amount::text)"""

_ITEMS = (
    f"(SELECT coalesce(json_agg({_ITEM_JSON} ORDER BY i.line_no), '[]')"
    " FROM prescription_items i WHERE i.claim_id = c.id)"
)

_CLAIM_JSON = f"""json_build_object(
 'claimId', c.id, 'medcardId', c.medcard_id, 'prescriptionId', c.prescription_id,
 'pharmacyId', c.pharmacy_id, 'beneficiaryId', c.beneficiary_id, 'decision', c.decision,
 'status', c.status, 'reasons', c.reasons, 'totalAmount', c.total_amount::text,
 'coveredAmount', c.covered_amount::text, 'copaymentAmount', c.copayment_amount::text,
 'copaymentPercentage', c.copay_percent::text,
 'copaymentPaidFromWallet', c.copayment_paid_from_wallet::text, 'walletId', c.wallet_id,
 'month', c.month, 'monthlyLimit', c.monthly_limit::text,
 'monthSpent', c.month_spent_after::text, 'remainingMonthlyLimit', c.remaining_after::text,
 'claimedAt', {_iso_sql("c.claimed_at")}, 'reversedAt', {_iso_sql("c.reversed_at")},
 'reversalReason', c.reversal_reason, 'position', c.position{{extra}})"""

# medcards `m`, the month `k.month` and its row `s` of medcard_monthly_spend (if any): a month
# without a row had no claim, so it spent nothing
_SPEND_JSON = """json_build_object(
 'month', k.month, 'spent', coalesce(s.total_spent, 0.00)::text,
 'limit', m.monthly_limit::text,
 'remaining', greatest(m.monthly_limit - coalesce(s.total_spent, 0.00), 0.00)::text)"""

# Keyset order of claims (a card's, a pharmacy's): newest first by (claimed_at, id), each
# with its index (medcard_id or pharmacy_id, claimed_at DESC, id DESC). No cursor = after
# (+infinity, the largest id): the comparison stays one index range instead of an OR the
# planner could not turn into one.
_CLAIMS_RANGE = (
    "{where} AND (c.claimed_at, c.id)"
    " < (coalesce({after_at}, 'infinity'),"
    " coalesce({after_id}, 'ffffffff-ffff-ffff-ffff-ffffffffffff'))"
    " ORDER BY c.claimed_at DESC, c.id DESC LIMIT {size} + 1"
)


def _card(row: Row) -> Owned:
    return Owned(row["user_id"], None, row["last_position"], orjson.loads(row["body"]), row["id"])


_CARDS = f"SELECT m.id, m.user_id, m.last_position, {_CARD_JSON.format(extra='')}::text AS body"


async def cards(conn: Conn, card_ids: Sequence[UUID], now: datetime) -> list[Owned | None]:
    found = await _all(
        conn,
        f"{_CARDS}, m.id AS key FROM medcards m WHERE m.id = ANY(%(keys)s)",
        {"keys": list(card_ids), "month": benefit_month(now), "now": now},
    )
    by_id = {r["key"]: _card(r) for r in found}
    return [by_id.get(key) for key in card_ids]


async def card(conn: Conn, card_id: UUID, now: datetime) -> Owned | None:
    return (await cards(conn, [card_id], now))[0]


async def cards_by_number(
    conn: Conn, card_numbers: Sequence[str], now: datetime
) -> list[Owned | None]:
    found = await _all(
        conn,
        f"{_CARDS}, m.card_number AS key FROM medcards m WHERE m.card_number = ANY(%(keys)s)",
        {"keys": list(card_numbers), "month": benefit_month(now), "now": now},
    )
    by_number = {r["key"]: _card(r) for r in found}
    return [by_number.get(key) for key in card_numbers]


async def card_ids_of(conn: Conn, user_ids: Sequence[str]) -> list[list[UUID]]:
    """Each member's cards, oldest first."""
    found = await _all(
        conn,
        "SELECT user_id, id FROM medcards WHERE user_id = ANY(%s) ORDER BY issued_at, id",
        (list(user_ids),),
    )
    return [[r["id"] for r in rows] for rows in _grouped(user_ids, found, "user_id")]


_BENEFICIARIES = (
    f"coalesce(json_agg({_BENEFICIARY_JSON} ORDER BY b.is_primary DESC, b.added_at, b.id), '[]')"
)


async def beneficiaries_of(conn: Conn, card_ids: Sequence[UUID]) -> list[list[dict[str, Any]]]:
    found = await _all(
        conn,
        f"SELECT b.medcard_id, {_BENEFICIARIES}::text AS body FROM beneficiaries b"
        " WHERE b.medcard_id = ANY(%s) AND b.removed_at IS NULL GROUP BY b.medcard_id",
        (list(card_ids),),
    )
    by_card = {r["medcard_id"]: orjson.loads(r["body"]) for r in found}
    return [by_card.get(key, []) for key in card_ids]


async def beneficiaries(conn: Conn, card_id: UUID) -> list[dict[str, Any]]:
    return (await beneficiaries_of(conn, [card_id]))[0]


async def monthly_spends(conn: Conn, keys: Sequence[SpendKey]) -> list[dict[str, Any] | None]:
    """What each card spent in each benefit month, against the card's monthly limit.

    The projector keeps the latest claim's or reversal's month total per (card, month).
    None for a card that does not exist. The limit is the card's: it is fixed when the card
    is issued.
    """
    found = await _all(
        conn,
        f"SELECT k.medcard_id, k.month, {_SPEND_JSON}::text AS body"
        " FROM unnest(%s::uuid[], %s::text[]) AS k (medcard_id, month)"
        " JOIN medcards m ON m.id = k.medcard_id"
        " LEFT JOIN medcard_monthly_spend s"
        " ON s.medcard_id = k.medcard_id AND s.month = k.month",
        ([card for card, _ in keys], [month for _, month in keys]),
    )
    by_key = {(r["medcard_id"], r["month"]): orjson.loads(r["body"]) for r in found}
    return [by_key.get(key) for key in keys]


# ---------------------------------------------------------------------- one card, whole


@dataclass(frozen=True, slots=True)
class CardPlan:
    """What a card read fetches besides the card, in the card's own statement: its
    beneficiaries, one page of its claims (`size` claims after the keyset cursor `after`,
    with their items or not) and its spend in some benefit months."""

    beneficiaries: bool = False
    claims: tuple[int, ClaimsAfter | None] | None = None
    claim_items: bool = False
    months: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class CardView:
    """A card as one JSON document: the card's body, and under "beneficiaries", "claims"
    (the page's claims and one more when a next page exists) and "monthlySpend" (by month)
    what its plan asked for. Owned like the card: who may see it, how far it is projected."""

    owner: str
    position: int
    medcard_id: UUID
    document: str
    pharmacy_id: None = None


# The statement's text depends only on which parts are asked for (16 texts by id, 16 by
# number), never on the page or months asked: those are parameters, so the cache stays small.
@functools.cache
def _card_view_sql(
    beneficiaries: bool, claims: bool, claim_items: bool, months: bool, by_number: bool
) -> str:
    extra = ""
    if beneficiaries:
        extra += (
            f", 'beneficiaries', (SELECT {_BENEFICIARIES} FROM beneficiaries b"
            " WHERE b.medcard_id = m.id AND b.removed_at IS NULL)"
        )
    if claims:
        claim = _CLAIM_WITH_ITEMS if claim_items else _CLAIM_JSON.format(extra="")
        page = _CLAIMS_RANGE.format(
            where="c.medcard_id = m.id",
            after_at="%(after_at)s::timestamptz",
            after_id="%(after_id)s::uuid",
            size="%(size)s::int",
        )
        extra += (
            f", 'claims', (SELECT coalesce(json_agg({claim}"
            " ORDER BY c.claimed_at DESC, c.id DESC), '[]')"
            f" FROM (SELECT * FROM prescription_claims c WHERE {page}) c)"
        )
    if months:
        extra += (
            f", 'monthlySpend', (SELECT json_object_agg(k.month, {_SPEND_JSON})"
            " FROM unnest(%(months)s::text[]) AS k (month) LEFT JOIN medcard_monthly_spend s"
            " ON s.medcard_id = m.id AND s.month = k.month)"
        )
    key = "m.card_number" if by_number else "m.id"
    return (
        f"SELECT m.id, m.user_id, m.last_position, {_CARD_JSON.format(extra=extra)}::text AS body"
        f" FROM medcards m WHERE {key} = %(key)s"
    )


async def card_view(
    conn: Conn, key: UUID | str, now: datetime, plan: CardPlan = CardPlan()
) -> CardView | None:
    """The card with id `key` (a UUID) or number `key` (a str), and what `plan` asks for,
    in one statement; None when no card has it."""
    after = plan.claims[1] if plan.claims is not None else None
    params = {
        "key": key,
        "month": benefit_month(now),
        "now": now,
        "size": plan.claims[0] if plan.claims is not None else None,
        "after_at": after[0] if after else None,
        "after_id": after[1] if after else None,
        "months": list(plan.months),
    }
    sql = _card_view_sql(
        plan.beneficiaries,
        plan.claims is not None,
        plan.claim_items,
        bool(plan.months),
        isinstance(key, str),
    )
    found = await _all(conn, sql, params)
    if not found:
        return None
    r = found[0]
    return CardView(r["user_id"], r["last_position"], r["id"], r["body"])


# ------------------------------------------------------------------------------ claims


_CLAIM_WITH_ITEMS = _CLAIM_JSON.format(extra=f", 'items', {_ITEMS}")


def claims_page_of(size: int, found: list[dict[str, Any]]) -> ClaimsPage:
    """A page from the claims fetched `LIMIT size + 1` (JSON bodies): its claims, and the
    last one's keyset cursor when the extra claim says a next page exists."""
    page = found[:size]
    if len(found) <= size:
        return page, None
    last = page[-1]
    return page, (datetime.fromisoformat(last["claimedAt"]), UUID(last["claimId"]))


async def _keyed_claims_pages(
    conn: Conn, keys_sql: str, where: str, sizes: list[int], params: tuple[Any, ...]
) -> list[ClaimsPage]:
    """One page of claims per key of `keys_sql` (an unnest of the keys WITH ORDINALITY as
    `k`, with k.size, k.after_at, k.after_id and k.n), each chosen by `where`. Newest first
    by (claimed_at, id); one extra row per page tells whether a next page exists. Each key is
    its own index range (the LATERAL subquery), whatever the others ask."""
    page = _CLAIMS_RANGE.format(
        where=where, after_at="k.after_at", after_id="k.after_id", size="k.size"
    )
    found = await _all(
        conn,
        f"SELECT k.n, {_CLAIM_JSON.format(extra='')}::text AS body FROM {keys_sql}"
        f" CROSS JOIN LATERAL (SELECT * FROM prescription_claims c WHERE {page}) c"
        " ORDER BY k.n, c.claimed_at DESC, c.id DESC",
        params,
    )
    groups = _grouped(range(1, len(sizes) + 1), found, "n")
    return [
        claims_page_of(size, [orjson.loads(r["body"]) for r in rows])
        for size, rows in zip(sizes, groups, strict=True)
    ]


async def claims_pages(conn: Conn, keys: Sequence[ClaimsKey]) -> list[ClaimsPage]:
    """Each card's page of claims after its keyset cursor."""
    return await _keyed_claims_pages(
        conn,
        "unnest(%s::uuid[], %s::int[], %s::timestamptz[], %s::uuid[])"
        " WITH ORDINALITY AS k (medcard_id, size, after_at, after_id, n)",
        "c.medcard_id = k.medcard_id",
        [size for _, size, _ in keys],
        (
            [card for card, _, _ in keys],
            [size for _, size, _ in keys],
            [after[0] if after else None for _, _, after in keys],
            [after[1] if after else None for _, _, after in keys],
        ),
    )


async def claims_page(
    conn: Conn, card_id: UUID, limit: int, after: ClaimsAfter | None
) -> ClaimsPage:
    return (await claims_pages(conn, [(card_id, limit, after)]))[0]


@dataclass(frozen=True, slots=True)
class ClaimFilter:
    """Which of a pharmacy's claims its statement lists: claimed at or after `since` and
    before `until` (None: unbounded), with `status` (None: any)."""

    since: datetime | None = None
    until: datetime | None = None
    status: str | None = None


StatementKey = tuple[str, int, ClaimsAfter | None, ClaimFilter]  # pharmacy, size, cursor, filter


async def statement_pages(conn: Conn, keys: Sequence[StatementKey]) -> list[ClaimsPage]:
    """Each pharmacy's page of the claims it posted, filtered, after its keyset cursor: the
    card pages' claim bodies and order, over idx_prescription_claims_pharmacy."""
    return await _keyed_claims_pages(
        conn,
        "unnest(%s::text[], %s::int[], %s::timestamptz[], %s::uuid[], %s::timestamptz[],"
        " %s::timestamptz[], %s::text[])"
        " WITH ORDINALITY AS k (pharmacy_id, size, after_at, after_id, since, until, status, n)",
        "c.pharmacy_id = k.pharmacy_id AND c.claimed_at >= coalesce(k.since, '-infinity')"
        " AND c.claimed_at < coalesce(k.until, 'infinity')"
        " AND (k.status IS NULL OR c.status = k.status)",
        [size for _, size, _, _ in keys],
        (
            [pharmacy for pharmacy, _, _, _ in keys],
            [size for _, size, _, _ in keys],
            [after[0] if after else None for _, _, after, _ in keys],
            [after[1] if after else None for _, _, after, _ in keys],
            [f.since for _, _, _, f in keys],
            [f.until for _, _, _, f in keys],
            [f.status for _, _, _, f in keys],
        ),
    )


async def statement_page(conn: Conn, key: StatementKey) -> ClaimsPage:
    return (await statement_pages(conn, [key]))[0]


async def claim_items(conn: Conn, claim_ids: Sequence[UUID]) -> list[list[dict[str, Any]]]:
    """Each claim's items in prescription order."""
    found = await _all(
        conn,
        f"SELECT i.claim_id, {_ITEM_JSON}::text AS body FROM prescription_items i"
        " WHERE i.claim_id = ANY(%s) ORDER BY i.line_no",
        (list(claim_ids),),
    )
    return [
        [orjson.loads(i["body"]) for i in rows] for rows in _grouped(claim_ids, found, "claim_id")
    ]


async def claims(conn: Conn, claim_ids: Sequence[UUID]) -> list[Owned | None]:
    """Each claim with its items, owned by its card's member and visible to its pharmacy."""
    found = await _all(
        conn,
        "SELECT c.id, c.pharmacy_id, m.user_id, m.last_position,"
        f" {_CLAIM_WITH_ITEMS}::text AS body"
        " FROM prescription_claims c JOIN medcards m ON m.id = c.medcard_id"
        " WHERE c.id = ANY(%s)",
        (list(claim_ids),),
    )
    by_id = {
        r["id"]: Owned(r["user_id"], r["pharmacy_id"], r["last_position"], orjson.loads(r["body"]))
        for r in found
    }
    return [by_id.get(key) for key in claim_ids]


async def claim(conn: Conn, claim_id: UUID) -> Owned | None:
    return (await claims(conn, [claim_id]))[0]


# ----------------------------------------------------------------------------- wallets


async def wallets(conn: Conn, wallet_ids: Sequence[UUID]) -> list[Owned | None]:
    found = await _all(conn, "SELECT * FROM wallets WHERE id = ANY(%s)", (list(wallet_ids),))
    by_id = {
        r["id"]: Owned(
            r["owner_user_id"],
            None,
            r["last_position"],
            {
                "id": str(r["id"]),
                "ownerUserId": r["owner_user_id"],
                "currency": r["currency"],
                "balance": _money(r["balance"]),
                "openedAt": _iso(r["opened_at"]),
                "updatedAt": _iso(r["updated_at"]),
                "version": r["version"],
                "copayConsent": {
                    "perClaimLimit": _money(r["copay_per_claim_limit"]),
                    "monthlyLimit": _money(r["copay_monthly_limit"]),
                    "setAt": _iso(r["copay_consent_set_at"]),
                },
            },
        )
        for r in found
    }
    return [by_id.get(key) for key in wallet_ids]


async def wallet(conn: Conn, wallet_id: UUID) -> Owned | None:
    return (await wallets(conn, [wallet_id]))[0]


def _transaction_json(r: Row) -> dict[str, Any]:
    body = {
        "walletId": str(r["wallet_id"]),
        "transactionId": str(r["id"]),
        "type": r["type"],
        "amount": _money(r["amount"]),
        "balance": _money(r["balance_after"]),
        "at": _iso(r["at"]),
        "position": r["position"],
    }
    if r["type"] == "topup":
        body |= {
            "gateway": r["gateway"],
            "gatewayReference": r["reference"],
            "paidAt": _iso(r["paid_at"]),
        }
    elif r["type"] == "debit":
        body |= {"purpose": r["purpose"], "reference": r["reference"]}
    elif r["type"] == "declined":  # a claim's copayment: the claim, and why (the member's)
        body |= {"reference": r["reference"], "reason": r["purpose"]}
    else:
        body |= {"debitId": r["reference"], "reason": r["purpose"]}
    return body


async def transactions_pages(conn: Conn, keys: Sequence[TransactionsKey]) -> list[TransactionsPage]:
    """Newest first by position (each row is one event: positions are unique); one extra
    row per page tells whether a next page exists."""
    found = await _all(
        conn,
        "SELECT k.n, t.* FROM unnest(%s::uuid[], %s::int[], %s::bigint[])"
        " WITH ORDINALITY AS k (wallet_id, size, before, n)"
        " CROSS JOIN LATERAL (SELECT * FROM wallet_transactions t"
        " WHERE t.wallet_id = k.wallet_id AND t.position < k.before"
        " ORDER BY t.position DESC LIMIT k.size + 1) t"
        " ORDER BY k.n, t.position DESC",
        (
            [wallet_id for wallet_id, _, _ in keys],
            [size for _, size, _ in keys],
            [before if before is not None else 2**63 - 1 for _, _, before in keys],
        ),
    )
    return [
        ([_transaction_json(r) for r in page], last["position"] if last is not None else None)
        for page, last in _pages([size for _, size, _ in keys], found)
    ]


async def transactions_page(
    conn: Conn, wallet_id: UUID, limit: int, before: int | None
) -> TransactionsPage:
    return (await transactions_pages(conn, [(wallet_id, limit, before)]))[0]
