"""`make bench-memory`: one command-service process's memory under a long claim load.

A bench, not a test: it prints RSS over time (it should level off and stay flat once the
aggregate cache is full) and says nothing about speed beyond claims/s for orientation.

1. Its own PostgreSQL through scripts/pg.sh on a free port (fsync on), unless
   BENCH_POSTGRES_URL is set; the SQL migrations.
2. The real command service built in this process by its composition root
   (`create_app`, started through its lifespan, the garbage-collector settings of
   `healthpay serve-commands`), driven below HTTP: the claim command itself
   (claim_commands.claim_prescription -> Executor -> aggregate cache -> group commit ->
   PostgresEventStore), from --concurrency tasks. HTTP parsing, JSON answers and token
   checks are skipped: they keep no state across requests, and skipping them makes a
   million claims fit in minutes on two cores shared with PostgreSQL.
3. Issues --cards cards (monthly limit 100,000,000: no claim is rejected for the limit),
   then --claims claims, each on a card picked at random with a prescription id of its own,
   and every --every seconds prints: claims done, claims/s since the last line, RSS, the
   cache's entries and estimated bytes, its hit ratio, snapshots written.
4. Ends with the RSS at a quarter, half, three quarters and the end of the run, and the
   growth over the second half; counts the events stored against the claims answered.

Exit status: 0 when every claim was answered as a new charge and stored, 1 otherwise, 2
when the bench could not be set up, 130 on Ctrl-C.

    .venv/bin/python load-tests/memory_bench.py                     # 1M claims, 10k cards
    .venv/bin/python load-tests/memory_bench.py --claims 50000 --cards 1000   # a short run
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import random
import secrets
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import bench
from bench_common import (
    ROOT,
    BenchError,
    count_events,
    machine,
    machine_line,
    run_main,
    write_json,
)
from pydantic import SecretStr

if str(ROOT) not in sys.path:  # run as a script: the project's packages live at the root
    sys.path.insert(0, str(ROOT))

from command_service.aggregates import Aggregates
from command_service.app import create_app
from command_service.claim_commands import claim_prescription
from command_service.execution import CommandContext, Executor
from command_service.medcard_commands import issue_card
from command_service.server import GC_THRESHOLDS
from infrastructure.auth.tokens import Principal, Role
from infrastructure.postgres.migrations import migrate_sync
from infrastructure.settings import Settings
from schemas.api.commands import ClaimBody, IssueCardBody

ADMIN = Principal("bench-admin", Role.ADMIN)
PHARMACY = Principal("ph-bench", Role.PHARMACY, "ph-bench")


@dataclass(frozen=True, slots=True)
class Config:
    claims: int
    cards: int
    concurrency: int
    every: float
    cache_bytes: int
    postgres_url: str | None
    json_out: Path | None
    keep_temp: bool


@dataclass(frozen=True, slots=True)
class Sample:
    seconds: float
    claims: int
    claims_per_s: float
    rss_mib: float
    cached: int
    cache_mib: float
    hit_ratio: float  # cache hits / loads since the last sample
    snapshots: int
    cpu_us_per_claim: float  # this process's CPU (user + system) since the last sample


def parse_args(argv: Sequence[str] | None) -> Config:
    d = Settings()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--claims", type=int, default=1_000_000, help="claims to post (1,000,000)")
    p.add_argument("--cards", type=int, default=10_000, help="cards they spread over (10,000)")
    p.add_argument("--concurrency", type=int, default=512, help="claims in flight (512)")
    p.add_argument("--every", type=float, default=30.0, help="seconds between samples (30)")
    p.add_argument(
        "--cache-bytes",
        type=int,
        default=d.aggregate_cache_bytes,
        help=f"the cache's budget (default AGGREGATE_CACHE_BYTES: {d.aggregate_cache_bytes})",
    )
    p.add_argument("--json", type=Path, default=None, help="also write the samples as JSON")
    p.add_argument("--keep-temp", action="store_true", help="keep the temp dir (PostgreSQL log)")
    a = p.parse_args(argv)
    if a.claims < 1 or a.cards < 1 or a.concurrency < 1 or a.every <= 0:
        p.error("--claims, --cards, --concurrency and --every must be positive")
    return Config(
        claims=a.claims,
        cards=a.cards,
        concurrency=a.concurrency,
        every=a.every,
        cache_bytes=a.cache_bytes,
        postgres_url=os.environ.get("BENCH_POSTGRES_URL") or None,
        json_out=a.json,
        keep_temp=a.keep_temp,
    )


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise BenchError("no VmRSS in /proc/self/status")


def context() -> CommandContext:
    # The metadata a request through the API carries (http_endpoints._metadata).
    actor = {"role": PHARMACY.role.value, "sub": PHARMACY.subject, "pharmacy_id": "ph-bench"}
    return CommandContext(
        at=datetime.now(UTC), metadata={"correlation_id": os.urandom(8).hex(), "actor": actor}
    )


@dataclass(frozen=True, slots=True)
class Mark:
    wall: float
    cpu: float
    claims: int
    hits: int
    misses: int


class Run:
    """The load: cards, then claims from `concurrency` tasks, sampled every `every` s."""

    def __init__(self, cfg: Config, executor: Executor) -> None:
        self.cfg = cfg
        self.executor = executor
        self.aggregates: Aggregates = executor.aggregates
        self.cards: list[UUID] = []
        self.sent = 0
        self.answered = 0  # new charges answered
        self.failed = 0
        self.failures: list[str] = []  # the first few, to show
        self.samples: list[Sample] = []

    async def issue_cards(self) -> None:
        body = IssueCardBody.model_validate(
            {"userId": "bench-member", "cardType": "platinum", "monthlyLimit": "100000000"}
        )

        async def issue(n: int) -> UUID:
            named = body.model_copy(update={"user_id": f"bench-member-{n}"})
            return (await issue_card(self.executor, ADMIN, named, context())).aggregate_id

        step = self.cfg.concurrency
        for start in range(0, self.cfg.cards, step):
            end = min(start + step, self.cfg.cards)
            self.cards += await asyncio.gather(*(issue(n) for n in range(start, end)))

    async def claim_forever(self, rng: random.Random) -> None:
        while self.sent < self.cfg.claims:
            self.sent += 1
            body = ClaimBody.model_validate(
                {"prescriptionId": f"rx-bench-{self.sent}", "totalAmount": "10.00"}
            )
            try:
                outcome = await claim_prescription(
                    self.executor, PHARMACY, rng.choice(self.cards), body, context()
                )
            except Exception as exc:  # counted and shown; the load goes on
                self.fail(repr(exc))
                continue
            if outcome.created:
                self.answered += 1
            else:
                self.fail(f"claim {self.sent} was answered as a replay")

    def fail(self, why: str) -> None:
        self.failed += 1
        if len(self.failures) < 20:
            self.failures.append(why)

    def sample(self, started: float, last: Mark) -> Mark:
        a = self.aggregates
        mark = Mark(
            time.monotonic(), time.process_time(), self.answered, a.cache_hits, a.cache_misses
        )
        claims = mark.claims - last.claims
        loads = (mark.hits - last.hits) + (mark.misses - last.misses)
        sample = Sample(
            seconds=round(mark.wall - started, 1),
            claims=mark.claims,
            claims_per_s=round(claims / max(mark.wall - last.wall, 1e-9), 1),
            rss_mib=round(rss_mib(), 1),
            cached=len(a),
            cache_mib=round(a.cache_bytes / 2**20, 1),
            hit_ratio=round((mark.hits - last.hits) / loads, 3) if loads else 0.0,
            snapshots=a.snapshots_taken,
            cpu_us_per_claim=round(1e6 * (mark.cpu - last.cpu) / claims) if claims else 0.0,
        )
        self.samples.append(sample)
        print(
            f"  {sample.seconds:6.0f} s {sample.claims:>9,} claims {sample.claims_per_s:6.0f}/s"
            f" {sample.cpu_us_per_claim:5.0f} µs CPU | RSS {sample.rss_mib:6.1f} MiB | cache"
            f" {sample.cached:>6,} states ~{sample.cache_mib:5.1f} MiB, hits {sample.hit_ratio:.3f}"
            f" | snapshots {sample.snapshots:,}",
            flush=True,
        )
        return mark

    async def claims(self) -> None:
        started = time.monotonic()
        last = self.sample(started, Mark(started, time.process_time(), 0, 0, 0))
        workers = [
            asyncio.create_task(self.claim_forever(random.Random(seed)))
            for seed in range(self.cfg.concurrency)
        ]
        done = asyncio.gather(*workers)
        while not done.done():
            await asyncio.wait([done], timeout=self.cfg.every)
            last = self.sample(started, last)
        await done


async def drive(cfg: Config, url: str) -> Run:
    # Tokens are never checked below HTTP, but the app needs a key to start.
    settings = Settings(
        jwt_secret=SecretStr(secrets.token_hex(32)),
        postgres_url=url,
        pool_min_size=4,
        pool_max_size=8,
        aggregate_cache_bytes=cfg.cache_bytes,
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        run = Run(cfg, app.state.write_side.executor)
        t0 = time.monotonic()
        await run.issue_cards()
        print(f"  {cfg.cards:,} cards issued in {time.monotonic() - t0:.1f} s", flush=True)
        # As `healthpay serve-commands` does once it is up (command_service/server.py).
        gc.collect()
        gc.freeze()
        gc.set_threshold(*GC_THRESHOLDS)
        await run.claims()
    return run


def summary(run: Run) -> dict[str, Any]:
    samples = run.samples
    last = len(samples) - 1
    at = {q: samples[round(q * last)] for q in (0.25, 0.5, 0.75, 1.0)}
    return {
        "rss_mib_at": {f"{int(q * 100)}%": s.rss_mib for q, s in at.items()},
        "rss_mib_max": max(s.rss_mib for s in samples),
        "rss_growth_second_half_mib": round(at[1.0].rss_mib - at[0.5].rss_mib, 1),
        "seconds": samples[-1].seconds,
        "claims_per_s": round(samples[-1].claims / max(samples[-1].seconds, 1e-9), 1),
    }


def main(argv: Sequence[str] | None = None) -> int:
    cfg = parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="healthpay-memory-bench-"))
    tmp.chmod(0o755)  # PostgreSQL (user postgres) works inside it
    (tmp / "logs").mkdir()
    procs = bench.Processes(tmp / "logs")

    def body() -> tuple[int, bool]:
        facts = machine()
        url = cfg.postgres_url or bench.start_postgres(procs, tmp)
        migrate_sync(url)
        pg = bench.postgres_facts(url)
        print(
            f"memory bench: {cfg.claims:,} claims over {cfg.cards:,} cards, {cfg.concurrency} in"
            f" flight, cache budget {cfg.cache_bytes / 2**20:.0f} MiB; in-process command"
            f" service (below HTTP) on PostgreSQL {pg['server_version']} fsync={pg['fsync']}",
            flush=True,
        )
        run = asyncio.run(drive(cfg, url))
        stored = count_events(url)
        result = summary(run)
        print(
            f"\nHealthPay Ledger memory bench — {facts['date']}, git {facts['git']}\n"
            f"{machine_line(facts)}\n"
            f"RSS at 25/50/75/100 %: {' / '.join(str(v) for v in result['rss_mib_at'].values())}"
            f" MiB; max {result['rss_mib_max']} MiB; second half"
            f" {result['rss_growth_second_half_mib']:+} MiB\n"
            f"{run.answered:,} claims answered in {result['seconds']:.0f} s"
            f" ({result['claims_per_s']:.0f}/s); event store: {stored:,} events for"
            f" {cfg.cards:,} cards and {run.answered:,} claims; {run.failed} failures"
        )
        for failure in run.failures:
            print(f"  failure: {failure}")
        if cfg.json_out is not None:
            document = {
                "config": {k: str(v) for k, v in asdict(cfg).items()},
                "machine": facts,
                "postgres": pg,
                "samples": [asdict(s) for s in run.samples],
                "summary": result,
            }
            write_json(cfg.json_out, document)
        ok = not run.failed and run.answered == cfg.claims and stored >= cfg.cards + cfg.claims
        return (0 if ok else 1), not ok

    return run_main("memory bench", body, procs.close, tmp, cfg.keep_temp, "logs")


if __name__ == "__main__":
    sys.exit(main())
