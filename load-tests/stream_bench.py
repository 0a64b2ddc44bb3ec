"""`make bench-stream`: the relay's and the projector's events/s on a backlog of events.

Starts its own PostgreSQL (scripts/pg.sh, fsync on) and its own single-node Kafka
(scripts/kafka.sh, topic `healthpay.events.wallet` with 6 partitions), each in a temp dir on
free ports, unless BENCH_POSTGRES_URL / BENCH_KAFKA_BROKERS name running ones (then it works
in a scratch database and a scratch topic of its own, dropped afterwards). Whatever happens,
it stops what it started (`pg.sh stop`, `kafka.sh stop`: both stop by the PID they recorded).

1. Seeds a backlog without HTTP: --cards cards with their wallets, then --events events of
   claims (approved, partially approved, rejected), reversals, wallet top-ups, purchases and
   copayments paid from the wallet, and a few suspensions, all decided by the real domain
   deciders (domain.medcard.*, domain.wallet.model) and appended through
   PostgresEventStore.append_batch, as the command service would.
2. Times, each on its own and in this order, from a CHECKPOINT:
   a. relay: Relay.step with the real KafkaPublisher from checkpoint 0 until caught up;
   b. projector: a real ProjectionWorker (consumer group, read models, offsets in
      PostgreSQL) from offset 0 until its stored offsets reach the end of the topic;
   c. rebuild (unless --no-rebuild): projection_service.rebuild.rebuild as a dry run,
      replaying the event store into shadow tables and comparing them with the live ones;
   d. balances (unless --no-balances): the CQL balance projector (`healthpay
      project-balances`: BalanceConsumer + BalanceProjector, its own consumer group) from
      offset 0 until it committed the topic's end, into a Cassandra 5 node of its own
      (scripts/cassandra.sh, started only now so it takes no CPU from the other phases; its
      cold start and, after the phase, a drained stop and warm restart on the same data are
      timed) or into BENCH_SCYLLA_HOSTS (a scratch keyspace, dropped afterwards). Reports
      events/s and CQL writes/s (statements sent: balance upserts + history entries).
   CPU seconds of this process, of PostgreSQL and of the Kafka broker per phase come from
   /proc (the last two only for servers this bench started).
3. Verifies: topic messages == events in the store, stored offsets == topic end, and the
   read models against what the seeder decided (claims, items, month spend, balances,
   postings, streams); the rebuild must find shadow and live tables identical; the CQL
   balances must equal the event store (`balances verify`), also after the warm restart.

Exit status: 0 all checks passed, 1 a check failed, 2 the bench could not be set up or a
phase did not finish within --timeout, 130 on Ctrl-C.

    .venv/bin/python load-tests/stream_bench.py            # 100k events (~2 min on 2 cores)
    .venv/bin/python load-tests/stream_bench.py --quick    # 10k events
    .venv/bin/python load-tests/stream_bench.py --events 300000 --relay-batch 2000
    BENCH_SCYLLA_HOSTS=127.0.0.1:9042 .venv/bin/python load-tests/stream_bench.py --no-rebuild
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import random
import re
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Coroutine, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, LiteralString
from uuid import UUID

from bench_common import ROOT

if str(ROOT) not in sys.path:  # run as a script: the project's packages live at the root
    sys.path.insert(0, str(ROOT))

import psycopg
from bench_common import (
    BenchError,
    count_events,
    free_port,
    machine,
    run_checked,
    run_main,
)
from confluent_kafka import (
    Consumer,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)
from confluent_kafka import libversion as rdkafka_version
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic  # what .admin re-exports untyped
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from cli.balances import find_differences
from command_service.ids import new_id
from command_service.relay.publisher import KafkaPublisher, PublishFailed
from command_service.relay.relay import Relay
from command_service.relay.tail import load_checkpoint
from domain.calendar import cairo_date
from domain.events import DomainEvent
from domain.identity import GOVERNORATES, new_card_number
from domain.medcard.claims import adjudicate, reverse_claim
from domain.medcard.commands import (
    AddBeneficiary,
    ClaimItem,
    ClaimPrescription,
    IssueCard,
    MedCardCommand,
    PersonDetails,
    ReactivateCard,
    RenewCard,
    ReverseClaim,
    SuspendCard,
)
from domain.medcard.decider import decide as decide_card
from domain.medcard.state import ClaimRecord, Looked, MedCardState
from domain.medcard.state import evolve as evolve_card
from domain.wallet import model as wallet_model
from domain.wallet.model import WalletState, wallet_id_for
from infrastructure.cassandra.migrations import migrate as migrate_cql
from infrastructure.cassandra.session import CqlConfig, connect, parse_hosts
from infrastructure.eventstore.log_reads import LOG_START, LogKey
from infrastructure.eventstore.port import (
    AppendRequest,
    Committed,
    NewEvent,
    RecordedEvent,
    StreamAppend,
)
from infrastructure.eventstore.postgres import PostgresEventStore
from infrastructure.eventstore.rows import StoredEvent
from infrastructure.postgres.migrations import migrate_sync
from infrastructure.postgres.pool import open_pool
from infrastructure.settings import Settings
from projection_service.balances.consumer import (
    DEFAULT_GROUP as BALANCE_GROUP,
)
from projection_service.balances.consumer import BalanceConsumer
from projection_service.balances.projector import BalanceProjector
from projection_service.rebuild import RebuildProgress, RebuildReport, rebuild
from projection_service.worker import ProjectionWorker

PG_SH = ROOT / "scripts" / "pg.sh"
KAFKA_SH = ROOT / "scripts" / "kafka.sh"
CASSANDRA_SH = ROOT / "scripts" / "cassandra.sh"
BALANCE_KEYSPACE = "healthpay_balances"
TOPIC = "healthpay.events.wallet"
WARMUP_TOPIC = "healthpay.bench.warmup"  # own broker only
PARTITIONS = 6
PROJECTION = "read_models"  # ProjectionWorker's default projection name
PROJECTOR_PHASE = "projector: Kafka -> read models"
REBUILD_PHASE = "rebuild: store -> shadow tables"


# --------------------------------------------------------------------------- configuration


@dataclass(frozen=True)
class Config:
    events: int
    cards: int
    append_batch: int
    relay_batch: int
    worker_batch: int
    rebuild_chunk: int
    rebuild: bool
    balances: bool
    balance_batch: int
    seed: int
    timeout: float
    postgres_url: str | None
    kafka_brokers: str | None
    scylla_hosts: str | None
    json_out: Path | None
    keep_temp: bool


def parse_args(argv: Sequence[str] | None = None) -> Config:
    p = argparse.ArgumentParser(
        description="Relay and projector throughput on a backlog (see docs/benchmarks.md).",
        epilog="Environment: BENCH_POSTGRES_URL uses that server (a scratch database is "
        "created on it), BENCH_KAFKA_BROKERS those brokers (a scratch topic is created), "
        "BENCH_SCYLLA_HOSTS that CQL cluster (a scratch keyspace is created; SCYLLA_DC names "
        "its local data centre, default: the first host's).",
    )
    p.add_argument("--quick", action="store_true", help="10k events instead of 100k")
    p.add_argument("--events", type=int, default=None, help="events after the setup (100000)")
    p.add_argument("--cards", type=int, default=1000, help="cards, each with a wallet (1000)")
    p.add_argument(
        "--append-batch", type=int, default=200, help="commands per append_batch call (200)"
    )
    p.add_argument(
        "--relay-batch", type=int, default=Relay.batch_size, help="Relay.batch_size (its default)"
    )
    p.add_argument(
        "--worker-batch",
        type=int,
        default=ProjectionWorker.batch_size,
        help="ProjectionWorker.batch_size (its default)",
    )
    p.add_argument("--rebuild-chunk", type=int, default=5000, help="rebuild chunk size (5000)")
    p.add_argument("--no-rebuild", action="store_true", help="skip the rebuild phase")
    p.add_argument(
        "--no-balances", action="store_true", help="skip the CQL balance phase (no Cassandra)"
    )
    p.add_argument(
        "--balance-batch",
        type=int,
        default=BalanceConsumer.batch_size,
        help="BalanceConsumer.batch_size (its default)",
    )
    p.add_argument("--seed", type=int, default=20261122, help="random seed of the backlog")
    p.add_argument("--timeout", type=float, default=900, help="seconds allowed per phase (900)")
    p.add_argument("--json", type=Path, default=None, help="also write the results as JSON")
    p.add_argument("--keep-temp", action="store_true", help="keep the temp dir (logs, data)")
    a = p.parse_args(argv)
    events = a.events if a.events is not None else (10_000 if a.quick else 100_000)
    batches = (a.append_batch, a.relay_batch, a.worker_batch, a.balance_batch)
    if events < 1 or a.cards < 1 or min(batches) < 1:
        p.error("--events, --cards and the batch sizes must be positive")
    return Config(
        events=events,
        cards=a.cards,
        append_batch=a.append_batch,
        relay_batch=a.relay_batch,
        worker_batch=a.worker_batch,
        rebuild_chunk=a.rebuild_chunk,
        rebuild=not a.no_rebuild,
        balances=not a.no_balances,
        balance_batch=a.balance_batch,
        seed=a.seed,
        timeout=a.timeout,
        postgres_url=os.environ.get("BENCH_POSTGRES_URL") or None,
        kafka_brokers=os.environ.get("BENCH_KAFKA_BROKERS") or None,
        scylla_hosts=os.environ.get("BENCH_SCYLLA_HOSTS") or None,
        json_out=a.json,
        keep_temp=a.keep_temp,
    )


# --------------------------------------------------------------------------- servers


class Cleanup:
    """Undo actions, run in reverse order; one failing does not stop the others."""

    def __init__(self) -> None:
        self._undo: list[tuple[str, Callable[[], None]]] = []

    def add(self, name: str, action: Callable[[], None]) -> None:
        self._undo.append((name, action))

    def close(self) -> None:
        while self._undo:
            name, action = self._undo.pop()
            try:
                action()
            except Exception as exc:
                print(f"warning: {name} failed: {exc}", file=sys.stderr)


@dataclass
class Servers:
    postgres_url: str
    brokers: str
    topic: str
    group: str
    postmaster: int | None  # PIDs of servers this bench started (for CPU accounting)
    broker_pid: int | None
    facts: dict[str, str] = field(default_factory=dict)


def start_postgres(cleanup: Cleanup, tmp: Path) -> tuple[str, int | None]:
    data, port = tmp / "pg", free_port()
    env = {**os.environ, "PG_FSYNC": "on"}  # a ledger bench without fsync measures nothing
    cleanup.add("stopping PostgreSQL", lambda: _quiet(run_checked(["bash", PG_SH, "stop", data])))
    out = run_checked(["bash", PG_SH, "start", data, str(port)], env=env)
    lines = [ln for ln in out.splitlines() if ln.startswith("postgresql://")]
    url = lines[-1] if lines else f"postgresql://healthpay@127.0.0.1:{port}/healthpay_ledger"
    try:
        pid = int((data / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        pid = None
    return url, pid


def scratch_database(cleanup: Cleanup, url: str, run_id: str) -> str:
    """A fresh database on BENCH_POSTGRES_URL's server: the relay starts at checkpoint 0 and
    the read models must start empty, so an existing database will not do."""
    name = f"healthpay_stream_bench_{run_id}"
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.Error as exc:
        raise BenchError(f"cannot create a scratch database on BENCH_POSTGRES_URL: {exc}") from exc

    def drop() -> None:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    cleanup.add(f"dropping database {name}", drop)
    params = conninfo_to_dict(url)
    params["dbname"] = name
    return make_conninfo("", **params)


def start_kafka(cleanup: Cleanup, tmp: Path) -> tuple[str, int | None]:
    data = tmp / "kafka"
    data.mkdir()
    cleanup.add("stopping Kafka", lambda: _quiet(run_checked(["bash", KAFKA_SH, "stop", data])))
    out = run_checked(
        ["bash", KAFKA_SH, "start", data, str(free_port()), str(free_port())], timeout=300
    )
    bootstrap = out.strip().splitlines()[-1].strip()
    run_checked(["bash", KAFKA_SH, "topic", data, TOPIC, str(PARTITIONS)])
    run_checked(["bash", KAFKA_SH, "topic", data, WARMUP_TOPIC, "1"])
    try:
        pid = int((data / "kafka.pid").read_text().strip())
    except (OSError, ValueError):
        pid = None
    return bootstrap, pid


def scratch_topic(cleanup: Cleanup, brokers: str, run_id: str) -> str:
    name = f"{TOPIC}.bench-{run_id}"
    admin = AdminClient({"bootstrap.servers": brokers})
    admin.create_topics([NewTopic(name, PARTITIONS, 1)])[name].result(timeout=60)

    def delete() -> None:
        admin.delete_topics([name])[name].result(timeout=60)

    cleanup.add(f"deleting topic {name}", delete)
    return name


def wait_for_leaders(brokers: str, topic: str, timeout: float = 60) -> None:
    """Until every partition has a leader: the relay's first send must not race creation."""
    admin = AdminClient({"bootstrap.servers": brokers})
    deadline = time.monotonic() + timeout
    while True:
        meta = admin.list_topics(topic, timeout=10).topics.get(topic)
        if (
            meta is not None
            and meta.error is None
            and len(meta.partitions) == PARTITIONS
            and all(p.leader >= 0 for p in meta.partitions.values())
        ):
            return
        if time.monotonic() > deadline:
            raise BenchError(f"topic {topic} has no leader for every partition")
        time.sleep(0.1)


