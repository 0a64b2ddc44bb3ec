"""Group commit: concurrent appends share one transaction (docs/design.md §3, step 4).

A caller queues its request and waits on its own future. One flusher task runs while there
is work: it takes everything queued (up to `max_batch`), commits it with one
`append_batch`, hands out the outcomes, and starts over with whatever queued up meanwhile.
No timer: a lone request is flushed on the next loop iteration, and under load the batch
size grows by itself to match the commit latency.

This is the hottest path of the service, so per request it costs one future and two list
appends, and the flusher task exists only while there is something to flush.
"""

from __future__ import annotations

import asyncio

from infrastructure.eventstore.port import (
    AppendOutcome,
    AppendRequest,
    EventStore,
    validate_append_request,
)


class GroupCommitAppender:
    def __init__(self, store: EventStore, max_batch: int = 256, max_in_flight: int = 1) -> None:
        if max_batch < 1 or max_in_flight < 1:
            raise ValueError("max_batch and max_in_flight must be at least 1")
        self._store = store
        self._max_batch = max_batch
        self._max_in_flight = max_in_flight
        self._requests: list[AppendRequest] = []
        self._waiters: list[asyncio.Future[AppendOutcome]] = []
        # Counted here, not via task callbacks: the count must drop in the same step in which
        # a flusher sees an empty queue, or a request queued just then would be stranded.
        self._active = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False
        self.flushes = 0  # append_batch calls made; tests and metrics read it
        self.flushed_requests = 0

    async def append(self, request: AppendRequest) -> AppendOutcome:
        """Commit `request` together with whatever else is waiting.

        If the caller is cancelled after its request was handed to the store, the request
        may still commit: cancellation only stops the waiting.
        """
        if self._closed:
            raise RuntimeError("GroupCommitAppender is closed")
        # Checked here so that an invalid request fails only its own caller, not the batch.
        validate_append_request(request)
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
                self.flushes += 1
                self.flushed_requests += len(requests)
                try:
                    outcomes = await self._store.append_batch(requests)
                except asyncio.CancelledError:
                    _cancel(waiters)
                    raise
                except Exception as error:
                    _fail(waiters, error)
                    continue
                if len(outcomes) != len(waiters):
                    _fail(
                        waiters, RuntimeError("event store returned the wrong number of outcomes")
                    )
                    continue
                for waiter, outcome in zip(waiters, outcomes, strict=True):
                    if not waiter.done():  # its caller may have been cancelled
                        waiter.set_result(outcome)
        finally:
            self._active -= 1
            # Reached with an empty queue, or by cancellation: if no other flusher is left,
            # nobody would ever flush what is still queued, so those callers are cancelled.
            if self._active == 0:
                _cancel(self._waiters)
                self._requests, self._waiters = [], []

    async def close(self) -> None:
        """Refuse new requests and wait until everything queued has been flushed."""
        self._closed = True
        if self._tasks:
            await asyncio.shield(asyncio.gather(*self._tasks))


def _cancel(waiters: list[asyncio.Future[AppendOutcome]]) -> None:
    for waiter in waiters:
        if not waiter.done():
            waiter.cancel()


def _fail(waiters: list[asyncio.Future[AppendOutcome]], error: BaseException) -> None:
    # Every caller of the batch sees the same exception. Whether the batch committed is
    # unknown to them (a connection lost during COMMIT hides the answer).
    for waiter in waiters:
        if not waiter.done():
            waiter.set_exception(error)
