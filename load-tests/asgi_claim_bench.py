"""CPU per claim of the command service's ASGI path, in-process: this tree against a baseline.

    .venv/bin/python load-tests/asgi_claim_bench.py                       # vs main, PostgreSQL
    .venv/bin/python load-tests/asgi_claim_bench.py --baseline a4a03a3 --store memory
    .venv/bin/python load-tests/asgi_claim_bench.py --baseline none --rounds 3

No sockets, no HTTP parser: each claim is one ASGI call into the app that `create_app` builds
(started through its lifespan, with `healthpay serve-commands`' garbage-collector settings),
as uvicorn would make it — the scope, one `http.request` message with the whole body, the
answer's messages collected. What it measures is everything the service does per claim above
the server: routing, token check, body, the claim's decision, the event store append (group
commit, psycopg) and the answer. uvicorn's own share (parsing, socket writes) is not in it.

Each tree (this working tree and, unless `--baseline none`, the baseline commit exported with
`git archive` into a temp dir) runs in a worker process of its own, so both are measured in
the same run on the same box: the rounds alternate between the workers, one round at a time.
A round is `--claims` claims from `--concurrency` tasks on `--cards` cards (issued first, a
monthly limit no claim reaches), each with a prescription id of its own, the body and headers
of load-tests/medcard-claim.js. Per round: the worker's CPU (user + system, /proc/self/stat)
÷ claims answered 201, and with `--store postgres` the PostgreSQL server's CPU (its process
tree, /proc) ÷ the same. Figures: the median over rounds, after one warm-up round per worker.

`--store postgres` (default): the real event store on a private PostgreSQL (scripts/pg.sh on a
free port, fsync on; BENCH_POSTGRES_URL to use a running server), one fresh migrated database
per worker. `--store memory`: the in-memory event store (the Python path alone).

Exit status: 0 when every claim was answered 201, 1 otherwise, 2 when it could not be set up.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import random
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from bench_common import (
    ROOT,
    BenchError,
    cpu_snapshot,
    machine,
    machine_line,
    markdown_table,
    run_checked,
    run_main,
    tree_cpu,
    write_json,
)

HERE = Path(__file__).resolve()
CLAIM_PATH = "/api/v1/medcards/{}/claims/prescriptions"


@dataclass(frozen=True, slots=True)
class Config:
    baseline: str | None
    store: str
    rounds: int
    claims: int
    concurrency: int
    cards: int
    idempotency_keys: bool
    postgres_url: str | None
    json_out: Path | None
    keep_temp: bool


def parse_args(argv: Sequence[str] | None) -> Config:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--baseline", default="main", help="git revision to compare with, or none")
    p.add_argument("--store", choices=("postgres", "memory"), default="postgres")
    p.add_argument("--rounds", type=int, default=7, help="measured rounds per tree (7)")
    p.add_argument("--claims", type=int, default=2000, help="claims per round (2000)")
    p.add_argument("--concurrency", type=int, default=64, help="claims in flight (64)")
    p.add_argument("--cards", type=int, default=200, help="cards the claims spread over (200)")
    p.add_argument("--idempotency-keys", action="store_true", help="every claim sends a key")
    p.add_argument("--json", type=Path, default=None, help="also write the rounds as JSON")
    p.add_argument("--keep-temp", action="store_true", help="keep the temp dir (logs)")
    a = p.parse_args(argv)
    if min(a.rounds, a.claims, a.concurrency, a.cards) < 1:
        p.error("--rounds, --claims, --concurrency and --cards must be positive")
    return Config(
        baseline=None if a.baseline == "none" else a.baseline,
        store=a.store,
        rounds=a.rounds,
        claims=a.claims,
        concurrency=a.concurrency,
        cards=a.cards,
        idempotency_keys=a.idempotency_keys,
        postgres_url=os.environ.get("BENCH_POSTGRES_URL") or None,
        json_out=a.json,
        keep_temp=a.keep_temp,
    )


# ------------------------------------------------------------------ the worker (one tree)


def own_cpu() -> float:
    """User + system seconds of this process (all its threads), from /proc/self/stat."""
    stat = Path("/proc/self/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Asgi:
    """Requests as uvicorn hands them to the app: one scope, the whole body at once."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def post(
        self, path: str, body: bytes, headers: list[tuple[bytes, bytes]]
    ) -> tuple[int, bytes]:
        """The answer's status and body."""
        scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "server": ("127.0.0.1", 8000),
            "client": ("127.0.0.1", 40000),
            "scheme": "http",
            "method": "POST",
            "root_path": "",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "headers": [*headers, (b"content-length", str(len(body)).encode())],
            "state": {},
        }
        sent = False
        status = 0
        chunks: list[bytes] = []

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if sent:
                return {"type": "http.disconnect"}
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            else:
                chunks.append(message.get("body", b""))

        await self.app(scope, receive, send)
        return status, b"".join(chunks)


