"""Real `healthpay` processes for the stream's fault tests: command service, relay, worker.

Each runs as its own OS process (the `healthpay` entry point, as an operator starts it),
configured only through the environment (POSTGRES_URL, KAFKA_BROKERS, KAFKA_TOPIC,
JWT_SECRET), logging to .local/log/. Relays and workers serve /metrics on a port of their
own, which says when they are up and what they did (published, applied, parked, active).
`Fleet` remembers every process it started so a test can stop them all in one `finally`.
"""

from __future__ import annotations

import asyncio
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

import httpx
import psycopg
from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    ConsumerGroupState,
    KafkaException,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient

from tests.integration.server_scripts import free_port
from tests.integration.stream_load import Ack, Callers, Load, seed
from tests.isolation import isolated_environ

REPO = Path(__file__).resolve().parents[2]
LOG_DIR = REPO / ".local" / "log"
_ENTRY_POINT = Path(sys.executable).with_name("healthpay")


def _healthpay(*args: str) -> list[str]:
    if _ENTRY_POINT.exists():
        return [str(_ENTRY_POINT), *args]
    return [sys.executable, "-m", "cli.main", *args]


class HealthpayProcess:
    """One `healthpay <command>` process; `ready_path` on `port` answers 200 once it is up."""

    def __init__(
        self, name: str, command: list[str], env: dict[str, str], port: int, ready_path: str
    ) -> None:
        self.name = name
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log = LOG_DIR / f"test-{name}-{port}.log"
        self.killed = False  # by the test, with SIGKILL
        self._command = command
        self._env = isolated_environ(**env)
        self._ready_path = ready_path
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> HealthpayProcess:
        """Starts the process (again, after a kill: same command, same port)."""
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as log:
            self._proc = subprocess.Popen(
                self._command, cwd=REPO, env=self._env, stdout=log, stderr=subprocess.STDOUT
            )
        self.killed = False  # only now: until here the killed process was still `_proc`
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited early; see {self.log}")
            try:
                if httpx.get(self.url + self._ready_path, timeout=1.0).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"{self.name} not up within {timeout}s; see {self.log}")

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def exit_code(self) -> int | None:
        return None if self._proc is None else self._proc.poll()

    def died_on_its_own(self) -> bool:
        """Exited although nobody killed or stopped it (a crash of its own)."""
        return not self.killed and self._proc is not None and self._proc.poll() is not None

    def kill(self) -> None:
        """SIGKILL: no shutdown hooks, no flush, no leaving the consumer group."""
        if self._proc is not None and self._proc.poll() is None:
            self.killed = True
            self._proc.send_signal(signal.SIGKILL)
            self._proc.wait(10)

    def ask_to_stop(self) -> None:
        """SIGTERM without waiting (see `stop`)."""
        if self._proc is not None and self._proc.poll() is None:
            self.killed = True  # an exit from here on is ours
            self._proc.terminate()

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self.ask_to_stop()
            try:
                self._proc.wait(15)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(10)

    def metrics(self) -> dict[str, float]:
        """The process's /metrics, unlabelled samples and labelled ones summed by name;
        empty if it does not answer."""
        try:
            text = httpx.get(self.url + "/metrics", timeout=2.0).text
        except httpx.HTTPError:
            return {}
        values: dict[str, float] = {}
        for line in text.splitlines():
            match = _SAMPLE.match(line)
            if match:
                name = match.group(1)
                values[name] = values.get(name, 0.0) + float(match.group(2))
        return values

    def metric(self, name: str) -> float:
        return self.metrics().get(name, 0.0)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{[^}]*\})? ([-+0-9.eEinfNa]+)$")