def warm_up(brokers: str) -> None:
    """One idempotent send on a fresh broker: the first producer otherwise waits seconds for
    the broker's coordinator to load ("Coordinator load in progress"), a start-up cost that
    does not belong in the relay's figure."""
    # log_level 3: librdkafka's warning about that wait is expected here
    producer = Producer({"bootstrap.servers": brokers, "enable.idempotence": True, "log_level": 3})
    producer.produce(WARMUP_TOPIC, b"warm-up")
    if producer.flush(60):
        raise BenchError("the broker did not take a warm-up message within 60 s")


def _quiet(_: str) -> None:
    pass


def start_servers(cfg: Config, cleanup: Cleanup, tmp: Path, run_id: str) -> Servers:
    if cfg.postgres_url:
        url, postmaster = scratch_database(cleanup, cfg.postgres_url, run_id), None
    else:
        url, postmaster = start_postgres(cleanup, tmp)
    migrate_sync(url)
    if cfg.kafka_brokers:
        brokers, broker_pid = cfg.kafka_brokers, None
        topic = scratch_topic(cleanup, brokers, run_id)
        group = f"healthpay-projections-bench-{run_id}"  # never join a real group
    else:
        brokers, broker_pid = start_kafka(cleanup, tmp)
        topic, group = TOPIC, ProjectionWorker.group
    wait_for_leaders(brokers, topic)
    if not cfg.kafka_brokers:
        warm_up(brokers)
    servers = Servers(url, brokers, topic, group, postmaster, broker_pid)
    with psycopg.connect(url, autocommit=True) as conn:
        for name in ("server_version", "fsync", "synchronous_commit", "shared_buffers"):
            row = conn.execute(f"SHOW {name}").fetchone()
            servers.facts[name] = str(row[0]) if row else "?"
    return servers


def checkpoint_and_analyze(url: str) -> None:
    """Each phase starts with fresh statistics and a clean checkpoint (less noise)."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE)")
        with suppress(psycopg.Error):  # needs superuser or pg_checkpoint
            conn.execute("CHECKPOINT")


def checkpoint_and_analyze_store(url: str) -> None:
    """Before the projector: `checkpoint_and_analyze` for the event store only. Statistics
    that say the (still empty) read models are empty make every worker connection plan its
    foreign-key checks as sequential scans, and keep those plans while the tables grow: the
    PostgreSQL figure then measured the bench's ANALYZE, not the projector (a deployed
    worker starts on tables that were never analyzed empty; autovacuum analyzes them as
    they grow)."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE) events")
        with suppress(psycopg.Error):
            conn.execute("CHECKPOINT")


@dataclass(frozen=True)
class DbActivity:
    """pg_stat_database's counters of the bench's database: transactions and rows written
    (inserted + updated + deleted), so a phase can say what it cost per event."""

    commits: int
    row_writes: int

    @staticmethod
    def read(url: str) -> DbActivity:
        with psycopg.connect(url, autocommit=True) as conn:
            time.sleep(0.6)  # backends flush their counters at most once a second when idle
            conn.execute("SELECT pg_stat_clear_snapshot()")
            row = conn.execute(
                "SELECT xact_commit, tup_inserted + tup_updated + tup_deleted"
                " FROM pg_stat_database WHERE datname = current_database()"
            ).fetchone()
        return DbActivity(int(row[0]), int(row[1])) if row else DbActivity(0, 0)

    def per_event(self, later: DbActivity, events: int) -> dict[str, Any]:
        writes, commits = later.row_writes - self.row_writes, later.commits - self.commits
        return {
            "transactions": commits,
            "row_writes_per_event": round(writes / events, 2) if events else None,
        }


