"""Queries over the PostgreSQL read models (never the event store), answered in the write
API's JSON shapes: camelCase, money as two-decimal strings, ISO timestamps.

Each function reads one thing on a connection the caller owns; the caller runs them in one
REPEATABLE READ transaction so a body and the position it claims to reflect agree.
"""

from __future__ import annotations

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


async def _one(conn: Conn, query: str, params: tuple[Any, ...]) -> Row | None:
    found = await _all(conn, query, params)
    return found[0] if found else None


def _money(value: Decimal | None) -> str | None:
    return None if value is None else f"{value:.2f}"


def _iso(value: Any) -> str | None:
    return None if value is None else str(value.isoformat())


# ------------------------------------------------------------------------------- cards


async def card(conn: Conn, card_id: UUID, now: datetime) -> Owned | None:
    row = await _one(conn, "SELECT * FROM medcards WHERE id = %s", (card_id,))
    if row is None:
        return None
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


async def beneficiaries(conn: Conn, card_id: UUID) -> list[dict[str, Any]]:
    found = await _all(
        conn,
        "SELECT * FROM beneficiaries WHERE medcard_id = %s AND removed_at IS NULL"
        " ORDER BY is_primary DESC, added_at, id",
        (card_id,),
    )
    return [
        {
            "id": str(r["id"]),
            "relationship": r["relationship"],
            "nationalId": r["national_id"],
            "name": r["name"],
            "dateOfBirth": _iso(r["date_of_birth"]),
            "phoneNumber": r["phone_number"],
            "isPrimary": r["is_primary"],
            "addedAt": _iso(r["added_at"]),
        }
        for r in found
    ]


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


async def claims_page(
    conn: Conn, card_id: UUID, limit: int, after: tuple[datetime, UUID] | None
) -> tuple[list[dict[str, Any]], tuple[datetime, UUID] | None]:
    """Newest first by (claimed_at, id); one extra row tells whether a next page exists."""
    if after is None:
        found = await _all(
            conn,
            "SELECT * FROM prescription_claims WHERE medcard_id = %s"
            " ORDER BY claimed_at DESC, id DESC LIMIT %s",
            (card_id, limit + 1),
        )
    else:
        found = await _all(
            conn,
            "SELECT * FROM prescription_claims WHERE medcard_id = %s"
            " AND (claimed_at, id) < (%s, %s) ORDER BY claimed_at DESC, id DESC LIMIT %s",
            (card_id, after[0], after[1], limit + 1),
        )
    page = found[:limit]
    more = len(found) > limit
    return [_claim_json(r) for r in page], (
        (page[-1]["claimed_at"], page[-1]["id"]) if more else None
    )


async def claim(conn: Conn, claim_id: UUID) -> Owned | None:
    row = await _one(
        conn,
        "SELECT c.*, m.user_id AS card_user_id, m.last_position AS card_position"
        " FROM prescription_claims c JOIN medcards m ON m.id = c.medcard_id WHERE c.id = %s",
        (claim_id,),
    )
    if row is None:
        return None
    items = await _all(
        conn, "SELECT * FROM prescription_items WHERE claim_id = %s ORDER BY line_no", (claim_id,)
    )
    body = _claim_json(row) | {
        "items": [
            {
                "drugCode": i["drug_code"],
                "drugName": i["drug_name"],
                "quantity": i["quantity"],
                "unitPrice": _money(i["unit_price"]),
                "totalPrice": _money(i["total_price"]),
                "coveredAmount": _money(i["covered_amount"]),
                "copaymentAmount": _money(i["copayment_amount"]),
            }
            for i in items
        ]
    }
    return Owned(row["card_user_id"], row["pharmacy_id"], row["card_position"], body)


# ----------------------------------------------------------------------------- wallets


async def wallet(conn: Conn, wallet_id: UUID) -> Owned | None:
    row = await _one(conn, "SELECT * FROM wallets WHERE id = %s", (wallet_id,))
    if row is None:
        return None
    body = {
        "id": str(row["id"]),
        "ownerUserId": row["owner_user_id"],
        "currency": row["currency"],
        "balance": _money(row["balance"]),
        "openedAt": _iso(row["opened_at"]),
        "updatedAt": _iso(row["updated_at"]),
        "version": row["version"],
    }
    return Owned(row["owner_user_id"], None, row["last_position"], body)


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
        body |= {"gateway": r["gateway"], "gatewayReference": r["reference"]}
    elif r["type"] == "debit":
        body |= {"purpose": r["purpose"], "reference": r["reference"]}
    else:
        body |= {"debitId": r["reference"], "reason": r["purpose"]}
    return body


async def transactions_page(
    conn: Conn, wallet_id: UUID, limit: int, before: int | None
) -> tuple[list[dict[str, Any]], int | None]:
    """Newest first by position (each row is one event: positions are unique)."""
    found = await _all(
        conn,
        "SELECT * FROM wallet_transactions WHERE wallet_id = %s AND position < %s"
        " ORDER BY position DESC LIMIT %s",
        (wallet_id, before if before is not None else 2**63 - 1, limit + 1),
    )
    page = found[:limit]
    more = len(found) > limit
    return [_transaction_json(r) for r in page], (page[-1]["position"] if more else None)
