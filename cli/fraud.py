"""`healthpay fraud flags [--card ID] [--since WHEN]`: the velocity flags claims carried
(domain/medcard/velocity.py), from the `fraud_flags` read model the projection worker keeps."""

from __future__ import annotations

import argparse
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

from infrastructure.auth.tokens import TokenCodec
from infrastructure.settings import Settings

if TYPE_CHECKING:
    Subparsers = argparse._SubParsersAction[argparse.ArgumentParser]
else:
    Subparsers = Any

_FLAGS = """
SELECT claimed_at, medcard_id, beneficiary_id, claim_id, pharmacy_id, total_amount, flag
FROM fraud_flags
WHERE (%(card)s::uuid IS NULL OR medcard_id = %(card)s::uuid)
  AND (%(since)s::timestamptz IS NULL OR claimed_at >= %(since)s::timestamptz)
ORDER BY claimed_at, claim_id, flag
"""


def since(text: str) -> datetime:
    """A day (YYYY-MM-DD, from its start in UTC) or a moment with its offset."""
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), datetime.min.time(), UTC)
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date or time: {text!r}") from None
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError("a time needs its UTC offset, e.g. 2026-12-04T10:00Z")
    return moment


def add_parser(commands: Subparsers) -> None:
    fraud = commands.add_parser("fraud", help="claims flagged for review (never refused)")
    fraud_commands = fraud.add_subparsers(dest="fraud_command", required=True)
    flags = fraud_commands.add_parser("flags", help="velocity flags, oldest first")
    flags.add_argument("--card", type=UUID, default=None, help="one card (its id)")
    flags.add_argument("--since", type=since, default=None, help="YYYY-MM-DD or an ISO time")


def flagged(conninfo: str, card: UUID | None, from_: datetime | None) -> list[tuple[Any, ...]]:
    import psycopg

    with psycopg.connect(conninfo, autocommit=True) as conn:
        return conn.execute(_FLAGS, {"card": card, "since": from_}).fetchall()


def run(args: argparse.Namespace, settings: Settings, _: TokenCodec | None) -> int:
    rows = flagged(settings.postgres_url, args.card, args.since)
    print(f"{'claimed at':<25} {'card':<36} {'claim':<36} {'pharmacy':<16} {'amount':>12} flag")
    for claimed_at, card, _beneficiary, claim, pharmacy, amount, flag in rows:
        stamp = claimed_at.astimezone(UTC).isoformat(timespec="seconds")
        print(f"{stamp:<25} {card!s:<36} {claim!s:<36} {pharmacy:<16} {amount:>12} {flag}")
    print(f"{len(rows)} flag(s)")
    return 0
