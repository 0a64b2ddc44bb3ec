"""`make bench-pipeline`: what one claim costs through the whole running system, and the
latency the seed's way (open loop).

Starts its own instance of the `make up` topology (scripts/up.sh with STACK_DIR in a temp dir
and every port a free one: edge nginx, one command service per core, PostgreSQL, relay,
Kafka, projection worker, balance projection, Cassandra, one gateway per core), so a running
`make up` is never touched, and stops it again with scripts/down.sh, also on error or Ctrl-C.
The processes are found by the PIDs the supervisor records (STACK_DIR/run/*.child) and the
servers' own pid files, each with its descendants.

The load is the seed's k6 scenario, load-tests/medcard-claim.js (k6 installed by
scripts/need.sh): unique prescriptions over --cards cards created first, through the edge.
1. warm-up, closed loop (--vus claiming back to back), not measured;
2. closed loop for --closed-duration s: the highest rate the pipeline sustains = claims ÷ the
   time from the first claim stored until the read model and the balance tables hold them all;
3. open loop (k6 constant-arrival-rate) at --fractions of that rate, --duration s each.
Every measured run is a CPU window: /proc utime+stime of every process group from just before
k6 starts until the read model (projection_offsets) and the balance projection (its committed
Kafka offsets) have reached the topic's end and the relay has published every stored event.
A sampler (every --sample-every s) follows the store, the topic and both projections; lag =
how long ago the store held as many events as the projection has applied.

Exit status: 0 when every check holds, 1 when a claim is lost (claim events in the store fewer
than claims answered 2xx or more than claims sent; read-model rows or balance history rows
other than the claim events; `healthpay balances verify` finds a difference; a parked event)
or a process restarted, 2 when the bench could not be set up, 130 on Ctrl-C.

    .venv/bin/python load-tests/pipeline_bench.py            # ~6 minutes on 2 cores
    .venv/bin/python load-tests/pipeline_bench.py --quick    # ~3 minutes, figures not worth keeping
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from bisect import bisect_left
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import bench
import psycopg
from bench_common import (
    ROOT,
    BenchError,
    CpuSnapshot,
    cpu_snapshot,
    free_port,
    machine,
    machine_busy,
    machine_line,
    markdown_table,
    run_checked,
    run_main,
    tree_cpu,
    write_json,
)
from confluent_kafka import Consumer, TopicPartition

from infrastructure.cassandra.session import CqlConfig, connect
from infrastructure.settings import Settings
from projection_service.balances.consumer import DEFAULT_GROUP as BALANCES_GROUP
from projection_service.balances.projector import CLAIM_ADJUDICATED
from projection_service.balances.versions import current_version, table_name
from projection_service.read_models.parking import DEFAULT_PROJECTION as READ_MODELS

K6_SCRIPT = ROOT / "load-tests" / "medcard-claim.js"
NEED_SH = ROOT / "scripts" / "need.sh"
TOPIC = "healthpay.events.wallet"
KEYSPACE = "healthpay_balances"
CAPACITY_RATES = (1_000, 10_000, 50_000)
# (label, the stack's process names in it); the pipeline total is the sum of these
PIPELINE = (
    ("nginx edge", ("edge",)),
    ("command service", ("command-service-*",)),
    ("PostgreSQL", ("postgresql",)),
    ("relay", ("relay",)),
    ("Kafka broker", ("kafka",)),
    ("projection worker", ("projection-worker",)),
    ("balance projection", ("balance-projection",)),
    ("Cassandra", ("cassandra",)),
)
# also measured, outside the total: the gateway serves no claim; the supervisors' watch checks
BESIDE = (("gateway", ("gateway-*",)), ("supervisors", ("supervisor",)))


# --------------------------------------------------------------------------- configuration


@dataclass(frozen=True)
class Config:
    duration: int
    closed_duration: int
    warmup: int
    idle: int
    vus: int
    cards: int
    fractions: tuple[int, ...]
    sample_every: float
    drain_timeout: float
    json_out: Path | None
    keep_temp: bool


def parse_args(argv: Sequence[str] | None = None) -> Config:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="short runs: 10 s each, 200 cards")
    p.add_argument("--duration", type=int, help="seconds of each open-loop rate (30)")
    p.add_argument("--closed-duration", type=int, help="seconds of the closed-loop run (30)")
    p.add_argument("--warmup", type=int, help="seconds of closed-loop warm-up, not measured (15)")
    p.add_argument("--vus", type=int, default=64, help="closed-loop VUs; open loop: 4x at most")
    p.add_argument("--cards", type=int, help="cards the claims spread over (2000)")
    p.add_argument("--fractions", default="25,50,70,90", help="open-loop rates, %% of the max")
    p.add_argument("--sample-every", type=float, default=0.25, help="lag sampling period (s)")
    p.add_argument("--drain-timeout", type=float, default=300, help="s allowed to catch up")
    p.add_argument("--json", type=Path, default=None, help="also write every figure as JSON")
    p.add_argument("--keep-temp", action="store_true", help="keep the stack's dir and logs")
    a = p.parse_args(argv)
    quick = a.quick
    fractions = tuple(int(x) for x in a.fractions.split(",") if x.strip())
    if not fractions or min(fractions) <= 0:
        p.error("--fractions needs positive percentages")
    return Config(
        duration=a.duration or (10 if quick else 30),
        closed_duration=a.closed_duration or (10 if quick else 30),
        warmup=a.warmup if a.warmup is not None else (5 if quick else 15),
        idle=5 if quick else 10,
        vus=a.vus,
        cards=a.cards or (200 if quick else 2000),
        fractions=fractions,
        sample_every=a.sample_every,
        drain_timeout=a.drain_timeout,
        json_out=a.json,
        keep_temp=a.keep_temp,
    )


# --------------------------------------------------------------------------- the stack


@dataclass
class Stack:
    dir: Path
    env: dict[str, str]  # what its processes got (ports, URLs, JWT_SECRET)
    edge_port: int
    cql_port: int

    @property
    def postgres_url(self) -> str:
        return self.env["POSTGRES_URL"]

    def pids(self) -> dict[str, list[int]]:
        """Process name (as in PIPELINE and BESIDE) -> root PIDs, from the supervisor's records
        (run/NAME.child: the program it runs now) and the servers' own pid files."""
        run = self.dir / "run"
        found: dict[str, list[int]] = {"supervisor": []}
        for child in sorted(run.glob("*.child")):
            found[child.stem] = [_pid_in(child)]
        found["supervisor"] = [_pid_in(f) for f in sorted(run.glob("*.pid"))]
        for name, path in (
            ("edge", "edge/nginx.pid"),
            ("postgresql", "pg/postmaster.pid"),
            ("kafka", "kafka-broker/kafka.pid"),
            ("cassandra", "cassandra/node/cassandra.pid"),
        ):
            found[name] = [_pid_in(self.dir / path)]
        return found


