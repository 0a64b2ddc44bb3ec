"""`make bench-reads`: the gateway's card reads (GraphQL and REST) next to bare endpoints.

Starts what it measures on this machine, on free ports, and stops it again by PID (also on
error or Ctrl-C), with bench.py's machinery (bench.Processes, bench.start_target, bench.wrk):

1. Its own PostgreSQL (scripts/pg.sh, fsync on) unless BENCH_POSTGRES_URL is set;
   `healthpay db migrate --only sql`.
2. Seeds through the real write path: one `healthpay serve-commands` process, --cards cards
   (bench.create_cards), each with one beneficiary and --claims claims for it (pharmacy
   token, unique prescription ids, all approved); then stops it and projects the event store
   into the read models with the real projector code, `healthpay projections rebuild
   read_models` (no Kafka needed: the rebuild replays the event store).
3. Starts one `healthpay serve-gateway` process and one of each bare app (bare_apps.py),
   mints a member token per card (the card's owner), and checks a sample of answers in
   Python first: 200, no GraphQL "errors", the card's beneficiary and claims present, and
   another member's card invisible.
4. wrk (load-tests/wrk/reads.lua) at a fixed concurrency, warm-up then measured run, on:
   the bare ASGI and bare FastAPI apps (the GraphQL request itself, POSTed: they parse the
   JSON body and answer a small JSON), the GraphQL card query, and the REST card read. Each
   request reads the next card with its owner's token.
5. Prints a Markdown table: req/s, p50/p95/p99 and their ratios to the bare apps measured in
   the same run (the figures of a shared, noisy machine only mean something as ratios), the
   CPU per request of the app and of PostgreSQL, the machine and the date.

Exit status: 0 when every read succeeded, 1 when any gateway read failed (non-2xx, socket
error, or a GraphQL answer with errors or without its card, warm-up included), 2 when the bench
could not be set up, 130 on Ctrl-C.

    .venv/bin/python load-tests/read_bench.py           # full run (~2.5 minutes on 2 cores)
    .venv/bin/python load-tests/read_bench.py --quick   # smoke run (~25 s)
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path
from typing import Any

import bench
import httpx
from bench_common import (
    ROOT,
    BenchError,
    count_events,
    cpu_snapshot,
    machine,
    machine_line,
    markdown_table,
    run_checked,
    run_main,
    write_json,
)

if str(ROOT) not in sys.path:  # run as a script: the project's packages live at the root
    sys.path.insert(0, str(ROOT))

from infrastructure.auth.tokens import Role, SigningKey, TokenCodec
from infrastructure.settings import Settings

READS_SCRIPT = bench.LOAD_TESTS / "wrk" / "reads.lua"
CARD_QUERY = (
    "query Card($id: ID!) { medcard(id: $id) { id currentMonthSpent remainingThisMonth"
    " beneficiaries { name } claims(first: 10) { edges { node { id coveredAmount } } } } }"
)  # the query reads.lua sends
CLAIMS_SHOWN = 10
SAMPLE = 20


@dataclass(frozen=True)
class ReadConfig:
    duration: int
    warmup: int
    connections: int
    threads: int
    cards: int
    claims: int
    bare: tuple[str, ...]
    postgres_url: str | None
    json_out: Path | None
    keep_temp: bool

    def wrk_config(self) -> bench.Config:
        """What bench.wrk and bench.start_target read: threads, connections, one process."""
        return bench.Config(
            duration=self.duration,
            warmup=self.warmup,
            connections=self.connections,
            threads=self.threads,
            cards=self.cards,
            processes=(1,),
            bare=self.bare,
            claims=True,
            nginx_workers=1,
            nginx_single=False,
            postgres_url=self.postgres_url,
            json_out=self.json_out,
            keep_temp=self.keep_temp,
        )


def parse_args(argv: Sequence[str] | None = None) -> ReadConfig:
    p = argparse.ArgumentParser(
        description="Read-path benchmark: GraphQL and REST card reads (docs/benchmarks.md).",
        epilog="BENCH_POSTGRES_URL uses that server instead of starting one.",
    )
    p.add_argument("--quick", action="store_true", help="smoke run: 3 s per target, 50 cards")
    p.add_argument("--duration", type=int, default=None, help="seconds per measured run (20)")
    p.add_argument("--warmup", type=int, default=None, help="seconds of warm-up per target (5)")
    p.add_argument("--connections", type=int, default=16, help="requests in flight (16)")
    p.add_argument("--threads", type=int, default=2, help="wrk threads (2)")
    p.add_argument("--cards", type=int, default=None, help="cards read in turn (200)")
    p.add_argument("--claims", type=int, default=None, help="claims per card (50)")
    p.add_argument("--bare", default="asgi,fastapi", help="bare apps: asgi,fastapi,starlette")
    p.add_argument("--json", type=Path, default=None, help="also write the results as JSON")
    p.add_argument("--keep-temp", action="store_true", help="keep logs and the reads file")
    a = p.parse_args(argv)
    bare = tuple(x.strip() for x in a.bare.split(",") if x.strip())
    if not bare or set(bare) - set(bench.LABELS):
        p.error(f"--bare takes some of {', '.join(bench.LABELS)}")
    if a.threads < 1 or a.connections < a.threads:
        p.error("--connections must be >= --threads >= 1")
    cards = a.cards or (50 if a.quick else 200)
    claims = a.claims if a.claims is not None else (10 if a.quick else 50)
    if cards < 2 or claims < 1:
        p.error("--cards must be >= 2 and --claims >= 1")
    return ReadConfig(
        duration=a.duration or (3 if a.quick else 20),
        warmup=a.warmup if a.warmup is not None else (1 if a.quick else 5),
        connections=a.connections,
        threads=a.threads,
        cards=cards,
        claims=claims,
        bare=bare,
        postgres_url=os.environ.get("BENCH_POSTGRES_URL") or None,
        json_out=a.json,
        keep_temp=a.keep_temp,
    )


# --------------------------------------------------------------------------- seeding


def _beneficiary(i: int) -> dict[str, Any]:
    born = date(1990, 1, 1)
    return {
        "relationship": "spouse",
        "nationalId": f"2{born:%y%m%d}01{i % 10000:04d}1",
        "name": f"Bench Beneficiary {i}",
        "dateOfBirth": born.isoformat(),
        "phoneNumber": "01012345678",
    }


def seed_claims(
    port: int, tokens: dict[str, str], cards: list[str], per_card: int, run_id: str
) -> None:
    """One beneficiary per card (admin), then `per_card` approved claims for it (pharmacy)."""
    local = threading.local()

    def client() -> httpx.Client:
        if not hasattr(local, "client"):
            local.client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)
        c: httpx.Client = local.client
        return c

    def expect(response: httpx.Response, what: str) -> dict[str, Any]:
        if response.status_code != 201:
            raise BenchError(f"{what} answered {response.status_code}: {response.text[:500]}")
        body: dict[str, Any] = response.json()
        return body

    def one(i: int) -> None:
        card = cards[i]
        admin = {"Authorization": f"Bearer {tokens['admin']}"}
        pharmacy = {"Authorization": f"Bearer {tokens['pharmacy']}"}
        added = expect(
            client().post(
                f"/api/v1/medcards/{card}/beneficiaries", json=_beneficiary(i), headers=admin
            ),
            "adding a beneficiary",
        )
        for j in range(per_card):
            cents = 1000 + (i * 7919 + j * 104729) % 49000  # 10.00 .. 500.00 EGP
            doc = expect(
                client().post(
                    f"/api/v1/medcards/{card}/claims/prescriptions",
                    json={
                        "prescriptionId": f"rx-read-{run_id}-{i}-{j}",
                        "totalAmount": cents / 100,
                        "beneficiaryId": added["id"],
                    },
                    headers=pharmacy,
                ),
                "a claim",
            )
            if doc.get("decision") != "approved":
                raise BenchError(f"a seeding claim was {doc.get('decision')!r}: {doc}")

    with ThreadPoolExecutor(max_workers=6) as pool:
        list(pool.map(one, range(len(cards))))


def member_tokens(env: dict[str, str], run_id: str, count: int) -> list[str]:
    """bench.create_cards gives card i to user `u-bench-<run>-<i>`: that member's token."""
    d = Settings()
    codec = TokenCodec(SigningKey.of(env["JWT_SECRET"]), d.jwt_issuer, d.jwt_audience)
    return [
        codec.issue(Role.MEMBER, f"u-bench-{run_id}-{i}", ttl_seconds=6 * 3600)
        for i in range(count)
    ]