@asynccontextmanager
async def memory_store(settings: Any) -> AsyncIterator[Any]:
    from infrastructure.eventstore.memory import InMemoryEventStore

    async def ping() -> bool:
        return True

    yield InMemoryEventStore(), ping


async def worker(store: str, url: str | None, cards: int, keys: bool) -> None:
    from pydantic import SecretStr

    from command_service.app import create_app
    from command_service.server import GC_THRESHOLDS
    from infrastructure.auth.tokens import Role, TokenCodec
    from infrastructure.settings import Settings

    settings = Settings(
        jwt_secret=SecretStr(secrets.token_hex(32)),
        postgres_url=url or "postgresql://unused@127.0.0.1:1/unused",
        pool_min_size=4,
        pool_max_size=8,
    )
    codec = TokenCodec.from_settings(settings)
    admin = codec.issue(Role.ADMIN, "bench-admin", ttl_seconds=86400)
    pharmacy = codec.issue(Role.PHARMACY, "ph-bench", pharmacy_id="ph-bench", ttl_seconds=86400)

    def headers(token: str) -> list[tuple[bytes, bytes]]:
        return [
            (b"host", b"127.0.0.1:8000"),
            (b"authorization", b"Bearer " + token.encode()),
            (b"content-type", b"application/json"),
        ]

    app = create_app(settings) if store == "postgres" else create_app(settings, memory_store)
    client = Asgi(app)
    async with app.router.lifespan_context(app):
        await _wait_ready(app)
        card_ids = await _issue_cards(client, headers(admin), cards)
        gc.collect()  # as `healthpay serve-commands` does once it is up
        gc.freeze()
        gc.set_threshold(*GC_THRESHOLDS)
        claims = Claims(client, card_ids, headers(pharmacy), keys)
        _reply({"ready": True, "command_service": _module_file("command_service.app")})
        for line in sys.stdin:
            words = line.split()
            if not words or words[0] != "run":
                break
            cpu0, wall0 = own_cpu(), time.monotonic()
            statuses = await claims.round(int(words[1]), int(words[2]))
            cpu, wall = own_cpu() - cpu0, time.monotonic() - wall0
            _reply({"cpu_s": cpu, "wall_s": wall, "statuses": statuses})


class Claims:
    """Claims as load-tests/medcard-claim.js sends them: a random card, a new prescription."""

    def __init__(
        self, client: Asgi, card_ids: list[str], headers: list[tuple[bytes, bytes]], keys: bool
    ) -> None:
        self.client = client
        self.card_ids = card_ids
        self.headers = headers
        self.keys = keys
        self.sent = 0
        self.rng = random.Random(7)

    async def round(self, claims: int, concurrency: int) -> dict[int, int]:
        """Posts `claims` claims from `concurrency` tasks; the count of each status."""
        statuses: dict[int, int] = {}
        todo = list(range(claims))

        async def loop() -> None:
            while todo:
                todo.pop()
                status = await self.one()
                statuses[status] = statuses.get(status, 0) + 1

        await asyncio.gather(*(loop() for _ in range(concurrency)))
        return statuses

    async def one(self) -> int:
        self.sent += 1
        cents = self.rng.randrange(1000, 50001)
        body = b'{"prescriptionId":"rx-asgi-%d","totalAmount":%d.%02d}' % (
            self.sent,
            cents // 100,
            cents % 100,
        )
        extra = [(b"idempotency-key", b"k-%d" % self.sent)] if self.keys else []
        path = CLAIM_PATH.format(self.rng.choice(self.card_ids))
        status, _ = await self.client.post(path, body, self.headers + extra)
        return status