# --------------------------------------------------------------------------- CPU accounting


def _proc_cpu(pid: int, tick: int) -> tuple[int, float] | None:
    """(parent PID, user + system CPU seconds) of a process, from /proc/<pid>/stat."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    f = stat[stat.rindex(")") + 2 :].split()  # fields 3.. of proc(5)
    return int(f[1]), (int(f[11]) + int(f[12])) / tick


@dataclass(frozen=True)
class CpuSample:
    at: float  # time.monotonic()
    bench: float  # this process, all its threads (librdkafka's included)
    postgres: dict[int, float]  # per PID: the postmaster and its children
    kafka: float | None
    machine: float  # busy CPU seconds of the whole machine (all cores, everyone's work)


def machine_busy(tick: int) -> float:
    """Busy CPU seconds of the machine since boot (/proc/stat: all but idle and iowait)."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return 0.0
    # user nice system idle iowait irq softirq steal (guest time is already in user)
    return (sum(fields[:8]) - fields[3] - fields[4]) / tick


class CpuMeter:
    def __init__(self, postmaster: int | None, broker: int | None) -> None:
        self.postmaster = postmaster
        self.broker = broker
        self.tick = os.sysconf("SC_CLK_TCK")

    def sample(self) -> CpuSample:
        pg: dict[int, float] = {}
        if self.postmaster is not None:
            for entry in Path("/proc").iterdir():
                if not entry.name.isdigit():
                    continue
                got = _proc_cpu(int(entry.name), self.tick)
                if got and self.postmaster in (int(entry.name), got[0]):
                    pg[int(entry.name)] = got[1]
        kafka = None
        if self.broker is not None and (got := _proc_cpu(self.broker, self.tick)):
            kafka = got[1]
        return CpuSample(time.monotonic(), time.process_time(), pg, kafka, machine_busy(self.tick))


@dataclass
class Phase:
    name: str
    events: int
    seconds: float
    batch: str  # the batch size the phase used, as text
    bench_cpu: float
    postgres_cpu: float | None
    kafka_cpu: float | None
    other_cpu: float  # the machine's busy CPU not spent by the bench, its PG or its Kafka
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0


def phase(
    name: str,
    events: int,
    batch: str,
    before: CpuSample,
    after: CpuSample,
    meter: CpuMeter,
) -> Phase:
    pg = None
    if meter.postmaster is not None:
        # processes gone in between lost their CPU with them; new ones count from zero
        pg = sum(v - before.postgres.get(pid, 0.0) for pid, v in after.postgres.items())
    kafka = None
    if before.kafka is not None and after.kafka is not None:
        kafka = after.kafka - before.kafka
    bench = after.bench - before.bench
    ours = bench + (pg or 0.0) + (kafka or 0.0)
    return Phase(
        name=name,
        events=events,
        seconds=after.at - before.at,
        batch=batch,
        bench_cpu=bench,
        postgres_cpu=pg,
        kafka_cpu=kafka,
        other_cpu=max(0.0, after.machine - before.machine - ours),
    )


# --------------------------------------------------------------------------- the backlog

CARD_TYPES = ("silver", "gold", "platinum")
CARD_TYPE_WEIGHTS = (4, 4, 2)
PROVIDERS = ("misr-insurance", "axa-egypt", "allianz-egypt", None)
RELATIONSHIPS = ("spouse", "child", "parent")
PHARMACIES = tuple(f"ph-{i:03d}" for i in range(60))
DRUGS = (
    ("PAN500", "Panadol 500 mg", Decimal("45.00")),
    ("AUG1G", "Augmentin 1 g", Decimal("118.50")),
    ("CONC5", "Concor 5 mg", Decimal("86.00")),
    ("GLUC850", "Glucophage 850 mg", Decimal("39.75")),
    ("NEXI40", "Nexium 40 mg", Decimal("212.00")),
    ("VENT", "Ventolin inhaler", Decimal("64.25")),
    ("LIPI20", "Lipitor 20 mg", Decimal("171.00")),
    ("BRUF400", "Brufen 400 mg", Decimal("28.50")),
)
GOVERNORATE_CODES = tuple(sorted(GOVERNORATES))
CLAIMS_PER_CARD_MONTH = 15  # sets how fast the simulated clock runs
# A fixed start: the same --seed gives the same backlog (decisions depend on the months);
# only the event ids (UUIDv7 from the real clock) differ between runs.
CLOCK_START = datetime(2026, 1, 1, 6, 0, tzinfo=dt.UTC)
# Shares of the commands after the setup (the rest are suspensions and reactivations).
P_CLAIM, P_REVERSAL, P_TOPUP, P_PURCHASE = 0.76, 0.06, 0.13, 0.04
P_FROM_WALLET, P_ITEMS, P_DEPENDANT = 0.35, 0.5, 0.2
COPAY_PER_CLAIM, COPAY_PER_MONTH = Decimal("300.00"), Decimal("1500.00")  # the wallets' consent


@dataclass
class Tally:
    """What the seeder decided: what the read models must show afterwards."""

    events: Counter[str] = field(default_factory=Counter)  # by event type
    decisions: Counter[str] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)
    items: int = 0
    posting_legs: int = 0
    beneficiaries: int = 0
    setup_events: int = 0
    requests: int = 0
    two_stream_requests: int = 0


