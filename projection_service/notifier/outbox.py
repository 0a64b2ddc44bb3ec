"""The notifier's tables (schemas/sql/0017_sms_notifications.sql): contacts kept from the
stream, members' preferences, and the outbox of messages with their status."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from uuid import UUID

from psycopg import AsyncConnection
from psycopg.rows import TupleRow

from projection_service.notifier.messages import (
    Derived,
    Recipient,
    ToBeneficiary,
    ToHolder,
    ToWalletOwner,
)
from projection_service.notifier.templates import Language

Conn = AsyncConnection[TupleRow]

# A due row is leased for this long while it is being sent (longer than the HTTP timeout):
# another notifier instance leaves it alone, and a process killed mid-send hands it on
# after the lease.
SEND_LEASE = timedelta(seconds=30)
MAX_BACKOFF_S = 300


async def save_contacts(conn: Conn, derived: Derived) -> None:
    for c in derived.contacts:
        await conn.execute(
            """
            INSERT INTO sms_contacts (beneficiary_id, card_id, user_id, phone_number, is_primary)
            VALUES (%s, %s, %s, %s, %s)
            ON CONFLICT (beneficiary_id) DO UPDATE SET phone_number = excluded.phone_number
            """,
            (c.beneficiary_id, c.card_id, c.user_id, c.phone_number, c.is_primary),
        )
    for beneficiary_id in derived.removed:
        await conn.execute("DELETE FROM sms_contacts WHERE beneficiary_id = %s", (beneficiary_id,))
    if derived.wallet_owner is not None:
        await conn.execute(
            "INSERT INTO sms_wallets (wallet_id, user_id) VALUES (%s, %s) ON CONFLICT DO NOTHING",
            derived.wallet_owner,
        )


_PRIMARY = """
SELECT card_id, phone_number FROM sms_contacts WHERE card_id = %s AND is_primary
"""
_BENEFICIARY = """
SELECT card_id, phone_number FROM sms_contacts WHERE card_id = %s AND beneficiary_id = %s
"""
# A user with several cards: the newest-issued card's primary holder is not knowable here,
# so the smallest card id stands in (stable, so the same user always gets one message).
_WALLET_OWNER = """
SELECT c.card_id, c.phone_number FROM sms_wallets w
JOIN sms_contacts c ON c.user_id = w.user_id AND c.is_primary
WHERE w.wallet_id = %s ORDER BY c.card_id LIMIT 1
"""


async def resolve(conn: Conn, to: Recipient) -> tuple[UUID, str] | None:
    """The card and the phone number a message goes to; None: nobody with a phone known."""
    row: tuple[UUID, str | None] | None = None
    match to:
        case ToBeneficiary():
            row = await (
                await conn.execute(_BENEFICIARY, (to.card_id, to.beneficiary_id))
            ).fetchone()
            if row is None or row[1] is None:
                row = await (await conn.execute(_PRIMARY, (to.card_id,))).fetchone()
        case ToHolder():
            row = await (await conn.execute(_PRIMARY, (to.card_id,))).fetchone()
        case ToWalletOwner():
            row = await (await conn.execute(_WALLET_OWNER, (to.wallet_id,))).fetchone()
    if row is None or row[1] is None:
        return None
    return row[0], row[1]


async def preference(conn: Conn, card_id: UUID) -> tuple[Language | None, bool]:
    """(chosen language or None, opted out) of a card."""
    row = await (
        await conn.execute(
            "SELECT language, opted_out FROM sms_preferences WHERE card_id = %s", (card_id,)
        )
    ).fetchone()
    return (None, False) if row is None else (row[0], bool(row[1]))


@dataclass(frozen=True, slots=True)
class OutboxRow:
    event_id: UUID
    recipient: str
    kind: str
    card_id: UUID
    once_key: str | None
    language: Language
    body: str


async def insert(conn: Conn, row: OutboxRow) -> bool:
    """False if the message exists already (the same event read again, or a threshold's
    message already sent this month)."""
    cursor = await conn.execute(
        """
        INSERT INTO sms_outbox (event_id, recipient, kind, card_id, once_key, language, body)
        VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING
        """,
        (row.event_id, row.recipient, row.kind, row.card_id, row.once_key, row.language, row.body),
    )
    return cursor.rowcount == 1


@dataclass(frozen=True, slots=True)
class DueRow:
    event_id: UUID
    recipient: str
    kind: str
    body: str
    attempts: int


# Rows of a card that opted out after they were stored are skipped, never sent; the others
# due are leased. The two parts touch disjoint rows (NOT EXISTS), as one statement must.
_LEASE_DUE = """
WITH skipped AS (
  UPDATE sms_outbox o SET status = 'skipped', last_error = 'opted out'
  FROM sms_preferences p
  WHERE o.status = 'pending' AND o.next_attempt_at <= now() AND p.card_id = o.card_id
    AND p.opted_out
)
UPDATE sms_outbox o SET next_attempt_at = now() + %s, attempts = o.attempts + 1
FROM (
  SELECT event_id, recipient, kind FROM sms_outbox q
  WHERE status = 'pending' AND next_attempt_at <= now()
    AND NOT EXISTS (
      SELECT 1 FROM sms_preferences p WHERE p.card_id = q.card_id AND p.opted_out
    )
  ORDER BY next_attempt_at LIMIT %s FOR UPDATE SKIP LOCKED
) due
WHERE (o.event_id, o.recipient, o.kind) = (due.event_id, due.recipient, due.kind)
RETURNING o.event_id, o.recipient, o.kind, o.body, o.attempts
"""


async def lease_due(conn: Conn, limit: int) -> list[DueRow]:
    rows = await (await conn.execute(_LEASE_DUE, (SEND_LEASE, limit))).fetchall()
    return [DueRow(*row) for row in rows]


async def mark_sent(conn: Conn, row: DueRow, provider_id: str) -> None:
    await conn.execute(
        """
        UPDATE sms_outbox SET status = 'sent', provider_message_id = %s, sent_at = now(),
          last_error = NULL
        WHERE event_id = %s AND recipient = %s AND kind = %s
        """,
        (provider_id, row.event_id, row.recipient, row.kind),
    )


async def mark_failed(conn: Conn, row: DueRow, error: str, *, final: bool) -> None:
    """`final`: refused, never tried again; otherwise retried after an exponential back-off."""
    backoff = timedelta(seconds=min(MAX_BACKOFF_S, 2 ** min(row.attempts, 10)))
    await conn.execute(
        """
        UPDATE sms_outbox SET last_error = %s, next_attempt_at = now() + %s,
          status = CASE WHEN %s THEN 'failed' ELSE status END
        WHERE event_id = %s AND recipient = %s AND kind = %s
        """,
        (error[:500], backoff, final, row.event_id, row.recipient, row.kind),
    )
