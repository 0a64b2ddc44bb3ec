"""The faults of a chaos run, and the runner that plays the supervisor.

Each fault crashes one piece and brings it back: SIGKILL of a command-service process, the
relay, the projection worker or the balance projection (restarted at once on the same port,
as a supervisor would), SIGKILL of the Kafka broker or the Cassandra node (restarted after
`down_s`), and a crash-stop of PostgreSQL (`pg_ctl -m immediate`, restarted after `down_s`:
it recovers from its WAL). The relay and the projections must ride out the three servers'
outages without exiting (infrastructure/outage.py); one that exits anyway is restarted too,
and counted: the checker fails the run for it.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from tests.chaos.stack import Stack
from tests.integration.stream_processes import HealthpayProcess

POSTGRES, KAFKA, CASSANDRA = "postgresql", "kafka", "cassandra"
START_S = 120.0  # for a restarted process to serve (a busy 2-core machine took 30 s)
PROCESS_KINDS = ("command-service", "relay", "projection-worker", "balance-projection")


@dataclass
class Chaos:
    stack: Stack
    rng: random.Random
    down_s: float = 2.0  # how long a crashed server stays down
    injected: Counter[str] = field(default_factory=Counter)
    # each piece's recovery under way: a fault does not wait for the previous one's, except
    # that a piece is crashed again only once it is back
    recovering: dict[str, asyncio.Task[None]] = field(default_factory=dict)
    unexpected_exits: list[str] = field(default_factory=list)
    restarting: dict[str, asyncio.Task[None]] = field(default_factory=dict)  # by the supervisor
    timeline: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)

    def note(self, text: str) -> None:
        line = f"{time.monotonic() - self.started:6.1f}s {text}"
        self.timeline.append(line)
        print(f"chaos: {line}", flush=True)

    def schedule(self, count: int) -> list[str]:
        """`count` faults: rounds in which every piece fails once (each command-service
        process its own entry), each round in a shuffled order."""
        kinds = [f"command-service:{i}" for i in range(len(self.stack.commands))]
        kinds += ["relay", "projection-worker", "balance-projection", KAFKA, CASSANDRA, POSTGRES]
        plan: list[str] = []
        while len(plan) < count:
            round_ = kinds[:]
            self.rng.shuffle(round_)
            plan += round_
        return plan[:count]

    async def play(self, count: int, duration_s: float, load: asyncio.Task[None]) -> None:
        """Injects `count` faults, one every `duration_s / count` seconds (recoveries overlap
        later faults), while the load runs and a supervisor restarts whatever exits; returns
        once every piece is back."""
        slot = duration_s / max(count, 1)
        supervisor = asyncio.create_task(self.supervise())
        try:
            for kind in self.schedule(count):
                if load.done():
                    load.result()  # the load's own failure surfaces here
                    raise RuntimeError("the load ended before the faults did")
                begun = time.monotonic()
                previous = self.recovering.get(kind)
                if previous is not None:
                    await previous
                self.recovering[kind] = asyncio.create_task(self.inject(kind))
                await asyncio.sleep(max(0.0, begun + slot - time.monotonic()))
            await asyncio.gather(*self.recovering.values())
        finally:
            supervisor.cancel()
            for task in self.recovering.values():
                task.cancel()

    async def inject(self, kind: str) -> None:
        name, _, index = kind.partition(":")
        self.injected[name] += 1
        if name == POSTGRES:
            await self.server_down(
                POSTGRES, self.stack.postgres.crash, self.stack.postgres.start_again
            )
        elif name == KAFKA:
            kafka = self.stack.kafka
            await self.server_down(KAFKA, lambda: kafka.take_down(kill=True), kafka.bring_up)
        elif name == CASSANDRA:
            node = self.stack.cassandra
            await self.server_down(CASSANDRA, lambda: node.take_down(kill=True), node.bring_up)
        else:
            await self.kill_and_restart(self.process(name, int(index or 0)))

    def process(self, kind: str, index: int) -> HealthpayProcess:
        chosen = {
            "command-service": self.stack.commands[index] if self.stack.commands else None,
            "relay": self.stack.relay,
            "projection-worker": self.stack.worker,
            "balance-projection": self.stack.balances,
        }[kind]
        assert chosen is not None, kind
        return chosen

    async def kill_and_restart(self, process: HealthpayProcess) -> None:
        pending = self.restarting.get(process.name)
        if pending is not None:
            await pending  # the supervisor is already bringing it back: kill it once it is
        await asyncio.to_thread(process.kill)
        self.note(f"SIGKILLed {process.name}")
        await asyncio.to_thread(process.start, START_S)
        self.note(f"restarted {process.name} (pid {process.pid})")

    async def server_down(
        self, name: str, crash: Callable[[], None], start: Callable[[], None]
    ) -> None:
        await asyncio.to_thread(crash)
        self.note(f"crashed {name}")
        await asyncio.sleep(self.down_s)
        began = time.monotonic()
        await asyncio.to_thread(start)
        self.note(f"{name} is back (its start took {time.monotonic() - began:.1f}s)")

    async def supervise(self) -> None:
        """Restarts any process that exited although nobody killed it, and says so."""
        while True:
            for process in self.stack.fleet.crashed():
                pending = self.restarting.get(process.name)
                if pending is not None and not pending.done():
                    continue
                self.unexpected_exits.append(f"{process.name}: exit {process.exit_code}")
                self.note(f"{process.name} exited on its own ({process.exit_code}); restarting")
                self.note(process.log_tail(3))
                self.restarting[process.name] = asyncio.create_task(_retry(process))
            await asyncio.sleep(0.5)


async def _retry(process: HealthpayProcess, tries: int = 5) -> None:
    for attempt in range(tries):
        try:
            await asyncio.to_thread(process.start, START_S)
            return
        except RuntimeError:
            if attempt == tries - 1:
                raise
            await asyncio.sleep(2.0)
