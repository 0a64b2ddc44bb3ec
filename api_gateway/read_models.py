"""Queries over the PostgreSQL read models (never the event store), answered in the write
API's JSON shapes: camelCase, money as two-decimal strings, ISO timestamps.

Each read is a batch: one SQL statement answers every key it is given, in the order given
(None or an empty list where a key matches nothing). GraphQL's DataLoaders call the batches
with all the keys of a request; the REST reads call the single-key wrappers, so both share
one SQL text and one JSON shaping per thing. The caller owns the connection and runs its
reads in one REPEATABLE READ transaction so a body and the position it claims to reflect
agree.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from psycopg import AsyncConnection
from psycopg.rows import TupleRow, dict_row

from domain.calendar import benefit_month

Conn = AsyncConnection[TupleRow]
Row = dict[str, Any]
ZERO = Decimal("0.00")

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


async def _all(conn: Conn, query: str, params: tuple[Any, ...]) -> list[Row]:
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


# ------------------------------------------------------------------------------- cards


def _card(row: Row, now: datetime) -> Owned:
    # current_month_spent belongs to current_month; a later Cairo month has spent nothing yet
    this_month = benefit_month(now)
    spent = row["current_month_spent"] if row["current_month"] == this_month else ZERO
    remaining = max(row["monthly_limit"] - spent, ZERO)
    body = {
        "id": str(row["id"]),
        "cardNumber": row["card_number"],
        "userId": row["user_id"],
        "cardType": row["card_type"],
        "status": row["status"],
        "monthlyLimit": _money(row["monthly_limit"]),
        "copaymentPercentage": _money(row["copayment_percentage"]),
        "maxBeneficiaries": row["max_beneficiaries"],
        "currency": row["currency"],
        "primaryHolder": _holder_json(row["primary_holder"]),
        "insuranceProvider": row["insurance_provider"],
        "policyNumber": row["policy_number"],
        "issuedAt": _iso(row["issued_at"]),
        "expiryDate": _iso(row["expiry_date"]),
        "updatedAt": _iso(row["updated_at"]),
        "currentMonth": this_month,
        "currentMonthSpent": _money(spent),
        "remainingThisMonth": _money(remaining),
        "version": row["version"],
    }
    return Owned(row["user_id"], None, row["last_position"], body, row["id"])


def _holder_json(stored: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": stored.get("beneficiary_id"),
        "relationship": stored.get("relationship"),
        "nationalId": stored.get("national_id"),
        "name": stored.get("name"),
        "dateOfBirth": stored.get("date_of_birth"),
        "phoneNumber": stored.get("phone_number"),
    }


async def cards(conn: Conn, card_ids: Sequence[UUID], now: datetime) -> list[Owned | None]:
    found = await _all(conn, "SELECT * FROM medcards WHERE id = ANY(%s)", (list(card_ids),))
    by_id = {r["id"]: _card(r, now) for r in found}
    return [by_id.get(key) for key in card_ids]


async def card(conn: Conn, card_id: UUID, now: datetime) -> Owned | None:
    return (await cards(conn, [card_id], now))[0]


async def cards_by_number(
    conn: Conn, card_numbers: Sequence[str], now: datetime
) -> list[Owned | None]:
    found = await _all(
        conn, "SELECT * FROM medcards WHERE card_number = ANY(%s)", (list(card_numbers),)
    )
    by_number = {r["card_number"]: _card(r, now) for r in found}
    return [by_number.get(key) for key in card_numbers]


async def card_ids_of(conn: Conn, user_ids: Sequence[str]) -> list[list[UUID]]:
    """Each member's cards, oldest first."""
    found = await _all(
        conn,
        "SELECT user_id, id FROM medcards WHERE user_id = ANY(%s) ORDER BY issued_at, id",
        (list(user_ids),),
    )
    return [[r["id"] for r in rows] for rows in _grouped(user_ids, found, "user_id")]


def _beneficiary_json(r: Row) -> dict[str, Any]:
    return {
        "id": str(r["id"]),
        "relationship": r["relationship"],
        "nationalId": r["national_id"],
        "name": r["name"],
        "dateOfBirth": _iso(r["date_of_birth"]),
        "phoneNumber": r["phone_number"],
        "isPrimary": r["is_primary"],
        "addedAt": _iso(r["added_at"]),
    }


async def beneficiaries_of(conn: Conn, card_ids: Sequence[UUID]) -> list[list[dict[str, Any]]]:
    found = await _all(
        conn,
        "SELECT * FROM beneficiaries WHERE medcard_id = ANY(%s) AND removed_at IS NULL"
        " ORDER BY is_primary DESC, added_at, id",
        (list(card_ids),),
    )
    return [
        [_beneficiary_json(r) for r in rows] for rows in _grouped(card_ids, found, "medcard_id")
    ]


async def beneficiaries(conn: Conn, card_id: UUID) -> list[dict[str, Any]]:
    return (await beneficiaries_of(conn, [card_id]))[0]