class Seeder:
    """Decides commands with the real domain code on in-memory states and appends the events
    through PostgresEventStore.append_batch, `append_batch` commands per call (one
    transaction each; one card may appear in several commands of a call: the store chains
    them, as group commit does)."""

    def __init__(self, cfg: Config, store: PostgresEventStore, start: datetime) -> None:
        self.cfg = cfg
        self.store = store
        self.rng = random.Random(cfg.seed)
        self.start = self.clock = start
        self.step = clock_step(cfg)
        self.cards: dict[UUID, MedCardState] = {}
        self.card_ids: list[UUID] = []
        self.wallets: dict[UUID, WalletState] = {}
        self.wallet_ids: list[UUID] = []
        self.versions: dict[UUID, int] = {}
        self.reversible: list[tuple[UUID, ClaimRecord]] = []  # (card, claim)
        self.suspended: list[UUID] = []
        self.pending: list[AppendRequest] = []
        self.tally = Tally()
        self.seq = 0
        self.append_seconds = 0.0
        self.append_calls = 0
        self.inflight: asyncio.Task[None] | None = None

    @property
    def total_events(self) -> int:
        return sum(self.tally.events.values())

    async def run(self) -> None:
        try:
            for i in range(self.cfg.cards):
                self._issue(i)
                await self._maybe_flush()
            await self._flush(wait=True)
            self.tally.setup_events = self.total_events
            while self.total_events - self.tally.setup_events < self.cfg.events:
                self.clock += self.step
                self.seq += 1
                self._one_command()
                await self._maybe_flush()
            await self._flush(wait=True)
        finally:
            if self.inflight is not None:  # an error while a batch was out: let it end
                with suppress(Exception):
                    await self.inflight

    # ---- commands

    def _issue(self, i: int) -> None:
        rng, at = self.rng, self.clock + timedelta(seconds=i)
        card_id = new_id()
        user_id = f"member-{self.cfg.seed}-{i:06d}"
        command = IssueCard(
            card_id=card_id,
            card_number=new_card_number(rng),
            user_id=user_id,
            card_type=rng.choices(CARD_TYPES, CARD_TYPE_WEIGHTS)[0],
            at=at,
            may_override_terms=False,
            insurance_provider=rng.choice(PROVIDERS),
            policy_number=f"POL-{rng.randrange(10**8):08d}",
        )
        admin = {"role": "admin", "sub": "bench-admin"}
        self._card(card_id, command, admin, at)
        for _ in range(rng.randint(1, 2) if rng.random() < P_DEPENDANT else 0):
            self._card(card_id, AddBeneficiary(new_id(), self._person(at), at), admin, at)
        wallet_id = wallet_id_for(user_id)
        member = {"role": "member", "sub": user_id}
        opened = wallet_model.decide(None, wallet_model.OpenWallet(wallet_id, user_id, at))
        self._emit([("wallet", wallet_id, opened.events)], at, member)
        # members consent to copayments from the wallet (claims over it are declined)
        consent = wallet_model.SetCopayConsent(COPAY_PER_CLAIM, COPAY_PER_MONTH, at)
        consented = wallet_model.decide(self.wallets[wallet_id], consent)
        self._emit([("wallet", wallet_id, consented.events)], at, member)
        self._top_up(wallet_id, at, member)

    def _person(self, at: datetime) -> PersonDetails:
        rng = self.rng
        born = dt.date(rng.randint(1950, 2015), rng.randint(1, 12), rng.randint(1, 28))
        century = "2" if born.year < 2000 else "3"
        national_id = (
            f"{century}{born:%y%m%d}{rng.choice(GOVERNORATE_CODES)}{rng.randrange(10**5):05d}"
        )
        return PersonDetails(
            relationship=rng.choice(RELATIONSHIPS),
            national_id=national_id,
            name=f"Bench Member {rng.randrange(10**6)}",
            date_of_birth=born,
            phone_number=f"01{rng.choice('0125')}{rng.randrange(10**8):08d}",
        )

    def _one_command(self) -> None:
        r, at = self.rng.random(), self.clock
        if r < P_CLAIM:
            self._claim(at)
        elif r < P_CLAIM + P_REVERSAL:
            if self.reversible:
                self._reverse(at)
            else:
                self._claim(at)
        elif r < P_CLAIM + P_REVERSAL + P_TOPUP:
            wallet_id = self.rng.choice(self.wallet_ids)
            self._top_up(
                wallet_id, at, {"role": "member", "sub": self.wallets[wallet_id].owner_user_id}
            )
        elif r < P_CLAIM + P_REVERSAL + P_TOPUP + P_PURCHASE:
            self._purchase(at)
        else:
            self._suspend_or_reactivate(at)

    def _claim(self, at: datetime) -> None:
        rng = self.rng
        card_id = rng.choice(self.card_ids)
        card = self.cards[card_id]
        pharmacy = rng.choice(PHARMACIES)
        actor = {"role": "pharmacy", "sub": pharmacy, "pharmacy_id": pharmacy}
        self._renew_if_due(card_id, at)
        items: tuple[ClaimItem, ...] = ()
        if rng.random() < P_ITEMS:
            items = tuple(
                ClaimItem(new_id(), code, name, rng.randint(1, 3), price)
                for code, name, price in rng.sample(DRUGS, rng.randint(1, 3))
            )
            total = sum((i.quantity * i.unit_price for i in items), Decimal("0.00"))
        else:
            total = Decimal(rng.randint(1000, 40000)) / 100
        beneficiary = None
        if rng.random() < 0.2:
            beneficiary = rng.choice(list(card.beneficiaries))
        command = ClaimPrescription(
            claim_id=new_id(),
            prescription_id=f"rx-{self.cfg.seed}-{self.seq}",
            pharmacy_id=pharmacy,
            total_amount=total,
            at=at,
            beneficiary_id=beneficiary,
            items=items,
            pay_copayment_from_wallet=rng.random() < P_FROM_WALLET,
        )
        wallet_id = wallet_id_for(card.user_id, card.currency)
        wallet = self.wallets.get(wallet_id) if command.pay_copayment_from_wallet else None
        # Every prescription id is new: no standing charge, whatever the card's window holds.
        decision = adjudicate(card, wallet, command, Looked(None))
        claim = decision.claim
        self.tally.decisions[claim.decision] += 1
        self.tally.reasons.update(claim.reasons)
        self.tally.items += len(claim.items)
        if claim.decision != "rejected":
            self.reversible.append((card_id, ClaimRecord.of(claim)))
        self._emit(
            [
                ("medcard", card_id, decision.card_events),
                ("wallet", wallet_id, decision.wallet_events),
            ],
            at,
            actor,
        )

    def _reverse(self, at: datetime) -> None:
        index = self.rng.randrange(len(self.reversible))
        self.reversible[index], self.reversible[-1] = self.reversible[-1], self.reversible[index]
        card_id, claim = self.reversible.pop()
        card = self.cards[card_id]
        wallet = self.wallets.get(claim.wallet_id) if claim.wallet_id else None
        command = ReverseClaim(claim.claim_id, at, "dispensing cancelled")
        # The seeder's own record: the card's state may have dropped the claim from its window.
        decision = reverse_claim(card, wallet, command, Looked(claim))
        actor = {"role": "pharmacy", "sub": claim.pharmacy_id, "pharmacy_id": claim.pharmacy_id}
        streams = [("medcard", card_id, decision.card_events)]
        if claim.wallet_id is not None:
            streams.append(("wallet", claim.wallet_id, decision.wallet_events))
        self._emit(streams, at, actor)

    def _top_up(self, wallet_id: UUID, at: datetime, actor: dict[str, str]) -> None:
        command = wallet_model.TopUp(
            topup_id=new_id(),
            gateway=self.rng.choice(("fawry", "paymob")),
            gateway_reference=f"gw-{self.cfg.seed}-{self.seq}-{wallet_id.hex[:8]}",
            amount=Decimal(self.rng.randint(100, 2000)),
            at=at,
        )
        decision = wallet_model.decide(self.wallets[wallet_id], command)
        self._emit([("wallet", wallet_id, decision.events)], at, actor)

    def _purchase(self, at: datetime) -> None:
        wallet_id = self.rng.choice(self.wallet_ids)
        wallet = self.wallets[wallet_id]
        amount = min(wallet.balance, Decimal(self.rng.randint(500, 30000)) / 100)
        if amount <= 0:
            return
        command = wallet_model.Debit(new_id(), amount, "purchase", f"order-{self.seq}", at)
        decision = wallet_model.decide(wallet, command)
        self._emit(
            [("wallet", wallet_id, decision.events)],
            at,
            {"role": "member", "sub": wallet.owner_user_id},
        )

    def _suspend_or_reactivate(self, at: datetime) -> None:
        ops = {"role": "ops", "sub": "bench-ops"}
        if self.suspended and self.rng.random() < 0.5:
            card_id = self.suspended.pop()
            self._renew_if_due(card_id, at)
            self._card(card_id, ReactivateCard(at=at), ops, at)
            return
        card_id = self.rng.choice(self.card_ids)
        if self.cards[card_id].status == "ACTIVE":
            self._card(card_id, SuspendCard(at=at, reason="member request"), ops, at)
            self.suspended.append(card_id)

    def _renew_if_due(self, card_id: UUID, at: datetime) -> None:
        """Members renew a month ahead (only matters for backlogs spanning a year)."""
        if (self.cards[card_id].expiry_date - cairo_date(at)).days < 30:
            self._card(card_id, RenewCard(at=at), {"role": "ops", "sub": "bench-ops"}, at)

    def _card(
        self, card_id: UUID, command: MedCardCommand, actor: dict[str, str], at: datetime
    ) -> None:
        events = decide_card(self.cards.get(card_id), command)
        self._emit([("medcard", card_id, events)], at, actor)

    # ---- events

    def _emit(
        self,
        writes: Sequence[tuple[str, UUID, Sequence[DomainEvent]]],
        at: datetime,
        actor: dict[str, str],
    ) -> None:
        metadata = {"correlation_id": str(new_id()), "actor": actor}
        streams: list[StreamAppend] = []
        for kind, aggregate_id, events in writes:
            if not events:
                continue
            version = self.versions.get(aggregate_id, 0)
            streams.append(
                StreamAppend(
                    aggregate_id,
                    kind,
                    version,
                    [
                        NewEvent(
                            new_id(), e.event_type, e.schema_version, e.payload(), at, metadata
                        )
                        for e in events
                    ],
                )
            )
            self.versions[aggregate_id] = version + len(events)
            for event in events:
                self._fold(kind, aggregate_id, event)
        if streams:
            self.pending.append(AppendRequest(streams))
            self.tally.requests += 1
            self.tally.two_stream_requests += len(streams) > 1

    def _fold(self, kind: str, aggregate_id: UUID, event: DomainEvent) -> None:
        self.tally.events[event.event_type] += 1
        postings = getattr(event, "postings", ())
        self.tally.posting_legs += len(postings)
        if kind == "medcard":
            if aggregate_id not in self.cards:
                self.card_ids.append(aggregate_id)
            before = (
                len(self.cards[aggregate_id].beneficiaries) if aggregate_id in self.cards else 0
            )
            state = evolve_card(self.cards.get(aggregate_id), event)
            self.cards[aggregate_id] = state
            self.tally.beneficiaries += max(0, len(state.beneficiaries) - before)
        else:
            if aggregate_id not in self.wallets:
                self.wallet_ids.append(aggregate_id)
            self.wallets[aggregate_id] = wallet_model.evolve(self.wallets.get(aggregate_id), event)

    async def _maybe_flush(self) -> None:
        if len(self.pending) >= self.cfg.append_batch:
            await self._flush()
        elif len(self.pending) % 16 == 0:
            await asyncio.sleep(0)  # let the batch in flight move on while we decide

    async def _flush(self, wait: bool = False) -> None:
        """Send the pending commands while the next ones are decided. The batch before must
        have committed first: the new one's expected versions build on it."""
        if self.inflight is not None:
            task, self.inflight = self.inflight, None
            await task
        batch, self.pending = self.pending, []
        if batch:
            self.inflight = asyncio.create_task(self._append(batch))
        if wait and self.inflight is not None:
            task, self.inflight = self.inflight, None
            await task

    async def _append(self, batch: list[AppendRequest]) -> None:
        t0 = time.monotonic()
        outcomes = await self.store.append_batch(batch)
        self.append_seconds += time.monotonic() - t0
        self.append_calls += 1
        failed = [o for o in outcomes if not isinstance(o, Committed)]
        if failed:
            raise BenchError(f"{len(failed)} seeded commands did not commit: {failed[:3]}")

    # ---- what the read models must show

    def expected(self) -> dict[str, Any]:
        t = self.tally
        latest = Decimal("0.00")
        all_months = Decimal("0.00")
        months = 0
        for card in self.cards.values():
            if card.month_spent:
                latest += card.month_spent[max(card.month_spent)]
                all_months += sum(card.month_spent.values(), Decimal("0.00"))
                months += len(card.month_spent)
        claims = t.events["medcard.claim_adjudicated"]
        return {
            "medcards": len(self.cards),
            "beneficiaries": t.beneficiaries,
            "prescription_claims": claims,
            "claims reversed": t.events["medcard.claim_reversed"],
            "claims rejected": t.decisions["rejected"],
            "prescription_items": t.items,
            "sum(medcards.current_month_spent)": latest,
            "medcard_monthly_spend rows": months,
            "sum(medcard_monthly_spend.total_spent)": all_months,
            "wallets": len(self.wallets),
            "sum(wallets.balance)": sum(
                (w.balance for w in self.wallets.values()), Decimal("0.00")
            ),
            "wallet_transactions": t.events["wallet.topped_up"]
            + t.events["wallet.debited"]
            + t.events["wallet.refunded"]
            + t.events["wallet.copay_declined"],
            "ledger_postings": t.posting_legs,
            "sum(ledger_postings.amount)": Decimal("0.00"),
            "projection_streams": len(self.cards) + len(self.wallets),
            "sum(projection_streams.version)": self.total_events,
            "parked_events": 0,
            "projection_held_events": 0,
        }