def _pid_in(path: Path) -> int:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError) as exc:
        raise BenchError(f"no PID in {path}: {exc}") from None


def start_stack(procs: bench.Processes, tmp: Path) -> Stack:
    """scripts/up.sh on free ports with STACK_DIR in `tmp`; scripts/down.sh when closing."""
    ports: set[int] = set()
    while len(ports) < 9 + 2 * len(os.sched_getaffinity(0)):
        ports.add(free_port())
    free = iter(sorted(ports))
    cores = len(os.sched_getaffinity(0))
    stack_dir = tmp / "stack"
    env = {k: v for k, v in os.environ.items() if k not in Settings.env_names()}
    env |= {
        "STACK_DIR": str(stack_dir),
        "PORT": str(next(free)),
        "PG_PORT": str(next(free)),
        "KAFKA_PORT": str(next(free)),
        "KAFKA_CONTROLLER_PORT": str(next(free)),
        "CASSANDRA_PORT": str(next(free)),
        "RELAY_METRICS_PORT": str(next(free)),
        "PROJECTION_METRICS_PORT": str(next(free)),
        "BALANCE_METRICS_PORT": str(next(free)),
        "PROMETHEUS_PORT": str(next(free)),
        "COMMAND_PORTS": ",".join(str(next(free)) for _ in range(cores)),
        "GATEWAY_PORTS": ",".join(str(next(free)) for _ in range(cores)),
        "JWT_SECRET": secrets.token_hex(32),
        "HEALTHPAY_ENV": "development",
        # one pharmacy token from one address: the edge's abuse limits would refuse the load
        **{f"EDGE_{k}_{v}": "1000000" for k in ("CLIENT", "ADDRESS") for v in ("RATE", "BURST")},
    }
    down_env = {**env}
    procs.on_close("stack", lambda: _down(down_env, tmp / "logs" / "down.log"))
    log = tmp / "logs" / "up.log"
    print(f"starting the stack (scripts/up.sh, STACK_DIR={stack_dir}; log {log})", flush=True)
    began = time.monotonic()
    with log.open("wb") as out:
        done = subprocess.run(
            [str(ROOT / "scripts" / "up.sh")],
            env=env,
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=900,
            check=False,
        )
    if done.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
        raise BenchError(f"scripts/up.sh failed ({done.returncode}):\n{tail}")
    print(f"  up in {time.monotonic() - began:.0f} s", flush=True)
    env |= {
        "POSTGRES_URL": f"postgresql://healthpay@127.0.0.1:{env['PG_PORT']}/healthpay_ledger",
        "KAFKA_BROKERS": f"127.0.0.1:{env['KAFKA_PORT']}",
        "SCYLLA_HOSTS": f"127.0.0.1:{env['CASSANDRA_PORT']}",
    }
    return Stack(stack_dir, env, int(env["PORT"]), int(env["CASSANDRA_PORT"]))