class Fleet:
    """Starts command services, relays and workers over one database and topic, and stops
    every one of them in `stop_all`, whatever happened in between."""

    def __init__(self, postgres_url: str, jwt_secret: str) -> None:
        # The faults these fleets go through are meant to be ridden out: a restart slower than
        # the production budget (60 s; a shared box has seen Kafka take longer) must not end
        # a worker. tests/integration/test_workers_ride_out_outages.py tests the budget itself.
        self.env = {
            "POSTGRES_URL": postgres_url,
            "JWT_SECRET": jwt_secret,
            "OUTAGE_BUDGET_S": "300",
        }
        self.started: list[HealthpayProcess] = []
        self._count = 0
        self._lock = threading.Lock()  # processes start from several threads at once

    def use_kafka(self, brokers: str, topic: str) -> None:
        """For the processes started from now on (the command service needs no Kafka)."""
        self.env = {**self.env, "KAFKA_BROKERS": brokers, "KAFKA_TOPIC": topic}

    def _new(self, kind: str, args: list[str], ready_path: str) -> HealthpayProcess:
        with self._lock:
            self._count += 1
            port = free_port()
            command = _healthpay(*args, str(port))
            process = HealthpayProcess(f"{kind}{self._count}", command, self.env, port, ready_path)
            self.started.append(process)
            return process

    def command_service(self) -> HealthpayProcess:
        return self._new("commands", ["serve-commands", "--port"], "/health").start()

    def relay(self) -> HealthpayProcess:
        return self._new("relay", ["relay", "--metrics-port"], "/metrics").start()

    def worker(self) -> HealthpayProcess:
        return self._new("worker", ["project", "--metrics-port"], "/metrics").start()

    def gateway(self) -> HealthpayProcess:
        return self._new("gateway", ["serve-gateway", "--port"], "/openapi.json").start(90.0)

    def balance_projection(self) -> HealthpayProcess:
        return self._new("balances", ["project-balances", "--metrics-port"], "/metrics").start()

    def relays(self) -> Iterator[HealthpayProcess]:
        return (p for p in self.started if p.name.startswith("relay") and p.running)

    def workers(self) -> Iterator[HealthpayProcess]:
        return (p for p in self.started if p.name.startswith("worker") and p.running)

    def active_relay(self) -> HealthpayProcess | None:
        for relay in self.relays():
            if relay.metric("healthpay_relay_active") == 1.0:
                return relay
        return None

    def crashed(self) -> list[HealthpayProcess]:
        return [p for p in self.started if p.died_on_its_own()]

    def stop_all(self) -> None:
        for process in self.started:
            process.ask_to_stop()
        for process in self.started:
            process.stop()


# ---------------------------------------------------------------- Kafka's side


class _Stoppable(Protocol):
    def stop(self) -> None: ...


H = TypeVar("H", bound=_Stoppable)

RELAY_BACKLOG = """
SELECT count(*) FROM events, relay_checkpoints AS c
WHERE c.relay = 'kafka'
  AND (events.transaction_id, events.position) > (c.transaction_id, c.position)
"""


@dataclass(kw_only=True)
class FaultTimeline:
    """What a fault scenario did and when. A wait that times out, or a process that died on
    its own, fails with the whole story: the timeline and every process's state and log.
    A scenario subclasses it with its `run`; `play_under_load` runs it."""

    fleet: Fleet
    load: asyncio.Task[None]
    db: psycopg.AsyncConnection[Any]  # autocommit, to the fleet's database
    step_seconds: float = 30.0
    started: float = field(default_factory=time.monotonic)
    timeline: list[str] = field(default_factory=list)

    def note(self, text: str) -> None:
        self.timeline.append(f"{time.monotonic() - self.started:6.1f}s {text}")

    def report(self) -> str:
        lines = ["timeline:", *self.timeline]
        for process in self.fleet.started:
            state = "running" if process.running else f"exit {process.exit_code}"
            lines.append(f"{process.name} pid {process.pid}: {state}, log {process.log}")
        for process in self.fleet.crashed():
            lines.append(f"--- {process.name} died on its own; its log ends:")
            lines.append(process.log_tail())
        return "\n".join(lines)

    async def until(
        self, what: str, check: Callable[[], Awaitable[bool]], within: float | None = None
    ) -> None:
        limit = self.step_seconds if within is None else within
        deadline = time.monotonic() + limit
        while True:
            assert not self.fleet.crashed(), f"a process crashed\n{self.report()}"
            if self.load.done():
                self.load.result()  # the load's own failure, if any, surfaces here
            if await check():
                self.note(what)
                return
            assert time.monotonic() < deadline, f"{what}: not within {limit}s\n{self.report()}"
            await asyncio.sleep(0.1)

    async def kill(self, process: HealthpayProcess) -> None:
        await asyncio.to_thread(process.kill)
        self.note(f"SIGKILLed {process.name} (pid {process.pid})")

    async def run(self) -> None:
        """The scenario's faults, while the load runs."""
        raise NotImplementedError

    async def value(self, query: str) -> int:
        row = await (await self.db.execute(query)).fetchone()
        assert row is not None
        return int(row[0])

    async def relay_published_everything(self, within: float) -> None:
        async def relay_done() -> bool:
            return await self.value(RELAY_BACKLOG) == 0

        await self.until("the relay published every stored event", relay_done, within)

    async def stop_fleet(self) -> None:
        """Stops every process; fails with the story if one had died on its own."""
        await asyncio.to_thread(self.fleet.stop_all)
        assert not self.fleet.crashed(), self.report()
        print("\n" + "\n".join(self.timeline))