# --------------------------------------------------------------------------- checks


def check_answers(port: int, cards: list[str], tokens: list[str], per_card: int) -> None:
    """A sample of cards read once each way, before wrk: what a 200 alone would not show."""
    shown = min(CLAIMS_SHOWN, per_card)
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as c:
        for i in random.sample(range(len(cards)), min(SAMPLE, len(cards))):
            auth = {"Authorization": f"Bearer {tokens[i]}"}
            r = c.post(
                "/graphql", json={"query": CARD_QUERY, "variables": {"id": cards[i]}}, headers=auth
            )
            doc = r.json() if r.status_code == 200 else {}
            card = (doc.get("data") or {}).get("medcard")
            if r.status_code != 200 or "errors" in doc or not card:
                raise BenchError(f"GraphQL card {cards[i]}: {r.status_code} {r.text[:800]}")
            edges = card["claims"]["edges"]
            if len(card["beneficiaries"]) < 1 or len(edges) != shown:
                raise BenchError(
                    f"GraphQL card {cards[i]}: {len(card['beneficiaries'])} beneficiaries, "
                    f"{len(edges)} claims (expected >= 1 and {shown}): is the projection complete?"
                )
            rest = c.get(f"/api/v1/medcards/{cards[i]}", headers=auth)
            if rest.status_code != 200 or rest.json().get("id") != cards[i]:
                raise BenchError(f"REST card {cards[i]}: {rest.status_code} {rest.text[:500]}")
        # the member path is a real authorization: another member's card is not visible
        other = {"Authorization": f"Bearer {tokens[1]}"}
        r = c.post(
            "/graphql", json={"query": CARD_QUERY, "variables": {"id": cards[0]}}, headers=other
        )
        if r.status_code != 200 or (r.json().get("data") or {}).get("medcard") is not None:
            raise BenchError(f"another member read card {cards[0]}: {r.text[:300]}")
        if c.get(f"/api/v1/medcards/{cards[0]}", headers=other).status_code != 404:
            raise BenchError(f"another member read card {cards[0]} over REST")