def _down(env: dict[str, str], log: Path) -> None:
    with log.open("wb") as out:
        subprocess.run(
            [str(ROOT / "scripts" / "down.sh")],
            env=env,
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=300,
            check=False,
        )


def restarts(stack: Stack) -> list[str]:
    """The supervisor's lines about a program that exited or a server found not running."""
    try:
        text = (stack.dir / "log" / "supervisor.log").read_text(errors="replace")
    except OSError:
        return []
    return [ln for ln in text.splitlines() if "exited with status" in ln or "not running" in ln]


# --------------------------------------------------------------------------- CPU


def _names(pattern: str, pids: dict[str, list[int]]) -> list[int]:
    if pattern.endswith("*"):
        return [p for name, ps in pids.items() if name.startswith(pattern[:-1]) for p in ps]
    return list(pids.get(pattern, []))


@dataclass
class CpuPoint:
    at: float
    snap: CpuSnapshot
    machine: float
    own: float  # this process (the sampler) and its waited-for children (k6)
    children: float


def cpu_point() -> CpuPoint:
    me, kids = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return CpuPoint(
        time.monotonic(),
        cpu_snapshot(),
        machine_busy(),
        me.ru_utime + me.ru_stime,
        kids.ru_utime + kids.ru_stime,
    )


def group_seconds(pids: dict[str, list[int]], snap: CpuSnapshot) -> dict[str, float]:
    """CPU seconds so far per group of PIPELINE and BESIDE (the supervisors without the
    programs they run)."""
    programs = {p for name, ps in pids.items() if name != "supervisor" for p in ps}
    out: dict[str, float] = {}
    for label, names in (*PIPELINE, *BESIDE):
        roots = [p for n in names for p in _names(n, pids)]
        out[label] = tree_cpu(snap, roots, prune=programs if label == "supervisors" else ())
    return out


def cpu_between(pids: dict[str, list[int]], a: CpuPoint, b: CpuPoint) -> dict[str, float]:
    """CPU seconds per group between two points, plus the load generator (k6), this bench and
    `other`: the machine's busy time spent by anything else (the noise meter)."""
    before, after = group_seconds(pids, a.snap), group_seconds(pids, b.snap)
    used = {k: after[k] - before[k] for k in after}
    used["k6 (load generator)"] = b.children - a.children
    used["bench (sampler)"] = b.own - a.own
    used["other (rest of the box)"] = max(0.0, b.machine - a.machine - sum(used.values()))
    return used


# --------------------------------------------------------------------------- progress, lag


@dataclass(frozen=True)
class Progress:
    at: float  # time.monotonic()
    stored: int  # events appended since the run's start
    unpublished: int  # events the relay has not published yet
    topic: int  # messages on the topic since the run's start
    read_models: int  # messages the read-model projection has applied since then
    balances: int  # messages the balance projection has committed since then

    @property
    def caught_up(self) -> bool:
        return (
            self.unpublished == 0
            and self.topic >= self.stored
            and self.read_models >= self.topic
            and self.balances >= self.topic
        )


_PROGRESS = """
SELECT (SELECT count(*) FROM events WHERE position > %(base)s),
       (SELECT count(*) FROM events e, relay_checkpoints c
         WHERE (e.transaction_id, e.position) > (c.transaction_id, c.position)),
       (SELECT coalesce(sum(next_offset), 0) FROM projection_offsets
         WHERE projection = %(projection)s AND topic = %(topic)s),
       (SELECT coalesce(max(position), 0) FROM events)
"""