S = TypeVar("S", bound=FaultTimeline)


@asynccontextmanager
async def seeded_load(fleet: Fleet, secret: str) -> AsyncIterator[Load]:
    """A command service of the fleet's, the cards and wallets seeded through it, and the paced
    load over them (not started: `play_under_load`), its client open until the block ends."""
    callers = Callers.make(secret)
    commands = await asyncio.to_thread(fleet.command_service)
    acks: list[Ack] = []
    async with httpx.AsyncClient(base_url=commands.url, timeout=30) as client:
        cards, wallets = await seed(client, callers, acks)
        yield Load(client, callers, cards, wallets, acks=acks)


async def play_under_load(load: Load, scenario: Callable[[asyncio.Task[None]], S]) -> S:
    """Starts the paced load, runs the scenario made for it (`scenario(the load's task)`),
    and stops the load however the scenario ended; returns the scenario."""
    running = asyncio.create_task(load.run())
    played = scenario(running)
    try:
        await played.run()
    finally:
        load.stop.set()
        await running
    played.note(f"load stopped after {load.issued} operations")
    return played


@contextmanager
def fleet_of(postgres_url: str, jwt_secret: str) -> Iterator[Fleet]:
    """A Fleet whose processes are all stopped on the way out, whatever happened."""
    processes = Fleet(postgres_url, jwt_secret)
    try:
        yield processes
    finally:
        processes.stop_all()


@contextmanager
def launched_in_background(launch: Callable[[], H], timeout: float) -> Iterator[Future[H]]:
    """Starts a private server (a harness's `launch`) on a thread while the test goes on;
    stops it afterwards if it came up."""
    with ThreadPoolExecutor(1) as pool:
        started = pool.submit(launch)
        try:
            yield started
        finally:
            try:
                harness = started.result(timeout=timeout)
            except Exception:  # the launch itself failed: the test already said so
                pass
            else:
                harness.stop()


def group_members(bootstrap: str, group: str) -> tuple[ConsumerGroupState, list[list[int]]]:
    """The consumer group's state and the partitions each of its members holds; UNKNOWN
    while the broker cannot say (coordinator loading or moving, group not there yet)."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    future = admin.describe_consumer_groups([group], request_timeout=10)[group]
    try:
        description = future.result(timeout=15)
    except KafkaException:
        return ConsumerGroupState.UNKNOWN, []
    members = [
        sorted(tp.partition for tp in member.assignment.topic_partitions)
        for member in description.members
    ]
    return ConsumerGroupState(description.state), members


def end_offsets(bootstrap: str, topic: str, partitions: int) -> dict[int, int]:
    """The high watermark of every partition: the offset the next message will get."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"probe-{uuid.uuid4()}"})
    try:
        return {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
            for p in range(partitions)
        }
    finally:
        consumer.close()


def committed_offsets(bootstrap: str, group: str, topic: str, partitions: int) -> dict[int, int]:
    """The offset `group` committed on each partition (0 where none), asked without joining
    the group."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        offsets = consumer.committed([TopicPartition(topic, p) for p in range(partitions)], 30)
    finally:
        consumer.close()
    return {tp.partition: max(tp.offset, 0) for tp in offsets}


def read_topic(
    bootstrap: str, topic: str, partitions: int, timeout: float = 30.0
) -> tuple[dict[int, int], list[tuple[int, int, bytes]]]:
    """Every message on the topic, from the beginning up to the end offsets seen first, as
    (partition, offset, value), read by a consumer of a fresh group of its own (assigned,
    not subscribed: no rebalance to wait for, nothing committed)."""
    ends = end_offsets(bootstrap, topic, partitions)
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"verify-{uuid.uuid4()}",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
        }
    )
    messages: list[tuple[int, int, bytes]] = []
    next_offset = dict.fromkeys(ends, 0)
    try:
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in ends if ends[p]])
        deadline = time.monotonic() + timeout
        while any(next_offset[p] < ends[p] for p in ends):
            if time.monotonic() > deadline:
                raise TimeoutError(f"read {next_offset} of {ends} in {timeout}s")
            for message in consumer.consume(1000, 0.5):
                error = message.error()
                if error is not None:
                    if error.fatal():
                        raise KafkaException(error)
                    continue
                partition, offset = message.partition(), message.offset()
                if partition is None or offset is None or offset >= ends[partition]:
                    continue
                messages.append((partition, offset, message.value() or b""))
                next_offset[partition] = offset + 1
    finally:
        consumer.close()
    return ends, messages
