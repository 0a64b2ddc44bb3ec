"""What the correlation-id log lines cost per claim and per event (infrastructure/logs.py):
CPU µs of the very functions the processes call after each command and each batch, at
LOG_LEVEL=INFO (the lines are off: a level check per batch or command) and at DEBUG (each line
formatted as JSON, masked, written to a discarded stream). The baseline, measured in the same
run: making the event's Kafka envelope from its stored row, which the relay does for every
event anyway.

    .venv/bin/python load-tests/log_bench.py

One process, no server; best of five rounds of CPU time (time.process_time, from the
kernel's accounting of this process: other processes on the box do not count).
"""

from __future__ import annotations

import contextlib
import io
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import orjson

from command_service.execution import Outcome
from command_service.http_endpoints import _domain
from command_service.relay.relay import _log_published
from domain.events import ClaimAdjudicated
from infrastructure.eventstore.envelope import stored_envelope
from infrastructure.eventstore.port import RecordedEvent
from infrastructure.eventstore.rows import StoredEvent
from infrastructure.logs import configure_logging
from projection_service.balances.consumer import _log_committed as balances_committed
from projection_service.balances.projector import ProjectResult
from projection_service.batches import MessageBatch
from projection_service.read_models.projector import ApplyResult
from projection_service.worker import _log_committed as worker_committed

CPU = time.process_time
BATCH = 1000
ROUNDS = 5


def _events(n: int) -> list[RecordedEvent]:
    now = datetime.now(UTC)
    return [
        RecordedEvent(
            position=1_000_000 + i,
            event_id=uuid4(),
            aggregate_id=uuid4(),
            aggregate_type="medcard",
            event_type="medcard.claim_adjudicated",
            schema_version=1,
            version=7,
            data={"claim_id": str(uuid4()), "month": "2026-12", "covered_amount": "315.00"},
            metadata={
                "correlation_id": str(uuid4()),
                "actor": {"role": "pharmacy", "sub": "pharmacy-1", "pharmacy_id": "pharmacy-1"},
            },
            timestamp=now,
        )
        for i in range(n)
    ]


def _stored(e: RecordedEvent) -> StoredEvent:
    data, metadata = orjson.dumps(e.data).decode(), orjson.dumps(e.metadata).decode()
    return StoredEvent(
        e.position, e.event_id, e.aggregate_id, e.aggregate_type, e.event_type,
        e.schema_version, e.version, data, metadata, e.timestamp,
    )  # fmt: skip


def _best(run: Callable[[], object], repeat: int) -> float:
    """Best CPU seconds of one call of `run`, over ROUNDS rounds of `repeat` calls."""
    best = float("inf")
    for _ in range(ROUNDS):
        start = CPU()
        for _ in range(repeat):
            run()
        best = min(best, (CPU() - start) / repeat)
    return best


def _claim_outcome() -> Outcome:
    result = ClaimAdjudicated.model_construct(
        claim_id=uuid4(), pharmacy_id="pharmacy-1", decision="approved"
    )
    return Outcome(result, uuid4(), 7, 1_000_007, created=True)


def main() -> None:
    events = _events(BATCH)
    stored = [_stored(e) for e in events]  # the relay's rows: JSON as PostgreSQL wrote it
    batch = MessageBatch(events=events)
    applied = ApplyResult(applied=BATCH)
    projected = ProjectResult(BATCH, 0, (), 2 * BATCH, BATCH)
    outcome = _claim_outcome()

    async def run_command(ctx: object) -> Outcome:
        return outcome

    async def without_lines(run: Callable[[object], Awaitable[Outcome]], ctx: object) -> Outcome:
        return await run(ctx)  # _domain as it was before its log lines

    def one_command(domain: Callable[..., Coroutine[Any, Any, Outcome]] = _domain) -> None:
        coroutine = domain(run_command, None)
        with contextlib.suppress(StopIteration):  # it never awaits: done in one step
            coroutine.send(None)

    baseline = _best(lambda: [stored_envelope(e) for e in stored], 5) / BATCH
    bare = _best(lambda: one_command(without_lines), 2000)
    rows: list[tuple[str, str, float]] = []
    for level in ("INFO", "DEBUG"):
        configure_logging("bench", level, "json", io.StringIO())
        sink = logging.getLogger().handlers[0]
        assert isinstance(sink, logging.StreamHandler)
        sink.setStream(_Discard())
        rows += [
            ("relay, per event", level, _best(lambda: _log_published(stored), 5) / BATCH),
            ("projection worker, per event", level,
             _best(lambda: worker_committed(batch, applied), 5) / BATCH),
            ("balance projection, per event", level,
             _best(lambda: balances_committed(events, projected, parked=True), 5) / BATCH),
            ("command service, per command", level, _best(one_command, 2000)),
        ]  # fmt: skip
    sink.filters.clear()  # the masking's share: the same lines without the filter
    rows.append(
        ("projection worker, per event, no masking", "DEBUG",
         _best(lambda: worker_committed(batch, applied), 5) / BATCH)
    )  # fmt: skip
    print(f"baseline: stored_envelope {baseline * 1e6:.2f} µs CPU per event (batch of {BATCH})")
    print(f"command service: the call without its log lines {bare * 1e6:.3f} µs CPU")
    print("| where | LOG_LEVEL | µs CPU | ÷ envelope encoding |")
    print("|---|---|---|---|")
    for where, level, seconds in rows:
        if where.startswith("command"):
            seconds -= bare  # the lines' own cost: the call around them is the same before
        print(f"| {where} | {level} | {seconds * 1e6:.3f} | {seconds / baseline:.3f} |")


class _Discard(io.StringIO):
    def write(self, text: str) -> int:
        return len(text)


if __name__ == "__main__":
    main()