_ACTUAL: dict[str, LiteralString] = {
    "medcards": "SELECT count(*) FROM medcards",
    "beneficiaries": "SELECT count(*) FROM beneficiaries",
    "prescription_claims": "SELECT count(*) FROM prescription_claims",
    "claims reversed": "SELECT count(*) FROM prescription_claims WHERE status = 'reversed'",
    "claims rejected": "SELECT count(*) FROM prescription_claims WHERE decision = 'rejected'",
    "prescription_items": "SELECT count(*) FROM prescription_items",
    "sum(medcards.current_month_spent)": "SELECT coalesce(sum(current_month_spent), 0) "
    "FROM medcards",
    "medcard_monthly_spend rows": "SELECT count(*) FROM medcard_monthly_spend",
    "sum(medcard_monthly_spend.total_spent)": "SELECT coalesce(sum(total_spent), 0) "
    "FROM medcard_monthly_spend",
    "wallets": "SELECT count(*) FROM wallets",
    "sum(wallets.balance)": "SELECT coalesce(sum(balance), 0) FROM wallets",
    "wallet_transactions": "SELECT count(*) FROM wallet_transactions",
    "ledger_postings": "SELECT count(*) FROM ledger_postings",
    "sum(ledger_postings.amount)": "SELECT coalesce(sum(amount), 0) FROM ledger_postings",
    "projection_streams": "SELECT count(*) FROM projection_streams",
    "sum(projection_streams.version)": "SELECT coalesce(sum(version), 0) FROM projection_streams",
    "parked_events": "SELECT count(*) FROM parked_events",
    "projection_held_events": "SELECT count(*) FROM projection_held_events",
}


def clock_step(cfg: Config) -> timedelta:
    """Simulated time between two commands: each card sees CLAIMS_PER_CARD_MONTH claims a
    month, so monthly limits bite now and then (partial approvals, rejections)."""
    month = timedelta(days=30).total_seconds()
    return timedelta(seconds=month / (cfg.cards * CLAIMS_PER_CARD_MONTH / P_CLAIM))


async def seed(cfg: Config, url: str, meter: CpuMeter) -> tuple[Seeder, Phase]:
    pool = await open_pool(url, 1, 2)
    try:
        seeder = Seeder(cfg, PostgresEventStore(pool), CLOCK_START)
        before = meter.sample()
        await seeder.run()
        after = meter.sample()
    finally:
        await pool.close()
    result = phase(
        "seed: deciders + append_batch",
        seeder.total_events,
        f"{cfg.append_batch} commands",
        before,
        after,
        meter,
    )
    result.details = {
        "append_calls": seeder.append_calls,
        "append_seconds": round(seeder.append_seconds, 2),
        "requests": seeder.tally.requests,
        "two_stream_requests": seeder.tally.two_stream_requests,
        "setup_events": seeder.tally.setup_events,
        "simulated_days": (seeder.clock - seeder.start).days,
    }
    return seeder, result


# --------------------------------------------------------------------------- relay


class TimedPublisher:
    """The real publisher, with the time spent in it and its failures counted."""

    def __init__(self, inner: KafkaPublisher) -> None:
        self.inner = inner
        self.seconds = 0.0
        self.failures = 0

    def publish(self, events: Sequence[StoredEvent]) -> None:
        t0 = time.monotonic()
        try:
            self.inner.publish(events)
        except PublishFailed:
            self.failures += 1
            raise
        finally:
            self.seconds += time.monotonic() - t0

    def close(self) -> None:
        self.inner.close()


def run_relay(cfg: Config, servers: Servers, total: int, meter: CpuMeter) -> Phase:
    publisher = TimedPublisher(KafkaPublisher(servers.brokers, servers.topic))
    relay = Relay(servers.postgres_url, publisher, batch_size=cfg.relay_batch)
    published = steps = 0
    try:
        with psycopg.connect(servers.postgres_url, autocommit=True) as conn:
            checkpoint: LogKey = load_checkpoint(conn, relay.name)
            if checkpoint != LOG_START:
                raise BenchError(f"the relay checkpoint is {checkpoint}, not 0")
            before = meter.sample()
            deadline = before.at + cfg.timeout
            first_step = 0.0
            # What Relay.run does once it holds the lock, minus the idle waits: step until
            # every event went out (a failed publish returns 0 and is retried by the loop).
            while published < total:
                checkpoint, count = relay.step(conn, checkpoint)
                published += count
                steps += 1
                if steps == 1:
                    first_step = time.monotonic() - before.at
                if time.monotonic() > deadline:
                    raise BenchError(f"relay: {published}/{total} events after {cfg.timeout} s")
            after = meter.sample()
            last = relay.step(conn, checkpoint)[1]  # caught up: nothing left
    finally:
        publisher.close()
    result = phase(
        "relay: store -> Kafka", published, f"{cfg.relay_batch} events", before, after, meter
    )
    result.details = {
        "steps": steps,
        "first_step_seconds": round(first_step, 2),  # includes the producer's connect
        "publish_seconds": round(publisher.seconds, 2),
        "read_and_checkpoint_seconds": round(result.seconds - publisher.seconds, 2),
        "publish_failures": publisher.failures,
        "left_after_catch_up": last,
    }
    return result


def topic_ends(servers: Servers) -> dict[int, int]:
    """Per partition, the offset after the last message (the low watermark stays 0)."""
    consumer = Consumer(
        {"bootstrap.servers": servers.brokers, "group.id": f"{servers.group}-probe"}
    )
    try:
        meta = consumer.list_topics(servers.topic, timeout=10).topics[servers.topic]
        ends: dict[int, int] = {}
        for p in sorted(meta.partitions):
            low, high = consumer.get_watermark_offsets(TopicPartition(servers.topic, p), timeout=10)
            if low != 0:
                raise BenchError(f"partition {p} starts at offset {low}, not 0")
            ends[p] = high
        return ends
    finally:
        consumer.close()


