"""`make chaos`: the write path under crashes, then an independent check of every store.

    .venv/bin/python -m tests.chaos.run [--faults 16] [--duration 150] [--seed 9]

On private servers (tests/chaos/stack.py): cards and wallets are seeded, then paced clients
post claims (some paying the copay from the wallet), top-ups and reversals, each retried
with its Idempotency-Key until it is answered, while `--faults` faults spread over
`--duration` seconds crash every piece in turn (tests/chaos/faults.py); this runner restarts
what it crashed. Once the load stopped and every consumer caught up, the checker
(tests/chaos/checker.py) reads PostgreSQL, Kafka and CQL directly. The counts are printed;
the exit status is 1 if any check failed. docs/reliability.md.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from collections import Counter

from tests.chaos.checker import Verdict, verify
from tests.chaos.faults import Chaos
from tests.chaos.stack import private_stack
from tests.integration.stream_load import Callers, Load, seed

SECRET = "chaos-run-secret-0123456789abcdef0123456789"
RETRY_S = 240.0  # a client keeps retrying one request this long (longer than any fault)
# The workers' OUTAGE_BUDGET_S here: longer than a server's slowest restart on a busy 2-core
# machine (Cassandra: 65 s seen), so that a worker that exits during the run is a defect, not
# a slow start. The budget's own exit is tested in test_workers_ride_out_outages.py.
OUTAGE_BUDGET_S = 300.0
DRAIN_S = 180.0  # for the relay and both projections to catch up after the faults


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="chaos", description=__doc__.splitlines()[0])
    parser.add_argument("--faults", type=int, default=16, help="faults to inject (16)")
    parser.add_argument(
        "--duration", type=float, default=150.0, help="seconds to spread them over (150)"
    )
    parser.add_argument("--rate", type=float, default=20.0, help="client operations/s (20)")
    parser.add_argument(
        "--down", type=float, default=2.0, help="seconds a crashed server stays down"
    )
    parser.add_argument("--seed", type=int, default=9, help="the fault order's random seed")
    return parser.parse_args(argv)


def report(chaos: Chaos, load: Load, verdict: Verdict, seconds: float) -> None:
    kinds = ", ".join(f"{k} {n}" for k, n in sorted(chaos.injected.items()))
    acked: Counter[str] = Counter(a.what for a in load.acks)
    print(f"chaos: faults injected {sum(chaos.injected.values())}: {kinds}")
    print(
        f"chaos: requests tried {load.tries} ({load.retries} retries); acknowledged writes "
        f"{len(load.acks)}: " + ", ".join(f"{k} {n}" for k, n in sorted(acked.items()))
    )
    print(f"chaos: statuses {sorted(load.statuses.items())}")
    print(f"chaos: took {seconds:.0f}s")
    print(f"chaos: {len(verdict.passed)} passed, {len(verdict.failed)} failed")


async def run(args: argparse.Namespace) -> int:
    began = time.monotonic()
    async with private_stack(SECRET, OUTAGE_BUDGET_S) as stack:
        print(f"chaos: servers up in {time.monotonic() - began:.0f}s; starting the processes")
        await stack.start_processes(command_services=2)
        chaos = Chaos(stack, random.Random(args.seed), down_s=args.down)
        async with stack.client() as client:
            callers = Callers.make(SECRET)
            load = Load(client, callers, [], [], rate=args.rate, max_operations=10**9)
            load.cards, load.wallets = await seed(client, callers, load.acks)
            load.retry_for_s = RETRY_S
            running = asyncio.create_task(load.run())
            try:
                await chaos.play(args.faults, args.duration, running)
            finally:
                load.stop.set()
                await running
            chaos.note(f"load stopped after {load.issued} operations")
        try:
            ends = await stack.drain(DRAIN_S)
        except TimeoutError as exc:
            chaos.note(str(exc))
            for process in stack.fleet.started:
                print(f"--- {process.name} ({process.log}):\n{process.log_tail(15)}")
            return 1
        chaos.note("relay and both projections caught up; checking")
        verdict = await verify(stack, load, chaos.unexpected_exits, ends)
    report(chaos, load, verdict, time.monotonic() - began)
    return 1 if verdict.failed else 0


def main(argv: list[str] | None = None) -> int:
    return asyncio.run(run(parse(argv)))


if __name__ == "__main__":
    sys.exit(main())
