"""Has the read model caught up with a position? One watcher per process answers for every
waiting read, REST or GraphQL.

A read with `minPosition` p asks that its answer reflect every event of the stream it reads
(a card, a wallet) up to position p. That holds when the projection's cursor for the stream
(`projection_streams.version`: the version the read models reflect) has reached the version
of the stream's last event at or before p, and p itself has been written (p <= the newest
position). It is exact for any p: a stream with no event up to p (a card id that names
nothing, or one issued after p) is settled at once, so its absence is the honest answer
(404), and a position written on another stream proves itself as soon as it exists, instead
of waiting for this stream to move past it. It asks nothing of whom the stream belongs to, so
another member's card settles exactly when a missing one does, and both answer "not found"
alike: waiting cannot probe ids.

Only the cursor and the events' (aggregate, version, position) are read, never an event's
data: the answers themselves still come from the read models alone.

One poller per process (`Watermarks`): a waiting read registers, the poller asks for every
registered read in ONE statement on one pooled connection, wakes the settled ones, and asks
again after `poll_seconds` (at once when a new read arrived meanwhile). A poll only counts
for reads registered before it began, so what it saw was committed before those reads asked.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from infrastructure.eventstore.log_queries import settled as settled_asks
from infrastructure.postgres.pool import Pool

log = logging.getLogger("healthpay.gateway.watermarks")

Stream = Literal["card", "card_number", "wallet", "claim"]


@dataclass(frozen=True, slots=True)
class Wanted:
    """The stream `key` names (of kind `stream`) must reflect `position`."""

    stream: Stream
    key: str
    position: int


@dataclass(eq=False, slots=True)
class _Waiter:
    pending: set[Wanted]
    settled: set[Wanted] = field(default_factory=set)
    done: asyncio.Event = field(default_factory=asyncio.Event)
    error: BaseException | None = None


class Watermarks:
    """The process's one watcher. `settle` is safe to call from any number of requests."""

    def __init__(self, pool: Pool, *, poll_seconds: float = 0.05) -> None:
        self._pool = pool
        self._poll_seconds = poll_seconds
        self._waiters: list[_Waiter] = []
        self._arrived = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def settle(self, wanted: Sequence[Wanted], wait_seconds: float) -> frozenset[Wanted]:
        """Those of `wanted` the read model reflects: all of them as soon as they are, else
        the ones settled when `wait_seconds` ran out. Keys must be as freshness.waitable
        makes them (a malformed one would fail the poll of every read waiting with it)."""
        waiter = _Waiter(set(wanted))
        if not waiter.pending:
            return frozenset()
        self._waiters.append(waiter)
        self._arrived.set()
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="gateway-watermarks")
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(waiter.done.wait(), wait_seconds)
        finally:
            with contextlib.suppress(ValueError):
                self._waiters.remove(waiter)
        if waiter.error is not None:
            raise waiter.error
        return frozenset(waiter.settled)

    async def aclose(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        try:
            while self._waiters:
                self._arrived.clear()
                batch = list(self._waiters)  # registered before this poll began
                await self._poll(batch)
                self._waiters = [w for w in self._waiters if not w.done.is_set()]
                asked = {id(w) for w in batch}
                if any(id(w) not in asked for w in self._waiters):
                    continue  # someone arrived during the poll: ask for them now
                if self._waiters:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._arrived.wait(), self._poll_seconds)
        except Exception as exc:
            log.warning("watermark poll failed", exc_info=True)
            for waiter in self._waiters:
                waiter.error = exc
                waiter.done.set()
            self._waiters = []
        finally:
            self._task = None

    async def _poll(self, batch: list[_Waiter]) -> None:
        asked = list({w for waiter in batch for w in waiter.pending})
        if not asked:
            return
        async with self._pool.connection() as conn:
            rows = await settled_asks(
                conn, [w.stream for w in asked], [w.key for w in asked], [w.position for w in asked]
            )
        settled = {asked[n - 1] for n, ok in rows if ok}
        for waiter in batch:
            waiter.settled |= waiter.pending & settled
            waiter.pending -= settled
            if not waiter.pending:
                waiter.done.set()
