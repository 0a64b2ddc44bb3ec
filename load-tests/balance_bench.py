#!/usr/bin/env python3
"""CPU per event of the CQL balance projector and of Cassandra: one request per partition
(today's `BalanceProjector.project`) against one request per write (the projector before it),
on the same in-memory streams, in the same run, against one Cassandra node.

    .venv/bin/python load-tests/balance_bench.py [--mix busy|spread|both] [--rounds 2]

What runs: a Cassandra 5.0 node of the bench's own (`scripts/cassandra.sh`, full JIT, as the
stream bench) or the cluster of BENCH_SCYLLA_HOSTS; streams from tests/balances/streams.py
(claims, reversals and lifecycle events of cards over two months, wallets' top-ups, debits
and refunds; each event carries its absolute total, as the command service writes them):

  busy    200 cards x 100 events + 50 wallets x 40 events (cards see many claims a batch)
  spread  10,000 cards x 4 events + 2,000 wallets x 4 events (a card about once in 20 batches)

Each (mix, mode) pass projects the whole stream in batches of --batch events (the consumer's
batch size) into a fresh keyspace; a warm-up pass of each mode comes first, not counted
(Cassandra's JIT), then --rounds rounds alternate the modes. Measured around the passes only
(the streams are built before): CPU seconds of this process (the projector and the driver's
I/O thread; /proc/self/stat) and of the Cassandra JVM (/proc/<pid>/stat), per event of the
stream, and CQL writes and requests per event. Ratios new/old are of the same run.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: the project's packages live at the root
    sys.path.insert(0, str(ROOT))

from bench_common import (  # noqa: E402
    BenchError,
    cpu_snapshot,
    free_port,
    machine,
    machine_line,
    markdown_table,
    run_main,
    write_json,
)
from cassandra.concurrent import execute_concurrent  # type: ignore[import-untyped]  # noqa: E402
from stream_bench import cassandra_sh, local_dc  # noqa: E402

from infrastructure.cassandra.migrations import migrate  # noqa: E402
from infrastructure.cassandra.session import CqlConfig, connect, parse_hosts  # noqa: E402
from infrastructure.eventstore.port import RecordedEvent  # noqa: E402
from projection_service.balances.consumer import BalanceConsumer  # noqa: E402
from projection_service.balances.projector import BalanceProjector, ProjectResult  # noqa: E402
from tests.balances.streams import busy_stream  # noqa: E402

MIXES: dict[str, Callable[[], list[RecordedEvent]]] = {
    "busy": lambda: busy_stream(
        1, cards=200, wallets=50, events_per_card=100, events_per_wallet=40
    ),
    "spread": lambda: busy_stream(
        2, cards=10_000, wallets=2_000, events_per_card=4, events_per_wallet=4, month_turn=3
    ),
}


class PerWriteProjector(BalanceProjector):
    """The projector before per-partition requests: the same writes, one request each."""

    def project(self, events: Sequence[RecordedEvent]) -> ProjectResult:
        self.refresh()
        writes, skipped, bad = self.plan(events)
        sent = [(w.statement, w.params) for w in writes]
        if sent:
            execute_concurrent(
                self.session, sent, concurrency=self.concurrency, raise_on_first_error=True
            )
        balance_events = len(events) - skipped - len(bad)
        return ProjectResult(balance_events, skipped, tuple(bad), len(writes), len(sent))


MODES: dict[str, type[BalanceProjector]] = {
    "per write (old)": PerWriteProjector,
    "per partition (new)": BalanceProjector,
}


@dataclass
class Pass:
    mix: str
    mode: str
    events: int
    seconds: float
    own_cpu: float
    cassandra_cpu: float
    writes: int
    requests: int


def _cpu(pid: int | None) -> tuple[float, float]:
    snap = cpu_snapshot()
    own = snap[os.getpid()].cpu
    return own, snap[pid].cpu if pid is not None and pid in snap else float("nan")


def run_pass(
    session: Any, config: CqlConfig, pid: int | None, mix: str, mode: str,
    events: list[RecordedEvent], batch: int, n: int,
) -> Pass:  # fmt: skip
    keyspace = f"balance_bench_{n}"
    session.execute(f"DROP KEYSPACE IF EXISTS {keyspace}", timeout=120)
    migrate(session, CqlConfig(config.hosts, keyspace, local_dc=config.local_dc))
    projector = MODES[mode](session, keyspace)
    writes = requests = 0
    own0, node0 = _cpu(pid)
    t0 = time.monotonic()
    for i in range(0, len(events), batch):
        result = projector.project(events[i : i + batch])
        writes += result.statements
        requests += result.requests
    seconds = time.monotonic() - t0
    own1, node1 = _cpu(pid)
    session.execute(f"DROP KEYSPACE IF EXISTS {keyspace}", timeout=120)
    return Pass(mix, mode, len(events), seconds, own1 - own0, node1 - node0, writes, requests)


def _us(seconds: float, events: int) -> str:
    return f"{1e6 * seconds / events:,.0f}"


def report(passes: list[Pass]) -> tuple[str, list[dict[str, Any]]]:
    rows: list[list[str]] = []
    doc: list[dict[str, Any]] = []
    old_mode = next(iter(MODES))
    for mix in dict.fromkeys(p.mix for p in passes):
        sums: dict[str, Pass] = {}
        for mode in MODES:
            mine = [p for p in passes if p.mix == mix and p.mode == mode]
            sums[mode] = Pass(
                mix, mode, sum(p.events for p in mine), sum(p.seconds for p in mine),
                sum(p.own_cpu for p in mine), sum(p.cassandra_cpu for p in mine),
                sum(p.writes for p in mine), sum(p.requests for p in mine),
            )  # fmt: skip
        for mode, s in sums.items():
            old = sums[old_mode]
            rows.append([
                mix, mode, f"{s.events:,}", f"{s.events / s.seconds:,.0f}",
                f"{s.writes / s.events:.2f}", f"{s.requests / s.events:.2f}",
                _us(s.own_cpu, s.events), f"{s.own_cpu / old.own_cpu:.2f}",
                _us(s.cassandra_cpu, s.events), f"{s.cassandra_cpu / old.cassandra_cpu:.2f}",
            ])  # fmt: skip
            doc.append({**vars(s), "own_us_per_event": 1e6 * s.own_cpu / s.events,
                        "cassandra_us_per_event": 1e6 * s.cassandra_cpu / s.events})  # fmt: skip
    head = [
        "mix", "projector", "events", "events/s", "writes/event", "requests/event",
        "projector µs/event", "ratio", "Cassandra µs/event", "ratio",
    ]  # fmt: skip
    return markdown_table(head, rows), doc


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    p.add_argument("--mix", choices=(*MIXES, "both"), default="both")
    p.add_argument("--rounds", type=int, default=2, help="measured rounds per mode (2)")
    p.add_argument("--batch", type=int, default=BalanceConsumer.batch_size, help="events a batch")
    p.add_argument("--json", type=Path, help="also write the figures here")
    p.add_argument("--keep-temp", action="store_true")
    return p.parse_args()


def body(a: argparse.Namespace, tmp: Path, stops: list[Callable[[], None]]) -> tuple[int, bool]:
    m = machine()
    print(machine_line(m))
    hosts, pid = os.environ.get("BENCH_SCYLLA_HOSTS"), None
    if not hosts:
        data = tmp / "cassandra"
        data.mkdir()

        def stop() -> None:  # the data goes with the temp dir: no drain
            cassandra_sh("stop", data, CASSANDRA_STOP_TIMEOUT="0")

        stops.append(stop)
        out, _ = cassandra_sh("start", data, str(free_port()))
        hosts = out.strip().splitlines()[-1].strip()
        pid = int((data / "cassandra.pid").read_text().strip())
    config = CqlConfig(parse_hosts(hosts), "balance_bench", local_dc=local_dc(hosts))
    mixes = list(MIXES) if a.mix == "both" else [a.mix]
    streams = {mix: MIXES[mix]() for mix in mixes}
    passes: list[Pass] = []
    n = 0
    with connect(config) as cql:
        for rnd in range(a.rounds + 1):
            for mix in mixes:
                # alternate which mode goes first, so drift on the box hits both alike
                for mode in MODES if rnd % 2 else reversed(MODES):
                    n += 1
                    done = run_pass(cql.session, config, pid, mix, mode, streams[mix], a.batch, n)
                    print(f"round {rnd} {mix} {mode}: {done.seconds:.1f}s", flush=True)
                    if rnd:  # round 0 warms the JIT up
                        passes.append(done)
    table, doc = report(passes)
    print(f"batches of {a.batch} events, {a.rounds} rounds, commit {m['git']}")
    print(table)
    if a.json:
        write_json(a.json, {"machine": m, "batch": a.batch, "rounds": a.rounds, "passes": doc})
    return 0, False


def main() -> int:
    a = parse()
    if a.rounds < 1 or a.batch < 1:
        raise SystemExit("--rounds and --batch must be positive")
    tmp = Path(tempfile.mkdtemp(prefix="balance-bench-"))
    stops: list[Callable[[], None]] = []

    def close() -> None:
        for stop in stops:
            try:
                stop()
            except BenchError as exc:
                print(f"balance_bench: {exc}", file=sys.stderr)

    return run_main("balance_bench", lambda: body(a, tmp, stops), close, tmp, a.keep_temp, "logs")


if __name__ == "__main__":
    sys.exit(main())