# --------------------------------------------------------------------------- measuring


@dataclass
class ReadRun:
    scenario: str
    kind: str  # asgi | fastapi | starlette | graphql | rest
    rps: float
    requests: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    non2xx: int
    socket_errors: int
    bad_bodies: int
    statuses: dict[str, int]
    warmup_failures: int
    app_cpu_us: float
    db_cpu_us: float | None

    @property
    def failures(self) -> int:
        return self.non2xx + self.socket_errors + self.bad_bodies + self.warmup_failures


def _wrk_run(
    cfg: ReadConfig,
    procs: bench.Processes,
    target: bench.Target,
    read_kind: str,
    seconds: int,
    env: dict[str, str],
    log_name: str,
) -> tuple[dict[str, Any], int]:
    """One wrk run: its WRK_RESULT and how many bodies reads.lua found wrong."""
    result = bench.wrk(
        cfg.wrk_config(),
        READS_SCRIPT,
        target.url,
        seconds,
        {**env, "READ_KIND": read_kind},
        procs,
        log_name,
    )
    text = (procs.logs / f"{log_name}.log").read_text(errors="replace")
    line = next((ln for ln in text.splitlines() if ln.startswith("READ_CHECK ")), None)
    if line is None:
        raise BenchError(f"{log_name}: reads.lua printed no READ_CHECK line")
    return result, int(json.loads(line.removeprefix("READ_CHECK "))["bad_bodies"])


def measure(
    cfg: ReadConfig,
    procs: bench.Processes,
    target: bench.Target,
    kind: str,
    env: dict[str, str],
    postmaster: int | None,
) -> ReadRun:
    read_kind = "rest" if kind == "rest" else "graphql"
    scenario = {"graphql": "GraphQL card query", "rest": "REST GET card"}.get(
        kind, bench.LABELS.get(kind, kind)
    )
    warm_failures = 0
    if cfg.warmup > 0:
        warm, warm_bad = _wrk_run(cfg, procs, target, read_kind, cfg.warmup, env, f"wrk-{kind}-w")
        warm_failures = bench.wrk_failures(warm) + warm_bad
    before = cpu_snapshot()
    r, bad = _wrk_run(cfg, procs, target, read_kind, cfg.duration, env, f"wrk-{kind}")
    cpu = bench.cpu_used(before, cpu_snapshot(), target, postmaster)
    per_request = 1e6 / max(1, int(r["requests"]))
    run = ReadRun(
        scenario=scenario,
        kind=kind,
        **bench.wrk_figures(r),
        bad_bodies=bad,
        warmup_failures=warm_failures,
        app_cpu_us=cpu["app"] * per_request,
        db_cpu_us=cpu["db"] * per_request if postmaster and kind in ("graphql", "rest") else None,
    )
    codes = " ".join(f"{k}={v}" for k, v in sorted(run.statuses.items()))
    print(
        f"  {scenario:<20} {run.rps:8.0f} req/s  p50 {run.p50_ms:6.2f}  p95 {run.p95_ms:6.2f}"
        f"  p99 {run.p99_ms:6.2f} ms  app {run.app_cpu_us:5.0f} µs/req  [{codes}]"
        f"{f'  bad bodies {bad}' if bad else ''}"
        f"{f'  socket errors {run.socket_errors}' if run.socket_errors else ''}"
        f"{f'  warm-up failures {warm_failures}' if warm_failures else ''}",
        flush=True,
    )
    return run


