"""Read-your-writes over the read models, and opaque pagination cursors.

The position an answer reports is per stream: a card's reads (the card, its beneficiaries, its
claims, one of its claims) answer with `medcards.last_position`, a wallet's with
`wallets.last_position`. `minPosition` is the `position` a write answered; a read given it
must reflect that write. Waiting is one mechanism for REST and GraphQL: the process's one
watcher (api_gateway/watermarks.py) says when the stream read has caught up with the position.

REST reads first: an answer already at the position (the common case: the projection is
faster than the client's next request) costs nothing more. Only one behind, or absent, waits
for the watcher and is read again, in a snapshot that therefore sees what was waited for.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import orjson
from starlette.requests import Request

from api_gateway.access import refusal
from api_gateway.read_models import Conn
from api_gateway.watermarks import Wanted, Watermarks
from infrastructure.auth.tokens import Principal, TokenVerifier
from infrastructure.http.problems import Problem
from infrastructure.postgres.pool import Pool

MAX_POSITION = 2**63 - 1


@dataclass(frozen=True, slots=True)
class Read:
    position: int
    body: Any


Load = Callable[[Conn], Awaitable[Read | None]]


@dataclass(frozen=True, slots=True)
class ReadSide:
    """What every read of this process shares: the pool, the token verifier, the one
    watermark watcher and the bound on waiting for a position."""

    pool: Pool
    tokens: TokenVerifier
    watermarks: Watermarks
    wait_seconds: float = 2.0
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)


def min_position(request: Request) -> int | None:
    """`?minPosition=` or `X-Min-Position`; the larger if both are sent."""
    wanted: list[int] = []
    for raw in (request.query_params.get("minPosition"), request.headers.get("x-min-position")):
        if raw is None:
            continue
        if not raw.isascii() or not raw.isdigit() or int(raw) > MAX_POSITION:
            raise Problem(400, "invalid_min_position", "minPosition must be a non-negative integer")
        wanted.append(int(raw))
    return max(wanted) if wanted else None


def waitable(principal: Principal, wanted: Wanted) -> Wanted | None:
    """`wanted` with its key in the one form the watcher asks for (a UUID's canonical text),
    or None when the answer cannot depend on the position: position 0 (always reached), a
    pharmacy asking for a card or wallet (refused whatever the position), a key that names
    nothing whatever the position (not a UUID; a card number that is not digits)."""
    if wanted.position == 0:
        return None
    if refusal(principal, wanted.stream) is not None:
        return None
    if wanted.stream == "card_number":
        return wanted if wanted.key.isascii() and wanted.key.isdigit() else None
    try:
        key = str(UUID(wanted.key))
    except ValueError:
        return None
    return Wanted(wanted.stream, key, wanted.position)


async def fresh_read(
    side: ReadSide,
    principal: Principal,
    wanted: Wanted | None,
    load: Load,
    *,
    one_statement: bool = False,
) -> Read | None:
    """`load` in one consistent snapshot; with `wanted`, one that reflects its position, or,
    after `side.wait_seconds`, a 504 problem if the object is there but behind. None: absent or
    not the caller's (with `wanted`: still, after the wait). `one_statement`: `load` sends
    one SQL statement, which is a snapshot by itself."""
    read = await _snapshot(side.pool, load, one_statement)
    asked = None if wanted is None else waitable(principal, wanted)
    if asked is None or (read is not None and read.position >= asked.position):
        return read
    settled = asked in await side.watermarks.settle([asked], side.wait_seconds)
    read = await _snapshot(side.pool, load, one_statement)
    # Absent (or not the caller's: both alike, after the same wait) is not found; only an
    # object that is there, behind the position, is the projection's delay.
    if settled or read is None or read.position >= asked.position:
        return read
    raise Problem(
        504,
        "projection_behind",
        f"the read model did not reach position {asked.position} within"
        f" {side.wait_seconds:g}s (at {read.position}); retry later",
        headers={"Retry-After": "1"},
    )


async def _snapshot(pool: Pool, load: Load, one_statement: bool) -> Read | None:
    if one_statement:
        # one statement sees one snapshot whatever the transaction: on the pool's autocommit
        # connection it costs one round trip instead of three (BEGIN, it, COMMIT)
        async with pool.connection() as conn:
            return await load(conn)
    # the gateway's pool begins REPEATABLE READ, READ ONLY transactions (snapshot_reads)
    async with pool.connection() as conn, conn.transaction():
        return await load(conn)


def encode_cursor(value: list[Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(value)).rstrip(b"=").decode()


def decode_cursor(cursor: str) -> list[Any]:
    try:
        # validate: urlsafe_b64decode would skip characters outside the alphabet, so a
        # cursor with "!" added would still be taken
        padded = cursor + "=" * (-len(cursor) % 4)
        value = orjson.loads(base64.b64decode(padded, altchars=b"-_", validate=True))
    except (binascii.Error, ValueError) as exc:
        raise Problem(400, "invalid_cursor", "the cursor is not one this API issued") from exc
    if not isinstance(value, list):
        raise Problem(400, "invalid_cursor", "the cursor is not one this API issued")
    return value


def claims_after(cursor: str) -> tuple[datetime, UUID]:
    """The keyset position (claimed_at, id) a claims cursor names (`claims_cursor`'s)."""
    value = decode_cursor(cursor)
    try:
        return datetime.fromisoformat(value[0]), UUID(value[1])
    except (IndexError, TypeError, ValueError) as exc:
        raise Problem(400, "invalid_cursor", "the cursor is not one this API issued") from exc


def claims_cursor(claimed_at: str, claim_id: str) -> str:
    """The cursor after a claim, from its body's claimedAt and claimId."""
    return encode_cursor([claimed_at, claim_id])


def transactions_before(cursor: str) -> int:
    """The position a transactions cursor names (the last transaction shown)."""
    value = decode_cursor(cursor)
    if len(value) != 1 or not isinstance(value[0], int) or isinstance(value[0], bool):
        raise Problem(400, "invalid_cursor", "the cursor is not one this API issued")
    return value[0]


def transactions_cursor(position: int) -> str:
    """The cursor after a transaction, from its body's position."""
    return encode_cursor([position])


def page_limit(request: Request, default: int = 20, maximum: int = 100) -> int:
    raw = request.query_params.get("limit")
    if raw is None:
        return default
    if not raw.isascii() or not raw.isdigit() or not 1 <= int(raw) <= maximum:
        raise Problem(400, "invalid_limit", f"limit must be an integer from 1 to {maximum}")
    return int(raw)