async def monthly_spends(conn: Conn, keys: Sequence[SpendKey]) -> list[dict[str, Any] | None]:
    """What each card spent in each benefit month, against the card's monthly limit.

    The projector keeps the latest claim's or reversal's month total per (card, month), so
    a month without a row had no claim: it spent nothing. None for a card that does not
    exist. The limit is the card's: it is fixed when the card is issued.
    """
    found = await _all(
        conn,
        "SELECT k.medcard_id, k.month, m.monthly_limit, coalesce(s.total_spent, 0) AS spent"
        " FROM unnest(%s::uuid[], %s::text[]) AS k (medcard_id, month)"
        " JOIN medcards m ON m.id = k.medcard_id"
        " LEFT JOIN medcard_monthly_spend s"
        " ON s.medcard_id = k.medcard_id AND s.month = k.month",
        ([card for card, _ in keys], [month for _, month in keys]),
    )
    by_key = {
        (r["medcard_id"], r["month"]): {
            "month": r["month"],
            "spent": _money(r["spent"]),
            "limit": _money(r["monthly_limit"]),
            "remaining": _money(max(r["monthly_limit"] - r["spent"], ZERO)),
        }
        for r in found
    }
    return [by_key.get(key) for key in keys]


# ------------------------------------------------------------------------------ claims


def _claim_json(r: Row) -> dict[str, Any]:
    return {
        "claimId": str(r["id"]),
        "medcardId": str(r["medcard_id"]),
        "prescriptionId": r["prescription_id"],
        "pharmacyId": r["pharmacy_id"],
        "beneficiaryId": str(r["beneficiary_id"]),
        "decision": r["decision"],
        "status": r["status"],
        "reasons": list(r["reasons"]),
        "totalAmount": _money(r["total_amount"]),
        "coveredAmount": _money(r["covered_amount"]),
        "copaymentAmount": _money(r["copayment_amount"]),
        "copaymentPercentage": _money(r["copay_percent"]),
        "copaymentPaidFromWallet": _money(r["copayment_paid_from_wallet"]),
        "walletId": str(r["wallet_id"]) if r["wallet_id"] else None,
        "month": r["month"],
        "monthlyLimit": _money(r["monthly_limit"]),
        "monthSpent": _money(r["month_spent_after"]),
        "remainingMonthlyLimit": _money(r["remaining_after"]),
        "claimedAt": _iso(r["claimed_at"]),
        "reversedAt": _iso(r["reversed_at"]),
        "reversalReason": r["reversal_reason"],
        "position": r["position"],
    }


async def claims_pages(conn: Conn, keys: Sequence[ClaimsKey]) -> list[ClaimsPage]:
    """Newest first by (claimed_at, id); one extra row per page tells whether a next page
    exists. Each key is its own index range (the LATERAL subquery), whatever the others ask.
    """
    # no cursor = after (+infinity, any id): the keyset comparison stays one index range
    # instead of an OR the planner could not turn into one
    found = await _all(
        conn,
        "SELECT k.n, c.* FROM unnest(%s::uuid[], %s::int[], %s::timestamptz[], %s::uuid[])"
        " WITH ORDINALITY AS k (medcard_id, size, after_at, after_id, n)"
        " CROSS JOIN LATERAL (SELECT * FROM prescription_claims c"
        " WHERE c.medcard_id = k.medcard_id AND (c.claimed_at, c.id)"
        " < (coalesce(k.after_at, 'infinity'), coalesce(k.after_id, %s::uuid))"
        " ORDER BY c.claimed_at DESC, c.id DESC LIMIT k.size + 1) c"
        " ORDER BY k.n, c.claimed_at DESC, c.id DESC",
        (
            [card for card, _, _ in keys],
            [size for _, size, _ in keys],
            [after[0] if after else None for _, _, after in keys],
            [after[1] if after else None for _, _, after in keys],
            UUID(int=2**128 - 1),
        ),
    )
    return [
        (
            [_claim_json(r) for r in page],
            (last["claimed_at"], last["id"]) if last is not None else None,
        )
        for page, last in _pages([size for _, size, _ in keys], found)
    ]


async def claims_page(
    conn: Conn, card_id: UUID, limit: int, after: ClaimsAfter | None
) -> ClaimsPage:
    return (await claims_pages(conn, [(card_id, limit, after)]))[0]


def _item_json(i: Row) -> dict[str, Any]:
    return {
        "drugCode": i["drug_code"],
        "drugName": i["drug_name"],
        "quantity": i["quantity"],
        "unitPrice": _money(i["unit_price"]),
        "totalPrice": _money(i["total_price"]),
        "coveredAmount": _money(i["covered_amount"]),
        "copaymentAmount": _money(i["copayment_amount"]),
    }


async def claim_items(conn: Conn, claim_ids: Sequence[UUID]) -> list[list[dict[str, Any]]]:
    """Each claim's items in prescription order."""
    found = await _all(
        conn,
        "SELECT * FROM prescription_items WHERE claim_id = ANY(%s) ORDER BY line_no",
        (list(claim_ids),),
    )
    return [[_item_json(i) for i in rows] for rows in _grouped(claim_ids, found, "claim_id")]


async def claims(conn: Conn, claim_ids: Sequence[UUID]) -> list[Owned | None]:
    """Each claim with its items, owned by its card's member and visible to its pharmacy."""
    found = await _all(
        conn,
        "SELECT c.*, m.user_id AS card_user_id, m.last_position AS card_position"
        " FROM prescription_claims c JOIN medcards m ON m.id = c.medcard_id"
        " WHERE c.id = ANY(%s)",
        (list(claim_ids),),
    )
    # no claim found, nothing to itemize: an unknown id costs one statement, not two
    items = await claim_items(conn, [r["id"] for r in found]) if found else []
    by_id = {
        r["id"]: Owned(
            r["card_user_id"],
            r["pharmacy_id"],
            r["card_position"],
            _claim_json(r) | {"items": its},
        )
        for r, its in zip(found, items, strict=True)
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