# --------------------------------------------------------------------------- projector


@dataclass
class CatchUp:
    """What a measured consumer notes batch by batch: when its batches reach the topic's end
    (`ends`, per partition), the CPU at its first batch and at that end, the batches, messages
    and seconds inside `apply`. `follow` runs the consumer until then."""

    ends: dict[int, int]
    meter: CpuMeter
    reached: dict[int, int] = field(default_factory=dict)
    caught_up: asyncio.Event = field(default_factory=asyncio.Event)
    first_batch: CpuSample | None = None
    done: CpuSample | None = None
    apply_seconds: float = 0.0
    batches: int = 0
    messages: int = 0

    @contextmanager
    def batch(self, messages: Sequence[Message]) -> Iterator[None]:
        """Around one `apply`: a batch that raised is not counted."""
        if self.first_batch is None:
            self.first_batch = self.meter.sample()
        t0 = time.monotonic()
        yield
        self.apply_seconds += time.monotonic() - t0
        self.batches += 1
        self.messages += len(messages)
        for m in messages:
            p, o = m.partition(), m.offset()
            if p is not None and o is not None and o + 1 > self.reached.get(p, 0):
                self.reached[p] = o + 1
        if all(self.reached.get(p, 0) >= end for p, end in self.ends.items()):
            if self.done is None:
                self.done = self.meter.sample()  # backends still alive: their CPU counts
            self.caught_up.set()

    async def follow(
        self,
        run: Callable[[asyncio.Event], Coroutine[Any, Any, None]],
        seconds: float,
        who: str,
        name: str,
    ) -> tuple[CpuSample, CpuSample]:
        """Runs `run(stop)` until the batches reach the end or `seconds` pass, then stops it
        (60 s at most). Returns the CPU samples at the start and at the end; `who` and `name`
        say in the errors what did not stop or not catch up."""
        stop = asyncio.Event()
        before = self.meter.sample()
        task = asyncio.create_task(run(stop))
        waiter = asyncio.create_task(self.caught_up.wait())
        try:
            await asyncio.wait({task, waiter}, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.set()
            waiter.cancel()
            try:
                await asyncio.wait_for(task, 60)
            except TimeoutError as exc:
                raise BenchError(f"{who} did not stop within 60 s") from exc
        if not self.caught_up.is_set() or self.done is None:
            raise BenchError(
                f"{name}: {self.messages}/{sum(self.ends.values())} messages after {seconds} s"
            )
        return before, self.done

    def steady_seconds(self, before: CpuSample, done: CpuSample) -> float:
        """From the first batch (the group joined, partitions assigned) to the end."""
        return done.at - (self.first_batch or before).at

    def details(self, before: CpuSample, done: CpuSample) -> dict[str, Any]:
        steady = self.steady_seconds(before, done)
        return {
            # subscribe, assignment, seek
            "join_seconds": round((self.first_batch or before).at - before.at, 2),
            "events_per_second_after_join": round(self.messages / steady) if steady > 0 else None,
            "batches": self.batches,
            "mean_batch": round(self.messages / max(1, self.batches), 1),
            "apply_seconds": round(self.apply_seconds, 2),
        }


@dataclass
class MeasuredWorker(ProjectionWorker):
    """The real worker; `apply` also notes when the batches reach the topic's end."""

    progress: CatchUp = field(kw_only=True)

    async def apply(self, messages: Sequence[Message]) -> None:
        with self.progress.batch(messages):
            await super().apply(messages)


async def run_projector(
    cfg: Config, servers: Servers, ends: dict[int, int], meter: CpuMeter
) -> Phase:
    pool = await open_pool(servers.postgres_url, 1, 4)  # as projection_service/process.py
    try:
        worker = MeasuredWorker(
            pool,
            servers.postgres_url,
            servers.brokers,
            servers.topic,
            group=servers.group,
            batch_size=cfg.worker_batch,
            progress=CatchUp(ends, meter),
        )
        progress = worker.progress
        before, done = await progress.follow(
            worker.run, cfg.timeout, "the projection worker", "projector"
        )
    finally:
        await pool.close()
    result = phase(
        PROJECTOR_PHASE,
        progress.messages,
        f"{cfg.worker_batch} messages",
        before,
        done,
        meter,
    )
    result.details = progress.details(before, done)  # apply: read models + offsets, in PG
    return result


def stored_offsets(url: str, topic: str) -> dict[int, int]:
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT partition, next_offset FROM projection_offsets "
            "WHERE projection = %s AND topic = %s",
            (PROJECTION, topic),
        ).fetchall()
    return {int(p): int(o) for p, o in rows}


# --------------------------------------------------------------------------- rebuild


async def run_rebuild(cfg: Config, url: str, meter: CpuMeter) -> tuple[Phase, RebuildReport]:
    pool = await open_pool(url, 1, 2)  # as `python -m projection_service.rebuild`
    replayed: list[CpuSample] = []

    def progress(step: RebuildProgress) -> None:
        if step.phase in ("replay", "catch_up"):
            replayed[:] = [meter.sample()]

    try:
        before = meter.sample()
        report = await asyncio.wait_for(
            rebuild(pool, dry_run=True, chunk_size=cfg.rebuild_chunk, progress=progress),
            cfg.timeout,
        )
        after = meter.sample()
    except TimeoutError as exc:
        raise BenchError(f"rebuild: not done after {cfg.timeout} s") from exc
    finally:
        await pool.close()
    end_of_replay = replayed[0] if replayed else after
    result = phase(
        REBUILD_PHASE,
        report.events,
        f"{cfg.rebuild_chunk} events",
        before,
        end_of_replay,
        meter,
    )
    result.details = {
        "compare_seconds": round(after.at - end_of_replay.at, 2),
        "total_seconds_with_compare": round(after.at - before.at, 2),
        "parked": len(report.parked),
    }
    return result, report


# --------------------------------------------------------------------------- CQL balances


@dataclass
class CqlNode:
    hosts: str  # host:port,...
    keyspace: str
    local_dc: str
    source: str
    data_dir: Path | None = None  # the node this bench started, else None
    port: int | None = None
    cold_start_s: float | None = None

    @property
    def config(self) -> CqlConfig:
        return CqlConfig(parse_hosts(self.hosts), self.keyspace, local_dc=self.local_dc)

    @property
    def pid(self) -> int | None:
        if self.data_dir is None:
            return None
        try:
            return int((self.data_dir / "cassandra.pid").read_text().strip())
        except (OSError, ValueError):
            return None


def _cassandra_env(**extra: str) -> dict[str, str]:
    # cassandra.sh's readiness check needs a Python with cassandra-driver: this one. Full JIT
    # (no CASSANDRA_JVM_OPTS): a throughput figure, unlike the tests' C1-only nodes.
    return {**os.environ, "CASSANDRA_PYTHON": sys.executable, **extra}


def cassandra_sh(*args: str | Path, **env: str) -> tuple[str, float]:
    """Runs scripts/cassandra.sh; returns its output and how long it took."""
    t0 = time.monotonic()
    out = run_checked(["bash", CASSANDRA_SH, *args], env=_cassandra_env(**env), timeout=300)
    return out, time.monotonic() - t0


def local_dc(hosts: str) -> str:
    """The data centre of the first contact point (any load-balancing policy will do)."""
    from cassandra.cluster import Cluster  # type: ignore[import-untyped]

    cluster = Cluster(contact_points=list(parse_hosts(hosts)), protocol_version=4)
    try:
        row = cluster.connect().execute("SELECT data_center FROM system.local").one()
        return str(row.data_center)
    finally:
        cluster.shutdown()


def start_cql(cfg: Config, cleanup: Cleanup, tmp: Path, run_id: str) -> CqlNode:
    if cfg.scylla_hosts:
        hosts = cfg.scylla_hosts
        node = CqlNode(
            hosts,
            f"healthpay_balances_bench_{run_id}",
            os.environ.get("SCYLLA_DC") or local_dc(hosts),
            "BENCH_SCYLLA_HOSTS",
        )

        def drop() -> None:
            with connect(node.config) as cql:
                cql.session.execute(f"DROP KEYSPACE IF EXISTS {node.keyspace}", timeout=120)

        cleanup.add(f"dropping keyspace {node.keyspace}", drop)
        return node
    data, port = tmp / "cassandra", free_port()
    data.mkdir()
    cleanup.add(
        "stopping Cassandra",  # its data is deleted with the temp dir: no drain
        lambda: _quiet(cassandra_sh("stop", data, CASSANDRA_STOP_TIMEOUT="0")[0]),
    )
    out, seconds = cassandra_sh("start", data, str(port))
    hosts = out.strip().splitlines()[-1].strip()
    return CqlNode(
        hosts, BALANCE_KEYSPACE, local_dc(hosts), "own, scripts/cassandra.sh", data, port, seconds
    )