# --------------------------------------------------------------------------- report


def _percent(share: float) -> str:
    return f"{100 * share:.1f} %" if share < 0.1 else f"{100 * share:.0f} %"


def table(runs: list[ReadRun], bare: Sequence[str]) -> str:
    """Markdown. Ratios compare a gateway read with each bare app measured in this run."""
    ref = {r.kind: r for r in runs if r.kind in bare}
    head = ["scenario", "req/s", *(f"req/s % of {bench.LABELS[k]}" for k in bare)]
    head += ["p50 ms", "p95 ms", "p99 ms", *(f"p95 ÷ {bench.LABELS[k]} p95" for k in bare)]
    head += ["non-2xx / errors", "app CPU µs/req", "PG CPU µs/req"]
    rows = []
    for r in runs:
        gateway = r.kind not in bare
        cells = [r.scenario, f"{r.rps:,.0f}"]
        cells += [_percent(r.rps / ref[k].rps) if gateway else "" for k in bare]
        cells += [f"{r.p50_ms:.2f}", f"{r.p95_ms:.2f}", f"{r.p99_ms:.2f}"]
        cells += [f"{r.p95_ms / ref[k].p95_ms:.1f}x" if gateway else "" for k in bare]
        cells += [str(r.failures), f"{r.app_cpu_us:.0f}"]
        cells.append("" if r.db_cpu_us is None else f"{r.db_cpu_us:.0f}")
        rows.append(cells)
    return markdown_table(head, rows)


def report(cfg: ReadConfig, facts: dict[str, Any], runs: list[ReadRun]) -> str:
    m, pg, seed = facts["machine"], facts.get("postgres") or {}, facts["seed"]
    return "\n".join(
        [
            "",
            f"HealthPay Ledger read bench — {m['date']}, git {m['git']}",
            machine_line(m),
            f"postgres: {pg.get('server_version')} shared_buffers={pg.get('shared_buffers')}",
            f"data: {seed['cards']} cards, each 1 beneficiary + {seed['claims_per_card']} claims;"
            f" {seed['events']} events, projected by `healthpay projections rebuild read_models`"
            f" in {seed['rebuild_s']:.1f} s",
            f"wrk: {cfg.threads} threads, {cfg.connections} connections, {cfg.duration} s"
            f" (+{cfg.warmup} s warm-up) per target; one process per target; each request"
            " reads the next card with its owner's member token; wrk, the servers and"
            " PostgreSQL share this machine",
            "",
            table(runs, cfg.bare),
            "",
        ]
    )


# --------------------------------------------------------------------------- main


