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
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.requests import Request

from api_gateway.read_models import Conn
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


async def fresh_read(
    pool: Pool, wanted: int | None, load: Load, *, wait_seconds: float, poll_seconds: float
) -> Read | None:
    """`load` in one consistent snapshot; with `wanted`, polled until the stream's position
    reaches it, or a 504 problem after `wait_seconds`. None: absent or not the caller's
    (both wait alike, so the wait cannot tell which)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_seconds
    while True:
        # the gateway's pool begins REPEATABLE READ, READ ONLY transactions (snapshot_reads)
        async with pool.connection() as conn, conn.transaction():
            read = await load(conn)
        if wanted is None or (read is not None and read.position >= wanted):
            return read
        if loop.time() >= deadline:
            seen = "" if read is None else f" (at {read.position})"
            raise Problem(
                504,
                "projection_behind",
                f"the read model did not reach position {wanted} within {wait_seconds:g}s{seen};"
                " retry later",
                headers={"Retry-After": "1"},
            )
        await asyncio.sleep(min(poll_seconds, max(deadline - loop.time(), 0.0)))


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