class MeasuredProjector(BalanceProjector):
    """The real projector; counts the CQL statements it wrote (upserts + history entries) and
    the requests it sent them in (one per partition and batch)."""

    writes = 0
    requests = 0
    balance_events = 0

    def project(self, events: Sequence[RecordedEvent]) -> Any:
        result = super().project(events)
        self.writes += result.statements
        self.requests += result.requests
        self.balance_events += result.events
        return result


@dataclass
class MeasuredBalanceConsumer(BalanceConsumer):
    """The real consumer; `apply` (writes, then a synchronous offset commit) also notes when
    the committed offsets reach the topic's end."""

    progress: CatchUp = field(kw_only=True)

    async def apply(self, consumer: Consumer, messages: Sequence[Message]) -> None:
        with self.progress.batch(messages):
            await super().apply(consumer, messages)


def balance_differences(servers: Servers, node: CqlNode) -> list[str]:
    """`healthpay balances verify`'s comparison, as text (at most 10, then a count)."""
    settings = Settings(postgres_url=servers.postgres_url, scylla_keyspace=node.keyspace)
    found = [str(d) for d in find_differences(settings, node.config)]
    return found[:10] + ([f"... {len(found)} in all"] if len(found) > 10 else [])


async def run_balances(
    cfg: Config,
    servers: Servers,
    node: CqlNode,
    ends: dict[int, int],
    meter: CpuMeter,
    group: str,
) -> Phase:
    config = node.config
    tick = os.sysconf("SC_CLK_TCK")
    with connect(config) as cql:  # as projection_service/balances/process.py
        migrate_cql(cql.session, config)
        projector = MeasuredProjector(cql.session, config.keyspace)
        consumer = MeasuredBalanceConsumer(
            projector,
            servers.brokers,
            servers.topic,
            group=group,
            batch_size=cfg.balance_batch,
            progress=CatchUp(ends, meter),
        )
        progress = consumer.progress
        pid = node.pid
        node_before = _proc_cpu(pid, tick) if pid else None
        before, done = await progress.follow(
            consumer.run, cfg.timeout, "the balance consumer", "balances"
        )
        node_after = _proc_cpu(pid, tick) if pid else None
    result = phase(
        "balances: Kafka -> CQL",
        progress.messages,
        f"{cfg.balance_batch} messages",
        before,
        done,
        meter,
    )
    node_cpu = None
    if node_before and node_after:
        node_cpu = node_after[1] - node_before[1]
        result.other_cpu = max(0.0, result.other_cpu - node_cpu)  # not "anything else"
    steady = progress.steady_seconds(before, done)
    writes = projector.writes
    result.details = {
        **progress.details(before, done),  # apply: CQL writes + offset commits
        "balance_events": projector.balance_events,
        "cql_writes": writes,
        "cql_requests": projector.requests,
        "cql_writes_per_second": round(writes / result.seconds) if result.seconds else None,
        "cql_writes_per_second_after_join": round(writes / steady) if steady else None,
        "failed_batches": int(
            consumer.metrics.registry.get_sample_value("healthpay_balances_batch_failures_total")
            or 0
        ),
        "cassandra_cpu_s": None if node_cpu is None else round(node_cpu, 1),
        "cassandra_us_per_write": round(1e6 * node_cpu / writes) if node_cpu and writes else None,
        "cassandra_cold_start_s": None
        if node.cold_start_s is None
        else round(node.cold_start_s, 1),
    }
    return result


def restart_cassandra(node: CqlNode) -> dict[str, float]:
    """A drained stop and a warm start on the same directory and port (data kept)."""
    if node.data_dir is None or node.port is None:
        raise BenchError("cannot restart a CQL node this bench did not start")
    _, stop_s = cassandra_sh("stop", node.data_dir)
    _, start_s = cassandra_sh("start", node.data_dir, str(node.port))
    return {"cassandra_stop_s": round(stop_s, 1), "cassandra_warm_start_s": round(start_s, 1)}


# --------------------------------------------------------------------------- checks


@dataclass
class Check:
    what: str
    expected: Any
    actual: Any

    @property
    def ok(self) -> bool:
        return bool(self.expected == self.actual)


def check_read_models(url: str, expected: dict[str, Any]) -> list[Check]:
    checks = []
    with psycopg.connect(url, autocommit=True) as conn:
        for what, sql in _ACTUAL.items():
            row = conn.execute(sql).fetchone()
            checks.append(Check(what, expected[what], row[0] if row else None))
    return checks


# --------------------------------------------------------------------------- report


def kafka_version(cfg: Config) -> str:
    if cfg.kafka_brokers:
        return "external"
    text = KAFKA_SH.read_text()
    found = re.search(r"KAFKA_VERSION=\$\{KAFKA_VERSION:-([^}]+)\}", text)
    return os.environ.get("KAFKA_VERSION") or (found.group(1) if found else "?")


def _cpu(v: float | None) -> str:
    return "" if v is None else f"{v:.1f}"


def _us(v: float | None, events: int) -> str:
    return "" if v is None or events == 0 else f"{1e6 * v / events:,.0f}"


def table(phases: Sequence[Phase]) -> str:
    head = [
        "phase", "events", "batch", "seconds", "events/s",
        "bench CPU s", "PG CPU s", "Kafka CPU s", "other CPU s",
        "bench µs/event", "PG µs/event", "Kafka µs/event",
    ]  # fmt: skip
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for p in phases:
        cells = [
            p.name, f"{p.events:,}", p.batch, f"{p.seconds:.1f}", f"{p.rate:,.0f}",
            _cpu(p.bench_cpu), _cpu(p.postgres_cpu), _cpu(p.kafka_cpu), _cpu(p.other_cpu),
            _us(p.bench_cpu, p.events), _us(p.postgres_cpu, p.events),
            _us(p.kafka_cpu, p.events),
        ]  # fmt: skip
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def projection_summary(phases: Sequence[Phase]) -> list[str]:
    """The read-model projection against issue 10's targets: the worker at most 50 µs of
    CPU per event, a rebuild replaying at least 20k events/s."""
    by_name = {p.name: p for p in phases}
    lines = []
    if (p := by_name.get(PROJECTOR_PHASE)) and p.events:
        pg = "" if p.postgres_cpu is None else f", PostgreSQL {_us(p.postgres_cpu, p.events)}"
        lines.append(
            f"read models: worker {_us(p.bench_cpu, p.events)} µs CPU/event (target <= 50)"
            f"{pg} µs/event, {p.details.get('row_writes_per_event')} rows written/event,"
            f" {p.details.get('transactions')} transactions for {p.events:,} events"
        )
    if (r := by_name.get(REBUILD_PHASE)) and r.events:
        lines.append(
            f"rebuild: {r.rate:,.0f} events/s (target >= 20,000), bench"
            f" {_us(r.bench_cpu, r.events)} + PostgreSQL {_us(r.postgres_cpu, r.events)}"
            " µs CPU/event"
        )
    return ["", *lines] if lines else []