async def _wait_ready(app: Any) -> None:
    for _ in range(300):
        if await app.state.ping():
            return
        await asyncio.sleep(0.1)
    raise BenchError("the event store did not come up")


async def _issue_cards(client: Asgi, headers: list[tuple[bytes, bytes]], n: int) -> list[str]:
    ids: list[str] = []

    async def issue(i: int) -> None:
        body = b'{"userId":"u-asgi-%d","cardType":"gold","monthlyLimit":100000000}' % i
        status, answer = await client.post("/api/v1/medcards", body, headers)
        if status != 201:
            raise BenchError(f"issuing a card answered {status}: {answer[:300]!r}")
        ids.append(json.loads(answer)["id"])

    for start in range(0, n, 50):
        await asyncio.gather(*(issue(i) for i in range(start, min(start + 50, n))))
    return ids


def _module_file(name: str) -> str:
    module = sys.modules[name]
    return str(module.__file__)


def _reply(doc: dict[str, Any]) -> None:
    print(json.dumps(doc), flush=True)


def worker_main(argv: list[str]) -> int:
    tree, store, url, cards, keys = argv[0], argv[1], argv[2], int(argv[3]), argv[4] == "1"
    sys.path.insert(0, tree)  # this tree's packages, before the editable install's
    asyncio.run(worker(store, url or None, cards, keys))
    return 0


# --------------------------------------------------------------------------- the driver


@dataclass(slots=True)
class Tree:
    name: str
    path: Path
    proc: subprocess.Popen[str] | None = None
    log: IO[str] | None = None

    def ask(self, line: str) -> dict[str, Any]:
        assert self.proc is not None
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        return self.read()

    def read(self) -> dict[str, Any]:
        assert self.proc is not None
        assert self.proc.stdout is not None
        answer = self.proc.stdout.readline()
        if not answer:
            raise BenchError(f"the {self.name} worker exited ({self.proc.wait()}); see its log")
        result: dict[str, Any] = json.loads(answer)
        return result

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            assert self.proc.stdin
            self.proc.stdin.close()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.log is not None:
            self.log.close()


