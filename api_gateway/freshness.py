"""Read-your-writes over the read models, and opaque pagination cursors.

The watermark is per stream: a card's reads (the card, its beneficiaries, its claims, one of
its claims) answer with `medcards.last_position`, a wallet's with `wallets.last_position`.
The projector applies each stream strictly in version order and every event of a stream
advances its row's last_position, while positions grow with versions inside a stream; so
"last_position >= p" means the event at p of that stream, and all before it, is reflected.
`minPosition` is therefore the `position` the write API answered for a command on the same
card or wallet. (A position from another stream only proves itself once this stream moves
past it.) A stream's position says nothing about other streams, which is why there is no
global watermark: the projection runs per Kafka partition.

Waiting is one mechanism for REST and GraphQL (`await_positions`): poll the named streams'
watermarks, outside any snapshot, until they reach the position or the bound ends; then read
once, in a snapshot that therefore sees what was waited for.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal
from uuid import UUID

import orjson
from starlette.requests import Request

from api_gateway.read_models import Conn
from infrastructure.auth.tokens import Principal, Role
from infrastructure.http.problems import Problem
from infrastructure.postgres.pool import Pool

MAX_POSITION = 2**63 - 1


@dataclass(frozen=True, slots=True)
class Read:
    position: int
    body: Any


Load = Callable[[Conn], Awaitable[Read | None]]


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


# The last projected position of the stream an id names, with the reads' visibility (NULL
# when absent or not the caller's: both wait alike, so waiting cannot probe ids).
_WATERMARKS = {
    "card": "SELECT last_position FROM medcards WHERE id = %(key)s::uuid"
    " AND (%(member)s::text IS NULL OR user_id = %(member)s)",
    "card_number": "SELECT last_position FROM medcards WHERE card_number = %(key)s"
    " AND (%(member)s::text IS NULL OR user_id = %(member)s)",
    "wallet": "SELECT last_position FROM wallets WHERE id = %(key)s::uuid"
    " AND (%(member)s::text IS NULL OR owner_user_id = %(member)s)",
    "claim": "SELECT m.last_position FROM prescription_claims c"
    " JOIN medcards m ON m.id = c.medcard_id WHERE c.id = %(key)s::uuid"
    " AND (%(member)s::text IS NULL OR m.user_id = %(member)s)"
    " AND (%(pharmacy)s::text IS NULL OR c.pharmacy_id = %(pharmacy)s)",
}
_CLOSED_TO_PHARMACIES = frozenset({"card", "card_number", "wallet"})
Stream = Literal["card", "card_number", "wallet", "claim"]


@dataclass(frozen=True, slots=True)
class Wanted:
    """The stream `key` names (of kind `stream`) must have reached `position`."""

    stream: Stream
    key: str
    position: int


async def await_positions(
    pool: Pool,
    principal: Principal,
    wanted: Sequence[Wanted],
    *,
    wait_seconds: float,
    poll_seconds: float,
) -> None:
    """Returns when every stream has reached its position, or when `wait_seconds` are up
    (the caller then finds its answer behind). Polls outside any snapshot, so the snapshot
    the caller opens afterwards sees what was waited for."""
    pending = [(_WATERMARKS[w.stream], _params(principal, w.key), w.position)
               for w in wanted if _can_arrive(principal, w)]  # fmt: skip
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_seconds
    while pending:
        async with pool.connection() as conn:
            still = []
            for query, params, position in pending:
                cursor = await conn.execute(query, params)
                row = await cursor.fetchone()
                if row is None or row[0] < position:
                    still.append((query, params, position))
        pending = still
        if not pending or loop.time() >= deadline:
            return
        await asyncio.sleep(min(poll_seconds, max(deadline - loop.time(), 0.0)))


def _can_arrive(principal: Principal, wanted: Wanted) -> bool:
    if principal.role is Role.PHARMACY and wanted.stream in _CLOSED_TO_PHARMACIES:
        return False  # refused whatever the position
    if wanted.stream == "card_number":
        return True
    try:
        UUID(wanted.key)
    except ValueError:
        return False  # not found whatever the position
    return True


def _params(principal: Principal, key: str) -> dict[str, Any]:
    member = principal.subject if principal.role is Role.MEMBER else None
    pharmacy = (principal.pharmacy_id or "") if principal.role is Role.PHARMACY else None
    return {"key": key, "member": member, "pharmacy": pharmacy}


async def fresh_read(
    pool: Pool,
    principal: Principal,
    wanted: Wanted | None,
    load: Load,
    *,
    wait_seconds: float,
    poll_seconds: float,
) -> Read | None:
    """`load` in one consistent snapshot; with `wanted`, once its stream has reached the
    position, or a 504 problem after `wait_seconds` if it is there but behind. None: absent
    or not the caller's (with `wanted`: still, after the wait)."""
    if wanted is not None:
        await await_positions(
            pool, principal, [wanted], wait_seconds=wait_seconds, poll_seconds=poll_seconds
        )
    # the gateway's pool begins REPEATABLE READ, READ ONLY transactions (snapshot_reads)
    async with pool.connection() as conn, conn.transaction():
        read = await load(conn)
    # Absent (or not the caller's: both alike, after the same wait) is not found; only an
    # object that is there, behind the position, is the projection's delay.
    if read is None or wanted is None or read.position >= wanted.position:
        return read
    raise Problem(
        504,
        "projection_behind",
        f"the read model did not reach position {wanted.position} within {wait_seconds:g}s"
        f" (at {read.position}); retry later",
        headers={"Retry-After": "1"},
    )


def encode_cursor(value: list[Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(value)).rstrip(b"=").decode()


def decode_cursor(cursor: str) -> list[Any]:
    try:
        value = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError) as exc:
        raise Problem(400, "invalid_cursor", "the cursor is not one this API issued") from exc
    if not isinstance(value, list):
        raise Problem(400, "invalid_cursor", "the cursor is not one this API issued")
    return value


def page_limit(request: Request, default: int = 20, maximum: int = 100) -> int:
    raw = request.query_params.get("limit")
    if raw is None:
        return default
    if not raw.isascii() or not raw.isdigit() or not 1 <= int(raw) <= maximum:
        raise Problem(400, "invalid_limit", f"limit must be an integer from 1 to {maximum}")
    return int(raw)