def report(
    cfg: Config,
    facts: dict[str, Any],
    phases: Sequence[Phase],
    checks: Sequence[Check],
    seeder: Seeder,
) -> str:
    m, pg = facts["machine"], facts["postgres"]
    t = seeder.tally
    claims = t.events["medcard.claim_adjudicated"]
    lines = [
        "",
        f"HealthPay Ledger stream bench — {m['date']}, git {m['git']}",
        f"machine: {m['nproc']} cores ({m['cpu']}), {m['ram_gib']} GiB RAM, Linux "
        f"{m['kernel']}, Python {m['python']}; load average {m['load_avg_1m']} before the run",
        f"postgres: {pg.get('server_version')} fsync={pg.get('fsync')} synchronous_commit="
        f"{pg.get('synchronous_commit')} shared_buffers={pg.get('shared_buffers')}"
        f" ({facts['postgres_source']}); kafka: {facts['kafka_version']} ({facts['kafka_source']}),"
        f" topic {facts['topic']} ({PARTITIONS} partitions), librdkafka {facts['librdkafka']}",
        *([f"cql: {facts['cql']}, protocol v4, LOCAL_QUORUM"] if "cql" in facts else []),
        f"backlog: {seeder.total_events:,} events ({t.setup_events:,} setup) on {cfg.cards:,} "
        f"cards + {len(seeder.wallets):,} wallets; {claims:,} claims ("
        + ", ".join(f"{k} {v:,}" for k, v in sorted(t.decisions.items()))
        + f"), {t.events['medcard.claim_reversed']:,} reversals, "
        f"{t.events['wallet.topped_up']:,} top-ups, {t.events['wallet.debited']:,} wallet "
        f"debits ({t.reasons['copayment_paid_from_wallet']:,} copayments), "
        f"{t.events['wallet.refunded']:,} refunds; mean "
        f"{facts['mean_event_bytes']:,} bytes of event_data+metadata",
        "",
        table(phases),
        "",
        "CPU: user + system seconds from /proc during the timed part of each phase; bench ="
        " this process (relay, worker, rebuild and librdkafka threads run in it); other = the"
        f" machine's busy CPU spent by anything else, out of {m['nproc']} cores x seconds.",
        "",
    ]
    for p in phases:
        if p.details:
            lines.append(f"{p.name}: " + ", ".join(f"{k} {v}" for k, v in p.details.items()))
    lines += projection_summary(phases)
    lines += ["", "checks:"]
    for c in checks:
        mark = "ok  " if c.ok else "FAIL"
        lines.append(f"  {mark} {c.what}: expected {c.expected}, got {c.actual}")
    if pg.get("fsync") != "on" or pg.get("synchronous_commit") not in ("on", "remote_apply"):
        lines.append("WARNING: PostgreSQL is not durable here: not comparable with the docs.")
    return "\n".join(lines)


# --------------------------------------------------------------------------- main


def bench(cfg: Config, cleanup: Cleanup, tmp: Path) -> tuple[str, dict[str, Any], bool]:
    run_id = f"{int(time.time())}{random.randrange(16**4):04x}"
    facts: dict[str, Any] = {"machine": machine(), "config": asdict(cfg) | {"json_out": None}}
    print(f"stream bench {run_id}: temp dir {tmp}", flush=True)
    t0 = time.monotonic()
    servers = start_servers(cfg, cleanup, tmp, run_id)
    print(f"  PostgreSQL and Kafka ready in {time.monotonic() - t0:.1f} s", flush=True)
    facts |= {
        "postgres": servers.facts,
        "postgres_source": "BENCH_POSTGRES_URL" if cfg.postgres_url else "own, scripts/pg.sh",
        "kafka_source": "BENCH_KAFKA_BROKERS" if cfg.kafka_brokers else "own, scripts/kafka.sh",
        "kafka_version": kafka_version(cfg),
        "topic": servers.topic,
        "librdkafka": rdkafka_version()[0],
    }
    meter = CpuMeter(servers.postmaster, servers.broker_pid)
    phases: list[Phase] = []

    seeder, seeded = asyncio.run(seed(cfg, servers.postgres_url, meter))
    phases.append(seeded)
    print(f"  seeded {seeded.events:,} events in {seeded.seconds:.1f} s", flush=True)
    total = count_events(servers.postgres_url)
    with psycopg.connect(servers.postgres_url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT avg(octet_length(event_data::text) + octet_length(metadata::text)) FROM events"
        ).fetchone()
    facts["mean_event_bytes"] = round(float(row[0])) if row and row[0] is not None else 0

    checkpoint_and_analyze(servers.postgres_url)
    relayed = run_relay(cfg, servers, total, meter)
    phases.append(relayed)
    print(f"  relay: {relayed.events:,} events in {relayed.seconds:.1f} s", flush=True)
    ends = topic_ends(servers)

    checkpoint_and_analyze_store(servers.postgres_url)
    activity = DbActivity.read(servers.postgres_url)
    projected = asyncio.run(run_projector(cfg, servers, ends, meter))
    projected.details |= activity.per_event(DbActivity.read(servers.postgres_url), total)
    phases.append(projected)
    print(f"  projector: {projected.events:,} events in {projected.seconds:.1f} s", flush=True)

    offsets = stored_offsets(servers.postgres_url, servers.topic)
    checks = [
        Check("events in the store", seeder.total_events, total),
        Check("messages on the topic", total, sum(ends.values())),
        Check("partitions with messages", PARTITIONS, sum(1 for v in ends.values() if v)),
        Check("projection_offsets", ends, {p: offsets.get(p, 0) for p in ends}),
        Check("relay: left after catching up", 0, relayed.details["left_after_catch_up"]),
        *check_read_models(servers.postgres_url, seeder.expected()),
    ]
    if cfg.rebuild:
        checkpoint_and_analyze(servers.postgres_url)
        activity = DbActivity.read(servers.postgres_url)
        rebuilt, rebuild_report = asyncio.run(run_rebuild(cfg, servers.postgres_url, meter))
        rebuilt.details |= activity.per_event(DbActivity.read(servers.postgres_url), total)
        phases.append(rebuilt)
        print(f"  rebuild: {rebuilt.events:,} events in {rebuilt.seconds:.1f} s", flush=True)
        checks.append(Check("rebuild: events replayed", total, rebuild_report.events))
        differing = [
            f"{c.table} (missing {c.missing}, extra {c.extra}, different {c.different})"
            for c in rebuild_report.comparisons
            if not c.identical
        ]
        checks.append(Check("rebuild: shadow tables differing from live", [], differing))
    if cfg.balances:
        t0 = time.monotonic()
        node = start_cql(cfg, cleanup, tmp, run_id)
        print(f"  CQL ({node.source}) ready in {time.monotonic() - t0:.1f} s", flush=True)
        group = BALANCE_GROUP if not cfg.kafka_brokers else f"{BALANCE_GROUP}-bench-{run_id}"
        balanced = asyncio.run(run_balances(cfg, servers, node, ends, meter, group))
        phases.append(balanced)
        print(
            f"  balances: {balanced.events:,} events, "
            f"{balanced.details['cql_writes']:,} CQL writes in {balanced.seconds:.1f} s",
            flush=True,
        )
        facts["cql"] = f"{node.hosts} keyspace {node.keyspace} dc {node.local_dc} ({node.source})"
        checks += [
            Check("balances: failed batches", 0, balanced.details["failed_batches"]),
            Check(
                "balances: CQL rows differing from the event store",
                [],
                balance_differences(servers, node),
            ),
        ]
        if node.data_dir is not None:
            balanced.details |= restart_cassandra(node)
            print(
                f"  Cassandra: drained stop {balanced.details['cassandra_stop_s']} s, "
                f"warm start {balanced.details['cassandra_warm_start_s']} s",
                flush=True,
            )
            checks.append(
                Check(
                    "balances: differing after a Cassandra restart",
                    [],
                    balance_differences(servers, node),
                )
            )
    text = report(cfg, facts, phases, checks, seeder)
    facts |= {
        "phases": [asdict(p) | {"events_per_second": round(p.rate)} for p in phases],
        "checks": [
            {"what": c.what, "expected": c.expected, "actual": c.actual, "ok": c.ok} for c in checks
        ],
    }
    return text, facts, all(c.ok for c in checks)


def main(argv: Sequence[str] | None = None) -> int:
    cfg = parse_args(argv)
    scripts = [PG_SH, KAFKA_SH]
    if cfg.balances and not cfg.scylla_hosts:
        scripts.append(CASSANDRA_SH)
    for script in scripts:
        if not script.exists():
            print(f"stream bench: {script} is missing", file=sys.stderr)
            return 2
    tmp = Path(tempfile.mkdtemp(prefix="healthpay-stream-bench-"))
    tmp.chmod(0o755)  # PostgreSQL runs as user postgres inside it when we are root
    cleanup = Cleanup()

    def body() -> tuple[int, bool]:
        try:
            text, facts, ok = bench(cfg, cleanup, tmp)
        except KafkaException as exc:
            raise BenchError(f"Kafka: {exc}") from exc
        except TimeoutError as exc:  # an admin or client call that never answered
            raise BenchError(f"timed out: {exc!r}") from exc
        except psycopg.Error as exc:
            raise BenchError(f"PostgreSQL: {exc}") from exc
        print(text, flush=True)
        if cfg.json_out:
            cfg.json_out.write_text(json.dumps(facts, indent=2, default=str) + "\n")
        if not ok:
            print("FAILED: a check did not hold (see above)", file=sys.stderr)
        return (0 if ok else 1), False

    return run_main("stream bench", body, cleanup.close, tmp, cfg.keep_temp, "temp dir")


if __name__ == "__main__":
    sys.exit(main())
