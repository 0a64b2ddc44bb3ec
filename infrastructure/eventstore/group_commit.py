"""Group commit: concurrent appends share one transaction (docs/design.md §3, step 4).

A caller queues its request and waits on its own future. One flusher task runs while there
is work: it takes everything queued (up to `max_batch`), commits it with one
`append_batch`, hands out the outcomes, and starts over with whatever queued up meanwhile.
No timer: a lone request is flushed on the next loop iteration, and under load the batch
size grows by itself to match the commit latency.

This is the hottest path of the service, so per request it costs one future and two list
appends, and the flusher task exists only while there is something to flush.

Failures stay with the request that caused them. When a batch fails for any reason but the
store being unavailable (`EventStoreUnavailable`), nothing of it was committed, and its
members are tried again one by one, in order: the others commit, and only the request the
store refuses on its own is answered with `AppendRefused` (and logged, once). The queue of
requests not yet handed to the store is bounded (`max_queue`): when it is full, `append`
raises `AppendQueueFull` at once instead of letting callers wait behind a stalled store.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from infrastructure.eventstore.port import (
    AppendOutcome,
    AppendRefused,
    AppendRequest,
    EventStore,
    EventStoreUnavailable,
    validate_append_request,
)

log = logging.getLogger("healthpay.eventstore")
DEFAULT_MAX_QUEUE = 4096


class AppendQueueFull(Exception):
    """`max_queue` requests are already waiting for the store; this one was not queued."""


class GroupCommitAppender:
    def __init__(
        self,
        store: EventStore,
        max_batch: int = 256,
        max_in_flight: int = 1,
        max_queue: int = DEFAULT_MAX_QUEUE,
    ) -> None:
        if max_batch < 1 or max_in_flight < 1 or max_queue < 1:
            raise ValueError("max_batch, max_in_flight and max_queue must be at least 1")
        self._store = store
        self._max_batch = max_batch
        self._max_in_flight = max_in_flight
        self._max_queue = max_queue
        self._requests: list[AppendRequest] = []
        self._waiters: list[asyncio.Future[AppendOutcome]] = []
        # Counted here, not via task callbacks: the count must drop in the same step in which
        # a flusher sees an empty queue, or a request queued just then would be stranded.
        self._active = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False
        self.flushes = 0  # append_batch calls made; tests and metrics read it
        self.flushed_requests = 0
        self.refused_requests = 0  # answered with AppendRefused
        self.queue_full = 0  # appends refused with AppendQueueFull

    async def append(self, request: AppendRequest) -> AppendOutcome:
        """Commit `request` together with whatever else is waiting.

        If the caller is cancelled after its request was handed to the store, the request
        may still commit: cancellation only stops the waiting.
        """
        if self._closed:
            raise RuntimeError("GroupCommitAppender is closed")
        # Checked here so that an invalid request fails only its own caller, not the batch.
        validate_append_request(request)
        if len(self._requests) >= self._max_queue:
            self.queue_full += 1
            raise AppendQueueFull(f"{self._max_queue} appends are waiting for the event store")
        waiter: asyncio.Future[AppendOutcome] = asyncio.get_running_loop().create_future()
        self._requests.append(request)
        self._waiters.append(waiter)
        if self._active < self._max_in_flight:
            self._active += 1
            task = asyncio.create_task(self._flush_until_idle())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return await waiter

    async def _flush_until_idle(self) -> None:
        try:
            while self._requests:
                if len(self._requests) <= self._max_batch:
                    requests, self._requests = self._requests, []
                    waiters, self._waiters = self._waiters, []
                else:
                    requests = self._requests[: self._max_batch]
                    waiters = self._waiters[: self._max_batch]
                    del self._requests[: self._max_batch]
                    del self._waiters[: self._max_batch]
                try:
                    await self._flush(requests, waiters)
                except asyncio.CancelledError:
                    _cancel(waiters)
                    raise
        finally:
            self._active -= 1
            # Reached with an empty queue, or by cancellation: if no other flusher is left,
            # nobody would ever flush what is still queued, so those callers are cancelled.
            if self._active == 0:
                _cancel(self._waiters)
                self._requests, self._waiters = [], []

    async def _flush(
        self, requests: list[AppendRequest], waiters: list[asyncio.Future[AppendOutcome]]
    ) -> None:
        try:
            _settle(waiters, await self._append(requests))
        except EventStoreUnavailable as error:
            _fail(waiters, error)
        except Exception as error:
            if len(requests) == 1:
                self._refuse(waiters[0], error, 1)
            else:
                await self._one_by_one(requests, waiters)

    async def _one_by_one(
        self, requests: list[AppendRequest], waiters: list[asyncio.Future[AppendOutcome]]
    ) -> None:
        """A batch failed on its content: each member alone, so only the culprit fails.

        In order, so a request chained on an earlier one's stream still finds it (or, if
        that one was refused, gets the version conflict it would have got on its own)."""
        for index, (request, waiter) in enumerate(zip(requests, waiters, strict=True)):
            try:
                _settle([waiter], await self._append([request]))
            except EventStoreUnavailable as error:
                _fail(waiters[index:], error)  # no use waiting for it once per request
                return
            except Exception as error:
                self._refuse(waiter, error, len(requests))

    async def _append(self, requests: Sequence[AppendRequest]) -> list[AppendOutcome]:
        self.flushes += 1
        self.flushed_requests += len(requests)
        outcomes = await self._store.append_batch(requests)
        if len(outcomes) != len(requests):
            raise EventStoreUnavailable("event store returned the wrong number of outcomes")
        return outcomes

    def _refuse(
        self, waiter: asyncio.Future[AppendOutcome], error: Exception, batch_size: int
    ) -> None:
        self.refused_requests += 1
        # Type and SQLSTATE only: the driver's message may quote the request's data.
        log.error(
            "the event store refused an append request on its own: %s (sqlstate %s);"
            " the %d other requests of its batch were tried without it",
            type(error).__name__,
            getattr(error, "sqlstate", None),
            batch_size - 1,
        )
        if not waiter.done():
            refused = AppendRefused(type(error).__name__)
            refused.__cause__ = error
            waiter.set_exception(refused)

    async def close(self) -> None:
        """Refuse new requests and wait until everything queued has been flushed."""
        self._closed = True
        if self._tasks:
            await asyncio.shield(asyncio.gather(*self._tasks))


def _cancel(waiters: list[asyncio.Future[AppendOutcome]]) -> None:
    for waiter in waiters:
        if not waiter.done():
            waiter.cancel()


def _settle(waiters: list[asyncio.Future[AppendOutcome]], outcomes: list[AppendOutcome]) -> None:
    for waiter, outcome in zip(waiters, outcomes, strict=True):
        if not waiter.done():  # its caller may have been cancelled
            waiter.set_result(outcome)


def _fail(waiters: list[asyncio.Future[AppendOutcome]], error: BaseException) -> None:
    # Every caller of the batch sees the same exception. Whether the batch committed is
    # unknown to them (a connection lost during COMMIT hides the answer).
    for waiter in waiters:
        if not waiter.done():
            waiter.set_exception(error)