class Probe:
    """Reads the pipeline's progress: the store and the read-model offsets from PostgreSQL,
    the topic's ends and the balance group's committed offsets from Kafka (without joining
    the group). Its queries are cheap, but PostgreSQL and Kafka do spend a little on them."""

    def __init__(self, stack: Stack) -> None:
        self.pg = psycopg.connect(stack.postgres_url, autocommit=True)
        self.kafka = Consumer(
            {
                "bootstrap.servers": stack.env["KAFKA_BROKERS"],
                "group.id": BALANCES_GROUP,
                "enable.auto.commit": False,
            }
        )
        meta = self.kafka.list_topics(TOPIC, timeout=10).topics[TOPIC]
        self.partitions = [TopicPartition(TOPIC, p) for p in sorted(meta.partitions)]
        self.base = (0, 0, 0, 0)  # position, topic, read models, balances

    def raw(self) -> tuple[int, int, int, int, int, int]:
        """(stored, unpublished, topic end, read-model offsets, balance offsets, max position)
        in absolute terms."""
        q = {"base": self.base[0], "projection": READ_MODELS, "topic": TOPIC}
        row = self.pg.execute(_PROGRESS, q).fetchone()
        assert row is not None
        ends = sum(self.kafka.get_watermark_offsets(tp, timeout=5)[1] for tp in self.partitions)
        committed = sum(
            max(0, tp.offset) for tp in self.kafka.committed(self.partitions, timeout=5)
        )
        return int(row[0]), int(row[1]), ends, int(row[2]), committed, int(row[3])

    def rebase(self) -> Progress:
        """The run starts here: counts from now on."""
        self.base = (0, 0, 0, 0)
        _, _, topic, read_models, balances, position = self.raw()
        self.base = (position, topic, read_models, balances)
        return self.read()

    def read(self) -> Progress:
        stored, unpublished, topic, read_models, balances, _ = self.raw()
        b = self.base
        return Progress(
            time.monotonic(),
            stored,
            unpublished,
            topic - b[1],
            read_models - b[2],
            balances - b[3],
        )

    def close(self) -> None:
        self.pg.close()
        self.kafka.close()


class Sampler(threading.Thread):
    def __init__(self, probe: Probe, every: float) -> None:
        super().__init__(daemon=True)
        self.probe, self.every = probe, every
        self.samples: list[Progress] = []
        self.halt = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            while not self.halt.is_set():
                self.samples.append(self.probe.read())
                self.halt.wait(self.every)
        except BaseException as exc:  # reported by the caller
            self.error = exc

    def stop(self) -> list[Progress]:
        self.halt.set()
        self.join()
        if self.error:
            raise BenchError(f"sampling the pipeline failed: {self.error!r}")
        return self.samples


def lags(samples: Sequence[Progress], applied: Callable[[Progress], int]) -> list[float]:
    """Per sample: seconds since the store held as many events as the projection has applied
    (0 when it has them all), the store's count interpolated between samples."""
    stored = [s.stored for s in samples]
    out = []
    for s in samples:
        n = applied(s)
        if n >= s.stored:
            out.append(0.0)
            continue
        i = bisect_left(stored, n + 1)  # the first sample holding event n + 1
        if i == 0:
            out.append(s.at - samples[0].at)
            continue
        lo, hi = samples[i - 1], samples[i]
        frac = (n + 1 - lo.stored) / max(1, hi.stored - lo.stored)
        out.append(max(0.0, s.at - (lo.at + frac * (hi.at - lo.at))))
    return out


# --------------------------------------------------------------------------- k6


@dataclass
class K6Result:
    requests: int
    answered_2xx: int
    refused: int  # answered, not 201
    dropped: int  # arrivals k6 could not start (no free VU): the open loop fell behind
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float


def k6_path() -> str:
    out = run_checked([NEED_SH, "k6"], timeout=1800).strip().splitlines()
    if not out:
        raise BenchError("scripts/need.sh k6 printed nothing")
    return out[-1]


def run_k6(
    k6: str,
    procs: bench.Processes,
    env: dict[str, str],
    name: str,
    seconds: int,
    rate: int | None,
    vus: int,
) -> K6Result:
    summary = procs.logs / f"{name}.summary.json"
    load = {**env, "DURATION": f"{seconds}s", "VUS": str(vus), "K6_NO_USAGE_REPORT": "true"}
    if rate:
        load |= {"RATE": str(rate), "MAX_VUS": str(4 * vus)}
    argv: list[str | Path] = [k6, "run", "--quiet", "--no-color", "--summary-export", summary]
    argv += ["--summary-trend-stats", "med,p(95),p(99),max", K6_SCRIPT]
    started = procs.start(name, argv, load)
    try:
        started.proc.wait(seconds + 180)
    finally:
        procs.stop(started)
    # 99: a threshold of the script was crossed; the bench judges the figures itself
    if started.proc.returncode not in (0, 99) or not summary.exists():
        tail = "\n".join(started.log.read_text(errors="replace").splitlines()[-20:])
        raise BenchError(f"k6 failed ({started.proc.returncode}):\n{tail}")
    return _k6_figures(json.loads(summary.read_text()))


