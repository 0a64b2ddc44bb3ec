"""The relay, the projection worker and the balance projection ride out their stores' outages.

Real processes over private servers (tests/chaos/stack.py: a durable PostgreSQL, a Kafka
broker and a Cassandra node of this test's own, since each is crashed): a command service
takes a paced load of claims, copays from wallets, top-ups and reversals (retried with their
Idempotency-Key while the database is away) while the test crash-stops PostgreSQL
(`pg_ctl -m immediate`), SIGKILLs the Kafka broker and SIGKILLs the Cassandra node, each
brought back after a few seconds. The three workers must keep their process (same pid, never
exited) and go on working after each outage; afterwards every store is what the event store
says (tests/chaos/checker.py). A second test shows the other half of the rule: an outage
longer than OUTAGE_BUDGET_S ends each worker with exit status 75 and one log line.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest

from infrastructure.outage import EXIT_OUTAGE
from tests.chaos.checker import verify
from tests.chaos.stack import Stack, private_stack
from tests.integration.stream_load import Callers, Load, seed
from tests.integration.stream_processes import HealthpayProcess

pytestmark = pytest.mark.integration

SECRET = "outage-test-secret-0123456789abcdef012345"
STEP_S = 90.0  # for the workers to show progress after one outage
DOWN_S = 4.0  # how long each server stays down

# What each worker counts as it works (its /metrics).
PROGRESS = {
    "relay": "healthpay_relay_published_events_total",
    "worker": "healthpay_projection_events_total",
    "balances": "healthpay_balances_events_total",
}


def _progress(process: HealthpayProcess) -> float:
    return process.metric(next(v for k, v in PROGRESS.items() if process.name.startswith(k)))


async def _counts(stack: Stack) -> dict[str, float]:
    return {p.name: await asyncio.to_thread(_progress, p) for p in stack.workers}


async def _all_progress(stack: Stack, what: str, base: dict[str, float] | None = None) -> None:
    """Each worker moves on by some events from `base` (now, by default), in the same process
    it had from the start."""
    if base is None:
        base = await _counts(stack)
    deadline = time.monotonic() + STEP_S
    while True:
        exited = [f"{p.name}: {p.exit_code}\n{p.log_tail(10)}" for p in stack.fleet.crashed()]
        assert exited == [], f"after {what}, exited: {exited}"
        moved = {
            p.name: await asyncio.to_thread(_progress, p) - base[p.name] for p in stack.workers
        }
        if all(n >= 5 for n in moved.values()):
            return
        assert time.monotonic() < deadline, f"after {what}, no progress within {STEP_S}s: {moved}"
        await asyncio.sleep(0.5)


async def _outage(
    stack: Stack, what: str, crash: Callable[[], None], back: Callable[[], None]
) -> None:
    await asyncio.to_thread(crash)
    await asyncio.sleep(DOWN_S)
    await asyncio.to_thread(back)
    await _all_progress(stack, what)


async def test_workers_ride_out_postgres_kafka_and_cassandra_outages() -> None:
    # a budget well past the slowest restart of a busy machine: an exit here is a defect
    async with private_stack(SECRET, outage_budget_s=300.0) as stack:
        await stack.start_processes(command_services=1)
        pids = {p.name: p.pid for p in stack.workers}
        async with stack.client() as client:
            callers = Callers.make(SECRET)
            load = Load(client, callers, [], [], rate=20.0, max_operations=10**9)
            load.cards, load.wallets = await seed(client, callers, load.acks)
            load.retry_for_s = 60.0
            running = asyncio.create_task(load.run())
            try:
                await _all_progress(stack, "the start")
                pg, kafka, node = stack.postgres, stack.kafka, stack.cassandra
                await _outage(stack, "a PostgreSQL crash-stop", pg.crash, pg.start_again)
                await _outage(
                    stack, "a Kafka SIGKILL", lambda: kafka.take_down(kill=True), kafka.bring_up
                )
                await _outage(
                    stack, "a Cassandra SIGKILL", lambda: node.take_down(kill=True), node.bring_up
                )
            finally:
                load.stop.set()
                await running
        ends = await stack.drain(120.0)
        assert {p.name: p.pid for p in stack.workers if p.running} == pids
        verdict = await verify(stack, load, [], ends)
        assert verdict.failed == [], verdict.failed
        # the outages were felt: the clients had to retry while PostgreSQL was away
        assert load.retries > 0


async def test_an_outage_past_the_budget_ends_each_worker_with_one_line() -> None:
    async with private_stack(SECRET, outage_budget_s=3.0) as stack:
        await stack.start_processes(command_services=1)
        before = await _counts(stack)
        async with stack.client() as client:
            await seed(client, Callers.make(SECRET), [])
        await _all_progress(stack, "the seeding", before)
        await asyncio.to_thread(stack.kafka.take_down, True)
        await asyncio.to_thread(stack.postgres.crash)
        # 3 s of budget, then the probes' own timeouts; generous for a loaded box
        deadline = time.monotonic() + 180.0
        while any(p.running for p in stack.workers):
            assert time.monotonic() < deadline, [p.log_tail(10) for p in stack.workers if p.running]
            await asyncio.sleep(0.5)
        for process in stack.workers:
            log = process.log.read_text(errors="replace")
            assert process.exit_code == EXIT_OUTAGE, (process.name, process.log_tail(20))
            assert log.count("giving up:") == 1, process.log_tail(20)
            assert "Traceback" not in log, process.log_tail(40)