def export(rev: str, into: Path) -> str:
    commit = run_checked(["git", "rev-parse", "--short", rev]).strip()
    into.mkdir(parents=True)
    archive = subprocess.run(
        ["git", "archive", commit], cwd=ROOT, capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return commit


def database_for(admin_url: str, name: str) -> str:
    import psycopg
    from psycopg import sql
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    from infrastructure.postgres.migrations import migrate_sync

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    params = conninfo_to_dict(admin_url)
    params["dbname"] = name
    url = make_conninfo(**params)  # type: ignore[arg-type]
    migrate_sync(url)
    return url


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["--worker"]:
        return worker_main(args[1:])
    cfg = parse_args(args)
    tmp = Path(tempfile.mkdtemp(prefix="healthpay-asgi-bench-"))
    tmp.chmod(0o755)  # PostgreSQL (user postgres) works inside it
    (tmp / "logs").mkdir()
    import bench  # the claim bench's process handling (starts and stops PostgreSQL)

    procs = bench.Processes(tmp / "logs")
    trees: list[Tree] = []

    def close() -> None:
        for tree in trees:
            tree.stop()
        procs.close()

    def body() -> tuple[int, bool]:
        return run(cfg, tmp, procs, trees)

    return run_main("asgi claim bench", body, close, tmp, cfg.keep_temp, "logs")


def run(cfg: Config, tmp: Path, procs: Any, trees: list[Tree]) -> tuple[int, bool]:
    import bench

    facts = machine()
    if cfg.baseline is not None:
        commit = export(cfg.baseline, tmp / "baseline")
        trees.append(Tree(f"baseline {commit}", tmp / "baseline"))
    trees.append(Tree(f"this tree ({facts['git']})", ROOT))
    pg_pid: int | None = None
    urls = ["" for _ in trees]
    if cfg.store == "postgres":
        admin = cfg.postgres_url or bench.start_postgres(procs, tmp)
        pg_pid = None if cfg.postgres_url else bench.postmaster_pid(tmp / "pg")
        urls = [database_for(admin, f"asgi_bench_{i}") for i in range(len(trees))]
    for tree, url in zip(trees, urls, strict=True):
        tree.log = (tmp / "logs" / f"worker-{len(tree.name)}-{id(tree)}.log").open("w")
        argv = [
            str(tree.path),
            cfg.store,
            url,
            str(cfg.cards),
            "1" if cfg.idempotency_keys else "0",
        ]
        tree.proc = subprocess.Popen(
            [sys.executable, str(HERE), "--worker", *argv],
            cwd=tree.path,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=tree.log,
            text=True,
            env={**os.environ, "PYTHONPATH": str(tree.path)},
        )
    for tree in trees:
        ready = tree.read()
        if not ready["command_service"].startswith(str(tree.path)):
            raise BenchError(f"{tree.name} imported {ready['command_service']}")
    print(
        f"asgi claim bench: {cfg.rounds} rounds of {cfg.claims:,} claims per tree,"
        f" {cfg.concurrency} in flight, {cfg.cards} cards, store {cfg.store},"
        f" Idempotency-Key {'on' if cfg.idempotency_keys else 'off'}",
        flush=True,
    )
    rounds: dict[str, list[dict[str, float]]] = {t.name: [] for t in trees}
    failed = 0
    for number in range(cfg.rounds + 1):  # round 0 warms up (caches, connections)
        for tree in trees if number % 2 == 0 else list(reversed(trees)):
            pg0 = tree_cpu(cpu_snapshot(), [pg_pid]) if pg_pid else 0.0
            done = tree.ask(f"run {cfg.claims} {cfg.concurrency}")
            pg = tree_cpu(cpu_snapshot(), [pg_pid]) - pg0 if pg_pid else 0.0
            ok = done["statuses"].get("201", 0)
            if ok != cfg.claims:
                failed += cfg.claims - ok
                print(f"  {tree.name}: statuses {done['statuses']}", flush=True)
            figures = {
                "app_us": 1e6 * done["cpu_s"] / max(ok, 1),
                "pg_us": 1e6 * pg / max(ok, 1),
                "claims_per_s": ok / done["wall_s"],
            }
            label = "warm-up" if number == 0 else f"round {number}"
            print(
                f"  {label:8} {tree.name:32} app {figures['app_us']:6.0f} µs/claim"
                + (f"  PG {figures['pg_us']:5.0f} µs/claim" if pg_pid else "")
                + f"  {figures['claims_per_s']:6.0f} claims/s",
                flush=True,
            )
            if number > 0:
                rounds[tree.name].append(figures)
    report(cfg, facts, trees, rounds, pg_pid is not None)
    if cfg.json_out is not None:
        write_json(cfg.json_out, {"config": str(cfg), "machine": facts, "rounds": rounds})
    return (0 if failed == 0 else 1), failed != 0


def report(
    cfg: Config,
    facts: dict[str, Any],
    trees: list[Tree],
    rounds: dict[str, list[dict[str, float]]],
    with_pg: bool,
) -> None:
    def median(name: str, key: str) -> float:
        return statistics.median(r[key] for r in rounds[name])

    base = trees[0].name
    rows = []
    for tree in trees:
        app = median(tree.name, "app_us")
        spread = [r["app_us"] for r in rounds[tree.name]]
        rows.append(
            [
                tree.name,
                f"{app:,.0f}",
                f"{min(spread):,.0f}-{max(spread):,.0f}",
                f"{app / median(base, 'app_us'):.2f}",
                f"{median(tree.name, 'pg_us'):,.0f}" if with_pg else "",
                f"{median(tree.name, 'claims_per_s'):,.0f}",
            ]
        )
    print(
        f"\nHealthPay Ledger ASGI claim bench — {facts['date']}, git {facts['git']}\n"
        f"{machine_line(facts)}\n"
        + markdown_table(
            [
                "tree",
                "app CPU µs/claim (median)",
                "rounds' range",
                f"÷ {base}",
                "PG CPU µs/claim",
                "claims/s",
            ],
            rows,
        )
    )


if __name__ == "__main__":
    sys.exit(main())