def _k6_figures(doc: dict[str, Any]) -> K6Result:
    metrics: dict[str, dict[str, float]] = doc["metrics"]

    def count(name: str) -> int:
        return int(metrics.get(name, {}).get("count", 0))

    lat = metrics.get("http_req_duration{name:claim}", {})
    return K6Result(
        requests=count("iterations"),
        answered_2xx=count("claims_2xx"),
        refused=count("claims_non_201"),
        dropped=count("dropped_iterations"),
        p50_ms=float(lat.get("med", 0.0)),
        p95_ms=float(lat.get("p(95)", 0.0)),
        p99_ms=float(lat.get("p(99)", 0.0)),
        max_ms=float(lat.get("max", 0.0)),
    )


# --------------------------------------------------------------------------- one measured run


@dataclass
class RunFigures:
    label: str
    target_rate: int | None  # None: closed loop
    seconds: int
    k6: K6Result
    window_s: float  # CPU window: k6 start until caught up
    first_to_caught_up_s: float  # first claim stored until the stores hold every claim
    drain_s: float  # k6 done until caught up
    caught_up: bool
    cpu_s: dict[str, float]
    claims: int  # claim events stored in the window
    read_model_lag_s: tuple[float, float]  # p50, max while the load ran
    balance_lag_s: tuple[float, float]
    restarted: bool = False
    cpu_us: dict[str, float] = field(default_factory=dict)

    @property
    def answered_rate(self) -> float:
        return self.k6.answered_2xx / self.seconds

    @property
    def end_to_end_rate(self) -> float:
        return self.claims / max(1e-9, self.first_to_caught_up_s)