def prepare(
    cfg: ReadConfig, procs: bench.Processes, tmp: Path, facts: dict[str, Any], run_id: str
) -> tuple[dict[str, str], list[str], int | None]:
    """Database, seeded and projected: the gateway's environment, the cards, postmaster PID."""
    if why := bench.service_ready():
        raise BenchError(f"the services are not available: {why}")
    url = cfg.postgres_url or bench.start_postgres(procs, tmp)
    facts["postgres"] = bench.postgres_facts(url)
    env = {**os.environ, "POSTGRES_URL": url, "JWT_SECRET": secrets.token_hex(32)}
    run_checked([bench.HEALTHPAY, "db", "migrate", "--only", "sql"], env=env)
    tokens = bench.make_tokens(env)
    events_before = count_events(url)
    writer = bench.start_target(
        procs,
        tmp,
        cfg.wrk_config(),
        "commands",
        1,
        lambda port: [
            bench.HEALTHPAY,
            "serve-commands",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        env,
        affinity=False,
    )
    try:
        t0 = time.monotonic()
        port = writer.direct_ports[0]
        cards = bench.create_cards(port, tokens["admin"], cfg.cards, run_id)
        seed_claims(port, tokens, cards, cfg.claims, run_id)
        seeded = time.monotonic() - t0
    finally:
        bench.stop_target(procs, writer)
    events = count_events(url) - events_before
    print(f"  seeded {len(cards)} cards, {len(cards) * cfg.claims} claims in {seeded:.1f} s")
    t0 = time.monotonic()
    run_checked([bench.HEALTHPAY, "projections", "rebuild", "read_models"], env=env, timeout=1800)
    rebuild_s = time.monotonic() - t0
    print(f"  projected {events} events into the read models in {rebuild_s:.1f} s", flush=True)
    facts["seed"] = {
        "cards": len(cards),
        "claims_per_card": cfg.claims,
        "events": events,
        "seed_s": round(seeded, 1),
        "rebuild_s": round(rebuild_s, 1),
    }
    postmaster = None if cfg.postgres_url else bench.postmaster_pid(tmp / "pg")
    return env, cards, postmaster


def run(cfg: ReadConfig, procs: bench.Processes, tmp: Path) -> tuple[dict[str, Any], list[ReadRun]]:
    run_id = f"{int(time.time())}{secrets.token_hex(2)}"
    facts: dict[str, Any] = {"machine": machine(), "config": asdict(cfg) | {"json_out": None}}
    facts["config"]["postgres_url"] = "BENCH_POSTGRES_URL" if cfg.postgres_url else "its own"
    print(f"read bench {run_id}: logs in {tmp}", flush=True)
    env, cards, postmaster = prepare(cfg, procs, tmp, facts, run_id)
    members = member_tokens(env, run_id, len(cards))
    reads_file = tmp / "reads.tsv"
    reads_file.write_text("".join(f"{c} {t}\n" for c, t in zip(cards, members, strict=True)))
    wrk_env = {"READS_FILE": str(reads_file)}
    wcfg = cfg.wrk_config()
    runs: list[ReadRun] = []
    for kind in cfg.bare:
        target = bench.start_target(procs, tmp, wcfg, kind, 1, bench.bare_argv(kind), None, False)
        try:
            runs.append(measure(cfg, procs, target, kind, wrk_env, None))
        finally:
            bench.stop_target(procs, target)
    gateway = bench.start_target(
        procs,
        tmp,
        wcfg,
        "gateway",
        1,
        lambda port: [bench.HEALTHPAY, "serve-gateway", "--host", "127.0.0.1", "--port", str(port)],
        env,
        affinity=False,
    )
    try:
        check_answers(gateway.direct_ports[0], cards, members, cfg.claims)
        print(f"  {SAMPLE} cards read and checked over GraphQL and REST", flush=True)
        for kind in ("graphql", "rest"):
            runs.append(measure(cfg, procs, gateway, kind, wrk_env, postmaster))
    finally:
        bench.stop_target(procs, gateway)
    return facts, runs


def main(argv: Sequence[str] | None = None) -> int:
    cfg = parse_args(argv)
    if not Path(bench.WRK).exists():
        print(f"read bench: {bench.WRK} is not installed", file=sys.stderr)
        return 2
    tmp = Path(tempfile.mkdtemp(prefix="healthpay-read-bench-"))
    tmp.chmod(0o755)  # PostgreSQL (user postgres) works inside it
    (tmp / "logs").mkdir()
    procs = bench.Processes(tmp / "logs")

    def body() -> tuple[int, bool]:
        facts, runs = run(cfg, procs, tmp)
        print(report(cfg, facts, runs))
        if cfg.json_out:
            write_json(cfg.json_out, {**facts, "runs": [asdict(r) for r in runs]})
        failed = sum(r.failures for r in runs if r.kind in ("graphql", "rest"))
        if failed:
            print(f"FAILED: {failed} gateway reads did not succeed", file=sys.stderr)
        if bare_failed := sum(r.failures for r in runs if r.kind in cfg.bare):
            print(f"WARNING: {bare_failed} bare-app requests failed", file=sys.stderr)
        return (1 if failed else 0), False

    return run_main("read bench", body, procs.close, tmp, cfg.keep_temp, "logs")


if __name__ == "__main__":
    sys.exit(main())