def _p50_max(values: Sequence[float]) -> tuple[float, float]:
    if not values:
        return 0.0, 0.0
    ordered = sorted(values)
    return ordered[len(ordered) // 2], ordered[-1]


def wait_caught_up(probe: Probe, timeout: float) -> Progress | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        now = probe.read()
        if now.caught_up:
            return now
        time.sleep(0.05)
    return None


def measure(
    ctx: Context, label: str, seconds: int, rate: int | None, warm: bool = False
) -> RunFigures:
    pids = ctx.stack.pids()
    ctx.probe.rebase()
    sampler = Sampler(ctx.probe, ctx.cfg.sample_every)
    before = cpu_point()
    sampler.start()
    vus = ctx.cfg.vus
    k6 = run_k6(ctx.k6, ctx.procs, ctx.k6_env, label.replace(" ", "-"), seconds, rate, vus)
    k6_done = time.monotonic()
    samples = sampler.stop()
    done = wait_caught_up(ctx.probe, ctx.cfg.drain_timeout)
    after = cpu_point()
    ctx.answered_2xx += k6.answered_2xx
    ctx.requests += k6.requests
    last = done or ctx.probe.read()
    loaded = [s for s in samples if s.at <= k6_done]
    first = next((s.at for s in loaded if s.stored > 0), before.at)
    run = RunFigures(
        label=label,
        target_rate=rate,
        seconds=seconds,
        k6=k6,
        window_s=after.at - before.at,
        first_to_caught_up_s=last.at - first,
        drain_s=last.at - k6_done,
        caught_up=done is not None,
        cpu_s=cpu_between(pids, before, after),
        claims=last.stored,
        read_model_lag_s=_p50_max(lags(loaded, lambda s: s.read_models)),
        balance_lag_s=_p50_max(lags(loaded, lambda s: s.balances)),
        restarted=ctx.stack.pids() != pids,
    )
    run.cpu_us = {k: 1e6 * v / max(1, run.claims) for k, v in run.cpu_s.items()}
    if not warm:
        _print_run(run)
    return run


def _print_run(r: RunFigures) -> None:
    total = sum(r.cpu_us[label] for label, _ in PIPELINE)
    rate = "closed loop" if r.target_rate is None else f"{r.target_rate}/s"
    print(
        f"  {r.label:<12} {rate:>11}: {r.k6.answered_2xx} claims 2xx ({r.answered_rate:,.0f}/s"
        f" answered, {r.end_to_end_rate:,.0f}/s end to end), p50 {r.k6.p50_ms:.1f}"
        f" p95 {r.k6.p95_ms:.1f} p99 {r.k6.p99_ms:.1f} ms, refused {r.k6.refused},"
        f" dropped {r.k6.dropped}, lag max {r.read_model_lag_s[1]:.2f} /"
        f" {r.balance_lag_s[1]:.2f} s, drain {r.drain_s:.1f} s, pipeline {total:,.0f} µs/claim"
        f"{'' if r.caught_up else '  NOT CAUGHT UP'}{'  RESTARTED' if r.restarted else ''}",
        flush=True,
    )


# --------------------------------------------------------------------------- checks


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


def checks(ctx: Context) -> list[Check]:
    url = ctx.stack.postgres_url
    with psycopg.connect(url, autocommit=True) as conn:

        def one(sql: str, *args: Any) -> int:
            row = conn.execute(sql, args).fetchone()
            return int(row[0]) if row and row[0] is not None else 0

        events = one("SELECT count(*) FROM events WHERE event_type = %s", CLAIM_ADJUDICATED)
        rows = one("SELECT count(*) FROM prescription_claims")
        parked = one("SELECT count(*) FROM parked_events")
        per_month = conn.execute(
            "SELECT aggregate_id, event_data->>'month', count(*) FROM events"
            " WHERE event_type = %s GROUP BY 1, 2",
            (CLAIM_ADJUDICATED,),
        ).fetchall()
    answered, sent = ctx.answered_2xx + 1, ctx.requests + 1  # + the smoke claim
    history, partitions_off = balance_history(ctx.stack, per_month)
    verify = subprocess.run(
        [str(bench.HEALTHPAY), "balances", "verify"],
        env=ctx.stack.env,
        capture_output=True,
        text=True,
        check=False,
    )
    verdict = (verify.stdout.strip().splitlines() or ["(nothing printed)"])[-1]
    restarted = restarts(ctx.stack)
    return [
        Check("no claim lost: claim events >= claims answered 2xx", events >= answered,
              f"{events} claim events, {answered} claims answered 2xx"),
        Check("no claim doubled: claim events <= claims sent", events <= sent,
              f"{events} claim events, {sent} claims sent"),
        Check("read model: prescription_claims rows = claim events", rows == events,
              f"{rows} rows, {events} events"),
        Check("balances: medcard_spend_entries claim rows = claim events, per card and month",
              history == events and partitions_off == 0,
              f"{history} rows, {events} events, {partitions_off} card-months differ"),
        Check("balances verify: CQL balances = the event store", verify.returncode == 0, verdict),
        Check("no parked events", parked == 0, f"{parked} parked"),
        Check("no process restarted", not restarted, "; ".join(restarted[:3]) or "none"),
    ]  # fmt: skip


def balance_history(stack: Stack, per_month: Sequence[tuple[Any, ...]]) -> tuple[int, int]:
    """(claim rows in the CQL history of those card-months, card-months whose count differs
    from the event store's)."""
    config = CqlConfig(hosts=(("127.0.0.1", stack.cql_port),), keyspace=KEYSPACE)
    total = off = 0
    with connect(config) as cql:
        s = cql.session
        table = f"{KEYSPACE}.{table_name('medcard_spend_entries', current_version(s, KEYSPACE))}"
        query = s.prepare(f"SELECT event_type FROM {table} WHERE medcard_id = ? AND month = ?")
        for card, month, count in per_month:
            rows = sum(
                1 for r in s.execute(query, (card, month)) if r.event_type == CLAIM_ADJUDICATED
            )
            total += rows
            off += rows != count
    return total, off


# --------------------------------------------------------------------------- report


def cpu_table(runs: Sequence[RunFigures], idle: dict[str, float]) -> str:
    head = ["process group", "idle CPU ms/s", *(_column(r) for r in runs)]
    rows = []
    for label, _ in PIPELINE:
        rows.append([label, f"{idle[label]:.1f}", *(f"{r.cpu_us[label]:,.0f}" for r in runs)])
    totals = [sum(r.cpu_us[label] for label, _ in PIPELINE) for r in runs]
    idle_total = sum(idle[label] for label, _ in PIPELINE)
    rows.append(["**pipeline total**", f"**{idle_total:.1f}**", *(f"**{t:,.0f}**" for t in totals)])
    for label in (
        *(b for b, _ in BESIDE),
        "k6 (load generator)",
        "bench (sampler)",
        "other (rest of the box)",
    ):
        rows.append(
            [label, f"{idle.get(label, 0.0):.1f}", *(f"{r.cpu_us[label]:,.0f}" for r in runs)]
        )
    return markdown_table(head, rows)  # fmt: skip


def _column(r: RunFigures) -> str:
    return "closed loop µs/claim" if r.target_rate is None else f"{r.label} µs/claim"


def latency_table(runs: Sequence[RunFigures]) -> str:
    head = ["run", "target claims/s", "answered claims/s", "end-to-end claims/s", "2xx",
            "refused", "dropped", "p50 ms", "p95 ms", "p99 ms", "max ms",
            "read-model lag p50 / max s", "balance lag p50 / max s", "drain s"]  # fmt: skip
    rows = []
    for r in runs:
        rows.append([
            r.label, "closed loop" if r.target_rate is None else f"{r.target_rate:,}",
            f"{r.answered_rate:,.0f}", f"{r.end_to_end_rate:,.0f}", str(r.k6.answered_2xx),
            str(r.k6.refused), str(r.k6.dropped), f"{r.k6.p50_ms:.1f}", f"{r.k6.p95_ms:.1f}",
            f"{r.k6.p99_ms:.1f}", f"{r.k6.max_ms:.0f}",
            f"{r.read_model_lag_s[0]:.2f} / {r.read_model_lag_s[1]:.2f}",
            f"{r.balance_lag_s[0]:.2f} / {r.balance_lag_s[1]:.2f}",
            f"{r.drain_s:.1f}" + ("" if r.caught_up else " (not caught up)"),
        ])  # fmt: skip
    return markdown_table(head, rows)


def capacity(run: RunFigures, idle_ms_per_s: dict[str, float]) -> list[dict[str, Any]]:
    """Per stage: CPU per claim in `run`, the part of it the stage spends anyway (its idle
    rate over the window), and the cores it keeps busy at CAPACITY_RATES = idle + the rest
    per claim x the rate. Linear only while the per-claim cost holds: batching lowers it at
    higher rates, contention raises it."""
    stages = []
    for label, _ in PIPELINE:
        idle_s = idle_ms_per_s[label] / 1000
        net = max(0.0, run.cpu_s[label] - idle_s * run.window_s) * 1e6 / max(1, run.claims)
        cores = {r: idle_s + net * r / 1e6 for r in CAPACITY_RATES}
        stages.append({"stage": label, "us_per_claim": run.cpu_us[label], "idle_cores": idle_s,
                       "net_us_per_claim": net, "cores": cores})  # fmt: skip
    return stages


def capacity_table(stages: Sequence[dict[str, Any]]) -> str:
    head = ["stage", "µs/claim", "idle cores", "µs/claim beyond idle"]
    head += [f"cores at {r // 1000}k claims/s" for r in CAPACITY_RATES]
    rows = []
    for st in stages:
        rows.append([st["stage"], f"{st['us_per_claim']:,.0f}", f"{st['idle_cores']:.2f}",
                     f"{st['net_us_per_claim']:,.0f}",
                     *(f"{st['cores'][r]:,.1f}" for r in CAPACITY_RATES)])  # fmt: skip
    total = ["**pipeline total**"]
    total += [f"**{sum(st[k] for st in stages):,.0f}**" for k in ("us_per_claim",)]
    total += [f"**{sum(st['idle_cores'] for st in stages):.2f}**"]
    total += [f"**{sum(st['net_us_per_claim'] for st in stages):,.0f}**"]
    total += [f"**{sum(st['cores'][r] for st in stages):,.1f}**" for r in CAPACITY_RATES]
    return markdown_table(head, [*rows, total])


def report(ctx: Context, facts: dict[str, Any], runs: Sequence[RunFigures]) -> str:
    m, cfg = facts["machine"], ctx.cfg
    cores = len(os.sched_getaffinity(0))
    top = max(runs, key=lambda r: r.end_to_end_rate)
    fractions = ", ".join(f"{f} %" for f in cfg.fractions)
    lines = [
        "",
        f"HealthPay Ledger pipeline bench — {m['date']}, git {m['git']}",
        machine_line(m),
        f"topology: scripts/up.sh on free ports (edge nginx, {cores} command services,"
        f" PostgreSQL, relay, Kafka, projection worker, balance projection, Cassandra,"
        f" {cores} gateways), all on this machine with k6; {facts['cards']} cards, unique"
        " prescriptions",
        f"k6 {facts['k6_version']}: closed loop {cfg.vus} VUs for {cfg.closed_duration} s"
        f" (after {cfg.warmup} s of warm-up); open loop at {fractions} of"
        f" {facts['max_rate']:,} claims/s (the closed loop's end-to-end rate),"
        f" {cfg.duration} s each",
        "",
        "CPU per claim (user + system from /proc over each window: k6 start until the read model"
        " and the balance tables hold every claim; idle: the stack before any load):",
        "",
        cpu_table(runs, facts["idle_ms_per_s"]),
        "",
        "Latency (k6, claims only) and projection lag (sampled every"
        f" {cfg.sample_every} s; drain: from the end of the load until caught up):",
        "",
        latency_table(runs),
        "",
        f"Capacity model from the {top.label} run ({top.end_to_end_rate:,.0f} claims/s end to"
        " end): cores = idle cores + µs/claim beyond idle x rate (a stage's idle CPU is its"
        " polling and housekeeping, paid once per instance):",
        "",
        capacity_table(facts["capacity"]),
        "",
    ]  # fmt: skip
    lines += [f"[{'ok' if c.ok else 'FAILED'}] {c.name}: {c.detail}" for c in facts["checks"]]
    return "\n".join(lines)


# --------------------------------------------------------------------------- main


@dataclass
class Context:
    cfg: Config
    procs: bench.Processes
    stack: Stack
    probe: Probe
    k6: str
    k6_env: dict[str, str]
    answered_2xx: int = 0
    requests: int = 0


def idle_rates(stack: Stack, seconds: float) -> dict[str, float]:
    pids = stack.pids()
    a = cpu_point()
    time.sleep(seconds)
    b = cpu_point()
    return {k: 1000 * v / (b.at - a.at) for k, v in cpu_between(pids, a, b).items()}


def prepare(cfg: Config, procs: bench.Processes, tmp: Path, facts: dict[str, Any]) -> Context:
    k6 = k6_path()
    facts["k6_version"] = run_checked([k6, "version"]).split()[1]
    stack = start_stack(procs, tmp)
    tokens = bench.make_tokens(stack.env)
    run_id = f"{int(time.time())}{secrets.token_hex(2)}"
    print(f"creating {cfg.cards} cards through the edge", flush=True)
    cards = bench.create_cards(stack.edge_port, tokens["admin"], cfg.cards, run_id)
    decision = bench.smoke_claim(stack.edge_port, tokens["pharmacy"], cards[0], run_id)
    if decision != "approved":
        raise BenchError(f"the first claim was {decision}, not approved")
    cards_file = tmp / "cards.txt"
    cards_file.write_text("\n".join(cards) + "\n")
    facts["cards"] = len(cards)
    k6_env = {
        **{k: v for k, v in os.environ.items() if k not in Settings.env_names()},
        "BASE_URL": f"http://127.0.0.1:{stack.edge_port}",
        "TOKEN": tokens["pharmacy"],
        "ADMIN_TOKEN": tokens["admin"],
        "CARDS_FILE": str(cards_file),
    }
    probe = Probe(stack)
    procs.on_close("probe", probe.close)
    if wait_caught_up(probe, cfg.drain_timeout) is None:
        raise BenchError("the projections did not catch up with the cards")
    return Context(cfg, procs, stack, probe, k6, k6_env)


def bench_runs(cfg: Config, ctx: Context, facts: dict[str, Any]) -> list[RunFigures]:
    if cfg.warmup > 0:
        print(f"warm-up: closed loop, {cfg.warmup} s", flush=True)
        measure(ctx, "warm-up", cfg.warmup, None, warm=True)
    print(f"idle: {cfg.idle} s without load", flush=True)
    facts["idle_ms_per_s"] = idle_rates(ctx.stack, cfg.idle)
    print("measured runs:", flush=True)
    runs = [measure(ctx, "closed loop", cfg.closed_duration, None)]
    top = max(1, round(runs[0].end_to_end_rate))
    facts["max_rate"] = top
    for fraction in cfg.fractions:
        rate = max(1, round(top * fraction / 100))
        runs.append(measure(ctx, f"{fraction} %", cfg.duration, rate))
    top_run = max(runs, key=lambda r: r.end_to_end_rate)
    facts["capacity"] = capacity(top_run, facts["idle_ms_per_s"])
    return runs


def main(argv: Sequence[str] | None = None) -> int:
    cfg = parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="healthpay-pipeline-"))
    tmp.chmod(0o755)  # PostgreSQL (user postgres) and nginx workers (nobody) work inside it
    (tmp / "logs").mkdir()
    procs = bench.Processes(tmp / "logs")

    def body() -> tuple[int, bool]:
        facts: dict[str, Any] = {"machine": machine(), "config": asdict(cfg) | {"json_out": None}}
        print(f"pipeline bench: logs in {tmp}/logs", flush=True)
        ctx = prepare(cfg, procs, tmp, facts)
        runs = bench_runs(cfg, ctx, facts)
        facts["checks"] = checks(ctx)
        print(report(ctx, facts, runs))
        if cfg.json_out:
            doc = {**facts, "checks": [asdict(c) for c in facts["checks"]]}
            write_json(cfg.json_out, doc | {"runs": [asdict(r) for r in runs]})
        failed = [c for c in facts["checks"] if not c.ok]
        for c in failed:
            print(f"FAILED: {c.name}: {c.detail}", file=sys.stderr)
        return (1 if failed else 0), bool(failed)

    return run_main("bench-pipeline", body, procs.close, tmp, cfg.keep_temp, "stack dir and logs")


if __name__ == "__main__":
    sys.exit(main())
