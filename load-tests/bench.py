"""`make bench`: claim throughput and latency of the command service, next to bare endpoints.

Starts everything it measures on this machine, on free ports, and stops it again (by PID,
also on error or Ctrl-C): its own PostgreSQL (fsync on) through scripts/pg.sh unless
BENCH_POSTGRES_URL is set, the bare reference apps (load-tests/bare_apps.py), and N
command-service processes (`healthpay serve-commands`) for each N in --processes; for N > 1
an nginx in front routes each card id to the same process (docs/design.md §3, card affinity).
wrk drives every target at a fixed concurrency; the claim scenario posts unique prescription
ids spread over --cards cards. Prints a Markdown table and the machine it ran on.

Exit status: 0 when every request succeeded, 1 when any claim request failed (non-2xx or a
socket error), 2 when the bench could not be set up.

    .venv/bin/python load-tests/bench.py              # full run (~3 minutes on 2 cores)
    .venv/bin/python load-tests/bench.py --quick      # smoke run (~40 s)
    .venv/bin/python load-tests/bench.py --bare-only  # reference endpoints only
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench_common import (
    ROOT,
    BenchError,
    CpuSnapshot,
    count_events,
    cpu_snapshot,
    free_port,
    machine,
    machine_line,
    markdown_table,
    run_checked,
    run_main,
    write_json,
)

LOAD_TESTS = ROOT / "load-tests"
VENV_BIN = Path(sys.executable).parent
HEALTHPAY = next(
    (b for b in (VENV_BIN / "healthpay", ROOT / ".venv" / "bin" / "healthpay") if b.exists()),
    VENV_BIN / "healthpay",
)
CLAIM_SCRIPT = LOAD_TESTS / "wrk" / "claims.lua"
POST_SCRIPT = LOAD_TESTS / "wrk" / "post.lua"
BARE_APPS = LOAD_TESTS / "bare_apps.py"
PG_SH = ROOT / "scripts" / "pg.sh"
WRK = shutil.which("wrk") or "/usr/bin/wrk"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
BARE_KINDS = ("asgi", "fastapi")
LABELS = {"asgi": "bare ASGI", "fastapi": "bare FastAPI", "starlette": "bare Starlette"}


# --------------------------------------------------------------------------- configuration


def _env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


@dataclass(frozen=True)
class Config:
    duration: int
    warmup: int
    connections: int
    threads: int
    cards: int
    processes: tuple[int, ...]
    bare: tuple[str, ...]
    claims: bool
    nginx_workers: int
    nginx_single: bool
    postgres_url: str | None
    json_out: Path | None
    keep_temp: bool


def parse_args(argv: Sequence[str] | None = None) -> Config:
    cores = len(os.sched_getaffinity(0))
    p = argparse.ArgumentParser(
        description="Claim-path benchmark (see docs/benchmarks.md).",
        epilog="Environment (flags win): BENCH_QUICK=1, BENCH_DURATION, BENCH_WARMUP, "
        "BENCH_CONNECTIONS, BENCH_THREADS, BENCH_CARDS, BENCH_PROCESSES, BENCH_BARE, "
        "BENCH_NGINX_WORKERS; BENCH_POSTGRES_URL uses that server instead of starting one.",
    )
    p.add_argument("--quick", action="store_true", help="smoke run: 3 s per target, 200 cards")
    p.add_argument("--duration", type=int, default=None, help="seconds per measured run (15)")
    p.add_argument("--warmup", type=int, default=None, help="seconds of warm-up per target (5)")
    p.add_argument("--connections", type=int, default=_env_int("BENCH_CONNECTIONS", 64))
    p.add_argument(
        "--threads",
        type=int,
        default=_env_int("BENCH_THREADS", 2),
        help="wrk threads; wrk shares the cores with the servers (keep it 1-2)",
    )
    p.add_argument("--cards", type=int, default=None, help="cards the claims spread over (2000)")
    p.add_argument(
        "--processes",
        default=os.environ.get("BENCH_PROCESSES", f"1,{cores}"),
        help=f"comma-separated process counts (default 1,{cores} = 1,nproc)",
    )
    p.add_argument(
        "--bare",
        default=os.environ.get("BENCH_BARE", ",".join(BARE_KINDS)),
        help="bare reference apps to run: asgi,fastapi,starlette (or 'none')",
    )
    p.add_argument("--bare-only", action="store_true", help="skip PostgreSQL and the claims")
    p.add_argument("--nginx-workers", type=int, default=_env_int("BENCH_NGINX_WORKERS", 1))
    p.add_argument(
        "--nginx-single",
        action="store_true",
        help="put nginx in front of a single process too (isolates the edge's cost)",
    )
    p.add_argument("--json", type=Path, default=None, help="also write the results as JSON")
    p.add_argument("--keep-temp", action="store_true", help="keep logs and configs afterwards")
    a = p.parse_args(argv)
    quick = a.quick or os.environ.get("BENCH_QUICK") == "1"
    duration = a.duration or _env_int("BENCH_DURATION", 3 if quick else 15)
    warmup = a.warmup if a.warmup is not None else _env_int("BENCH_WARMUP", 1 if quick else 5)
    cards = a.cards or _env_int("BENCH_CARDS", 200 if quick else 2000)
    processes = tuple(sorted({int(x) for x in a.processes.split(",") if x.strip()}))
    bare = tuple(x.strip() for x in a.bare.split(",") if x.strip() and x.strip() != "none")
    if not processes or min(processes) < 1:
        p.error("--processes needs positive counts")
    if unknown := set(bare) - set(LABELS):
        p.error(f"unknown bare app(s): {', '.join(sorted(unknown))}")
    if a.threads < 1 or a.connections < a.threads:
        p.error("--connections must be >= --threads >= 1")
    return Config(
        duration=duration,
        warmup=warmup,
        connections=a.connections,
        threads=a.threads,
        cards=cards,
        processes=processes,
        bare=bare,
        claims=not a.bare_only,
        nginx_workers=a.nginx_workers,
        nginx_single=a.nginx_single,
        postgres_url=os.environ.get("BENCH_POSTGRES_URL") or None,
        json_out=a.json,
        keep_temp=a.keep_temp,
    )


# --------------------------------------------------------------------------- processes


@dataclass
class Started:
    name: str
    proc: subprocess.Popen[bytes]
    log: Path


class Processes:
    """Every process and clean-up this run started, undone in reverse order by `close`.

    Children run in their own session, so a terminal Ctrl-C reaches only this runner, which
    then stops them; a child's process group id is its PID, so stopping one also stops any
    helper it forked (nginx workers) and nothing else.
    """

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self._undo: list[tuple[str, Callable[[], None]]] = []

    def start(
        self, name: str, argv: Sequence[str | Path], env: dict[str, str] | None = None
    ) -> Started:
        log = self.logs / f"{name}.log"
        serial = 1
        while log.exists():  # a name used twice keeps both logs
            serial += 1
            log = self.logs / f"{name}.{serial}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [str(a) for a in argv],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=ROOT,
                start_new_session=True,
            )
        started = Started(name, proc, log)
        self._undo.append((name, lambda: _stop(started)))
        return started

    def on_close(self, name: str, action: Callable[[], None]) -> None:
        self._undo.append((name, action))

    def stop(self, started: Started) -> None:
        self._undo = [(n, f) for n, f in self._undo if n != started.name]
        _stop(started)

    def close(self) -> None:
        while self._undo:
            name, action = self._undo.pop()
            try:
                action()
            except Exception as exc:  # keep undoing the rest
                print(f"warning: stopping {name} failed: {exc}", file=sys.stderr)


def _stop(started: Started, grace: float = 15.0) -> None:
    proc = started.proc
    if proc.poll() is None:
        _signal_group(proc.pid, signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            _signal_group(proc.pid, signal.SIGKILL)
            proc.wait(5)
    # the leader may be gone while a forked helper still runs in its group
    _signal_group(proc.pid, signal.SIGKILL)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def wait_http(port: int, started: Started, timeout: float = 60.0) -> None:
    """Until the port answers any HTTP request (a 404 or 405 is an answer)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if started.proc.poll() is not None:
            raise BenchError(
                f"{started.name} exited with {started.proc.returncode}:\n{_tail(started.log)}"
            )
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        try:
            conn.request("GET", "/")
            conn.getresponse().read()
            return
        except OSError:
            time.sleep(0.2)
        finally:
            conn.close()
    raise BenchError(
        f"{started.name} did not answer on port {port} within {timeout:.0f} s:\n"
        f"{_tail(started.log)}"
    )


# --------------------------------------------------------------------------- machine, database


def start_postgres(procs: Processes, tmp: Path) -> str:
    if not PG_SH.exists():
        raise BenchError(f"{PG_SH} is missing; set BENCH_POSTGRES_URL to use a running server")
    data, port = tmp / "pg", free_port()
    env = {**os.environ, "PG_FSYNC": "on"}  # a ledger bench without fsync measures nothing
    procs.on_close("postgres", lambda: print(run_checked(["bash", PG_SH, "stop", data]), end=""))
    out = run_checked(["bash", PG_SH, "start", data, str(port)], env=env, timeout=180)
    lines = [ln for ln in out.splitlines() if ln.startswith("postgresql://")]
    return lines[-1] if lines else f"postgresql://healthpay@127.0.0.1:{port}/healthpay_ledger"


def postmaster_pid(data: Path) -> int | None:
    try:
        return int((data / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def postgres_facts(url: str) -> dict[str, str]:
    import psycopg  # the project's own dependency; only needed when claims run

    with psycopg.connect(url, autocommit=True) as conn:
        facts: dict[str, str] = {}
        for name in ("server_version", "fsync", "synchronous_commit", "shared_buffers"):
            row = conn.execute(f"SHOW {name}").fetchone()
            facts[name] = str(row[0]) if row else "?"
        return facts


def checkpoint(url: str) -> None:
    """Start each claim run with a clean checkpoint, not in the middle of one (less noise)."""
    import psycopg

    try:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CHECKPOINT")
    except psycopg.Error as exc:  # needs superuser or pg_checkpoint; the run is still valid
        print(f"  (no CHECKPOINT before the run: {str(exc).strip()})")


# --------------------------------------------------------------------------- targets


@dataclass
class Target:
    url: str
    direct_ports: list[int]
    edge: str  # "direct" or "nginx"
    members: list[Started] = field(default_factory=list)

    @property
    def app_groups(self) -> set[int]:
        return {m.proc.pid for m in self.members if not m.name.endswith("-nginx")}

    @property
    def edge_groups(self) -> set[int]:
        return {m.proc.pid for m in self.members if m.name.endswith("-nginx")}


def nginx_conf(
    tmp: Path, name: str, port: int, upstreams: Sequence[int], affinity: bool, workers: int
) -> Path:
    d = tmp / f"nginx-{name}"
    d.mkdir()
    servers = "\n".join(f"        server 127.0.0.1:{p} max_fails=0;" for p in upstreams)
    balance = "hash $card_id consistent;" if affinity else "# round robin"
    conf = d / "nginx.conf"
    conf.write_text(f"""# generated by load-tests/bench.py
daemon off;
worker_processes {workers};
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 8192; }}
http {{
    access_log off;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    keepalive_requests 10000000;
    # the card id of /api/v1/medcards/{{id}}/...; every claim of a card reaches one process
    map $uri $card_id {{
        "~^/api/v1/medcards/(?<id>[^/]+)" $id;
        default "";
    }}
    upstream app {{
        {balance}
{servers}
        keepalive 256;
        keepalive_requests 10000000;
        # below uvicorn's 5 s idle timeout: else nginx may reuse a connection the app is
        # closing, and a POST, which nginx never retries, fails with 502
        keepalive_timeout 4s;
    }}
    server {{
        listen 127.0.0.1:{port} reuseport backlog=4096;
        location / {{
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $remote_addr;
            proxy_buffering off;
        }}
    }}
}}
""")
    return conf


def start_target(
    procs: Processes,
    tmp: Path,
    cfg: Config,
    name: str,
    n: int,
    argv_for: Callable[[int], list[str | Path]],
    env: dict[str, str] | None,
    affinity: bool,
) -> Target:
    members: list[Started] = []
    ports: list[int] = []
    for i in range(n):
        port = free_port()
        started = procs.start(f"{name}-{i + 1}", argv_for(port), env)
        members.append(started)
        ports.append(port)
    for started, port in zip(members, ports, strict=True):
        wait_http(port, started)
    if n == 1 and not cfg.nginx_single:
        return Target(f"http://127.0.0.1:{ports[0]}", ports, "direct", members)
    nginx = NGINX
    edge_port = free_port()
    conf = nginx_conf(tmp, name, edge_port, ports, affinity, cfg.nginx_workers)
    run_checked([nginx, "-t", "-q", "-c", conf, "-e", "stderr"])
    edge = procs.start(f"{name}-nginx", [nginx, "-c", conf, "-e", "stderr"])
    members.append(edge)
    wait_http(edge_port, edge)
    return Target(f"http://127.0.0.1:{edge_port}", ports, "nginx", members)


def stop_target(procs: Processes, target: Target) -> None:
    for started in reversed(target.members):
        procs.stop(started)


# --------------------------------------------------------------------------- the claim API


def _post(
    port: int,
    path: str,
    token: str,
    body: dict[str, Any],
    conn: http.client.HTTPConnection | None = None,
) -> tuple[int, Any]:
    own = conn is None
    c = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        c.request(
            "POST",
            path,
            json.dumps(body),
            {"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        resp = c.getresponse()
        raw = resp.read()
        try:
            return resp.status, json.loads(raw) if raw else None
        except ValueError:
            return resp.status, raw.decode(errors="replace")
    finally:
        if own:
            c.close()


def create_cards(port: int, admin_token: str, count: int, run_id: str) -> list[str]:
    local = threading.local()

    def one(i: int) -> str:
        if not hasattr(local, "conn"):
            local.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        status, doc = _post(
            port,
            "/api/v1/medcards",
            admin_token,
            {
                "userId": f"u-bench-{run_id}-{i}",
                "cardType": "gold",
                "monthlyLimit": 100000000,
            },
            local.conn,
        )
        if status != 201 or not isinstance(doc, dict) or "id" not in doc:
            raise BenchError(f"creating a card answered {status}: {doc}")
        return str(doc["id"])

    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(one, range(count)))


def smoke_claim(port: int, token: str, card: str, run_id: str) -> str:
    status, doc = _post(
        port,
        f"/api/v1/medcards/{card}/claims/prescriptions",
        token,
        {"prescriptionId": f"rx-smoke-{run_id}", "totalAmount": 350.00},
    )
    if not 200 <= status < 300 or not isinstance(doc, dict):
        raise BenchError(f"a single claim answered {status}: {doc}")
    return str(doc.get("decision", "?"))


# --------------------------------------------------------------------------- wrk


@dataclass
class Run:
    scenario: str
    kind: str  # asgi | fastapi | starlette | claims
    processes: int
    edge: str
    rps: float
    requests: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    non2xx: int
    socket_errors: int
    statuses: dict[str, int]
    warmup_failures: int
    warmup_2xx: int
    app_cpu_us: float  # CPU time of the app processes per request (user + system)
    edge_cpu_us: float | None  # the same for nginx
    db_cpu_us: float | None  # the same for PostgreSQL, when this bench started it

    @property
    def requests_2xx(self) -> int:
        return sum(v for k, v in self.statuses.items() if 200 <= int(k) < 300)

    @property
    def failures(self) -> int:
        return self.non2xx + self.socket_errors + self.warmup_failures


def wrk(
    cfg: Config,
    script: Path,
    url: str,
    seconds: int,
    env: dict[str, str],
    procs: Processes,
    log_name: str,
) -> dict[str, Any]:
    argv: list[str | Path] = [
        WRK,
        f"-t{cfg.threads}",
        f"-c{cfg.connections}",
        f"-d{seconds}s",
        "--timeout",
        "10s",
        "--latency",
        "-s",
        script,
        url,
    ]
    started = procs.start(log_name, argv, {**os.environ, **env})
    try:
        started.proc.wait(seconds + 120)
    finally:
        procs.stop(started)
    text = started.log.read_text(errors="replace")
    line = next((ln for ln in reversed(text.splitlines()) if ln.startswith("WRK_RESULT ")), None)
    if started.proc.returncode != 0 or line is None:
        raise BenchError(f"wrk failed ({started.proc.returncode}):\n{_tail(started.log)}")
    result: dict[str, Any] = json.loads(line.removeprefix("WRK_RESULT "))
    return result


def cpu_used(
    before: CpuSnapshot, after: CpuSnapshot, target: Target, postmaster: int | None
) -> dict[str, float]:
    """CPU seconds between two snapshots of the target's processes and of PostgreSQL's."""
    used = {"app": 0.0, "edge": 0.0, "db": 0.0}
    app, edge = target.app_groups, target.edge_groups
    for pid, now in after.items():
        then = before.get(pid)
        delta = now.cpu - (then.cpu if then else 0.0)
        if now.pgrp in app:
            used["app"] += delta
        elif now.pgrp in edge:
            used["edge"] += delta
        elif postmaster is not None and postmaster in (pid, now.ppid):
            used["db"] += delta
    return used


def _socket_errors(result: dict[str, Any]) -> int:
    """wrk's connect/read/write/timeout errors (its "status" errors are the non-2xx)."""
    return sum(int(result["errors"][k]) for k in ("connect", "read", "write", "timeout"))


def wrk_failures(result: dict[str, Any]) -> int:
    """Non-2xx answers and socket errors of one wrk run."""
    return int(result["non2xx"]) + _socket_errors(result)


def wrk_figures(result: dict[str, Any]) -> dict[str, Any]:
    """One wrk run's WRK_RESULT as the fields `Run` and read_bench's `ReadRun` share."""
    lat = result["latency_us"]
    return {
        "rps": result["requests"] / (result["duration_us"] / 1e6),
        "requests": int(result["requests"]),
        "p50_ms": lat["p50"] / 1000,
        "p95_ms": lat["p95"] / 1000,
        "p99_ms": lat["p99"] / 1000,
        "max_ms": lat["max"] / 1000,
        "non2xx": int(result["non2xx"]),
        "socket_errors": _socket_errors(result),
        "statuses": {str(k): int(v) for k, v in result["statuses"].items()},
    }


def _count_2xx(result: dict[str, Any]) -> int:
    return sum(int(v) for k, v in result["statuses"].items() if 200 <= int(k) < 300)


def measure(
    cfg: Config,
    procs: Processes,
    kind: str,
    target: Target,
    n: int,
    env: dict[str, str],
    run_id: str,
    db: ClaimSetup | None = None,
) -> Run:
    script = CLAIM_SCRIPT if kind == "claims" else POST_SCRIPT
    label = "claims" if kind == "claims" else LABELS[kind]
    scenario = f"{label}, {n} process{'es' if n > 1 else ''}"
    tag = f"{kind}-{n}"
    warm_failures = warm_2xx = 0
    if cfg.warmup > 0:
        warm = wrk(
            cfg,
            script,
            target.url,
            cfg.warmup,
            {**env, "RUN_ID": f"{run_id}w{n}"},
            procs,
            f"wrk-{tag}-warmup",
        )
        warm_failures = wrk_failures(warm)
        warm_2xx = _count_2xx(warm)
    if db:
        checkpoint(db.url)
    cpu_before = cpu_snapshot()
    r = wrk(
        cfg,
        script,
        target.url,
        cfg.duration,
        {**env, "RUN_ID": f"{run_id}m{n}"},
        procs,
        f"wrk-{tag}",
    )
    postmaster = db.postmaster if db else None
    cpu = cpu_used(cpu_before, cpu_snapshot(), target, postmaster)
    per_request = 1e6 / max(1, int(r["requests"]))
    run = Run(
        scenario=scenario,
        kind=kind,
        processes=n,
        edge=target.edge,
        **wrk_figures(r),
        warmup_failures=warm_failures,
        warmup_2xx=warm_2xx,
        app_cpu_us=cpu["app"] * per_request,
        edge_cpu_us=cpu["edge"] * per_request if target.edge_groups else None,
        db_cpu_us=cpu["db"] * per_request if postmaster else None,
    )
    codes = " ".join(f"{k}={v}" for k, v in sorted(run.statuses.items()))
    print(
        f"  {scenario:<28} via {target.edge:<6} {run.rps:9.0f} req/s  p50 {run.p50_ms:6.1f}"
        f"  p95 {run.p95_ms:6.1f}  p99 {run.p99_ms:6.1f} ms  app {run.app_cpu_us:4.0f} µs/req"
        f"  [{codes}]"
        f"{'  socket errors ' + str(run.socket_errors) if run.socket_errors else ''}"
        f"{'  warm-up failures ' + str(warm_failures) if warm_failures else ''}",
        flush=True,
    )
    return run


# --------------------------------------------------------------------------- report


def table(runs: list[Run], bare: Sequence[str]) -> str:
    """Markdown; a claim row's "% of" compares it with that bare app at the same process count."""
    ref = {(r.kind, r.processes): r.rps for r in runs if r.kind != "claims"}
    head = ["scenario", "edge", "req/s", *(f"% of {LABELS[k]}" for k in bare)]
    head += ["p50 ms", "p95 ms", "p99 ms", "non-2xx", "socket errors"]
    head += ["app CPU µs/req", "nginx CPU µs/req", "PG CPU µs/req"]
    rows = []
    for r in runs:
        cells = [r.scenario, r.edge, f"{r.rps:,.0f}"]
        for k in bare:
            base = ref.get((k, r.processes))
            cells.append(f"{100 * r.rps / base:.0f} %" if r.kind == "claims" and base else "")
        cells += [f"{r.p50_ms:.1f}", f"{r.p95_ms:.1f}", f"{r.p99_ms:.1f}"]
        cells += [str(r.non2xx), str(r.socket_errors), f"{r.app_cpu_us:.0f}"]
        cells += ["" if v is None else f"{v:.0f}" for v in (r.edge_cpu_us, r.db_cpu_us)]
        rows.append(cells)
    return markdown_table(head, rows)


def store_ok(facts: dict[str, Any]) -> bool:
    """Every card and every claim answered 2xx appended at least one event (a lower bound)."""
    store = facts.get("store")
    return not store or store["events_appended"] >= store["cards_and_claims_answered_2xx"]


def report(cfg: Config, facts: dict[str, Any], runs: list[Run]) -> str:
    m = facts["machine"]
    pg = facts.get("postgres") or {}
    lines = [
        "",
        f"HealthPay Ledger bench — {m['date']}, git {m['git']}",
        machine_line(m),
    ]
    if pg:
        lines.append(
            f"postgres: {pg.get('server_version')} fsync={pg.get('fsync')} "
            f"synchronous_commit={pg.get('synchronous_commit')}"
            f" shared_buffers={pg.get('shared_buffers')}"
        )
    lines.append(
        f"wrk: {cfg.threads} threads, {cfg.connections} connections, {cfg.duration} s "
        f"(+{cfg.warmup} s warm-up) per target; claims over {facts.get('cards', 0)} "
        "cards; wrk, servers, nginx and PostgreSQL share this machine"
    )
    lines += ["", table(runs, cfg.bare), ""]
    lines += [
        f"warm-up of {r.scenario}: {r.warmup_failures} requests failed"
        for r in runs
        if r.warmup_failures
    ]
    if store := facts.get("store"):
        lines.append(
            f"event store: {store['events_appended']} events appended for "
            f"{store['cards_and_claims_answered_2xx']} cards and claims answered 2xx"
            f"{'' if store_ok(facts) else '  <-- FEWER EVENTS THAN SUCCESSFUL ANSWERS'}"
        )
    if pg and (
        pg.get("fsync") != "on" or pg.get("synchronous_commit") not in ("on", "remote_apply")
    ):
        lines.append(
            "WARNING: PostgreSQL is not durable here (fsync/synchronous_commit off): "
            "these claim figures are not comparable with the ones in the docs."
        )
    return "\n".join(lines)


# --------------------------------------------------------------------------- main


def service_ready() -> str | None:
    """None when `healthpay serve-commands` exists, else why not."""
    if not HEALTHPAY.exists():
        return f"{HEALTHPAY} is not installed"
    res = subprocess.run(
        [HEALTHPAY, "serve-commands", "--help"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
        timeout=60,
    )
    if res.returncode != 0:
        return f"`healthpay serve-commands --help` failed: {(res.stderr or res.stdout)[-300:]}"
    return None


@dataclass
class ClaimSetup:
    """What the claim runs share: the database, the services' environment, tokens, cards."""

    url: str
    env: dict[str, str]
    tokens: dict[str, str]
    cards_file: Path
    postmaster: int | None  # PostgreSQL's main PID when this bench started the server
    events_before: int


def prepare_claims(cfg: Config, procs: Processes, tmp: Path, facts: dict[str, Any]) -> ClaimSetup:
    if why := service_ready():
        raise BenchError(
            f"the command service is not available: {why}\n"
            "(use --bare-only to measure the reference endpoints alone)"
        )
    url = cfg.postgres_url or start_postgres(procs, tmp)
    facts["postgres"] = postgres_facts(url)
    env = {**os.environ, "POSTGRES_URL": url, "JWT_SECRET": secrets.token_hex(32)}
    run_checked([HEALTHPAY, "db", "migrate", "--only", "sql"], env=env)
    return ClaimSetup(
        url=url,
        env=env,
        tokens=make_tokens(env),
        cards_file=tmp / "cards.txt",
        postmaster=None if cfg.postgres_url else postmaster_pid(tmp / "pg"),
        events_before=count_events(url),
    )


def run_claims(
    cfg: Config,
    procs: Processes,
    tmp: Path,
    setup: ClaimSetup,
    n: int,
    run_id: str,
    facts: dict[str, Any],
) -> Run:
    target = start_target(
        procs,
        tmp,
        cfg,
        f"claims-{n}",
        n,
        lambda port: [HEALTHPAY, "serve-commands", "--host", "127.0.0.1", "--port", str(port)],
        setup.env,
        affinity=True,
    )
    try:
        if not setup.cards_file.exists():  # the first claim target creates the cards
            port, t0 = target.direct_ports[0], time.monotonic()
            cards = create_cards(port, setup.tokens["admin"], cfg.cards, run_id)
            setup.cards_file.write_text("\n".join(cards) + "\n")
            facts["cards"] = len(cards)
            decision = smoke_claim(port, setup.tokens["pharmacy"], cards[0], run_id)
            print(
                f"  {len(cards)} cards created in {time.monotonic() - t0:.1f} s; "
                f"a first claim was {decision!r}",
                flush=True,
            )
        env = {"CARDS_FILE": str(setup.cards_file), "TOKEN": setup.tokens["pharmacy"]}
        return measure(cfg, procs, "claims", target, n, env, run_id, setup)
    finally:
        stop_target(procs, target)


def bench(cfg: Config, procs: Processes, tmp: Path) -> tuple[dict[str, Any], list[Run]]:
    run_id = f"{int(time.time())}{secrets.token_hex(2)}"
    config = asdict(cfg) | {
        "json_out": str(cfg.json_out) if cfg.json_out else None,
        "postgres_url": "BENCH_POSTGRES_URL" if cfg.postgres_url else "its own (scripts/pg.sh)",
    }
    facts: dict[str, Any] = {"machine": machine(), "config": config}
    print(f"bench {run_id}: logs in {tmp}", flush=True)
    setup = prepare_claims(cfg, procs, tmp, facts) if cfg.claims else None
    runs: list[Run] = []
    for n in cfg.processes:
        for kind in cfg.bare:
            target = start_target(
                procs, tmp, cfg, f"{kind}-{n}", n, bare_argv(kind), None, affinity=False
            )
            try:
                runs.append(measure(cfg, procs, kind, target, n, {}, run_id))
            finally:
                stop_target(procs, target)
        if setup:
            runs.append(run_claims(cfg, procs, tmp, setup, n, run_id, facts))
    if setup:
        answered = 1 + facts.get("cards", 0)  # + the smoke claim
        answered += sum(r.requests_2xx + r.warmup_2xx for r in runs if r.kind == "claims")
        facts["store"] = {
            "events_appended": count_events(setup.url) - setup.events_before,
            "cards_and_claims_answered_2xx": answered,
        }
    return facts, runs


def bare_argv(kind: str) -> Callable[[int], list[str | Path]]:
    def argv(port: int) -> list[str | Path]:
        return [
            sys.executable,
            BARE_APPS,
            "--app",
            kind,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ]

    return argv


def make_tokens(env: dict[str, str]) -> dict[str, str]:
    """Tokens from the operator CLI, signed with the JWT_SECRET the services get."""

    def token(*args: str) -> str:
        out = run_checked([HEALTHPAY, "token", *args], env=env).strip().splitlines()
        if not out:
            raise BenchError(f"`healthpay token {' '.join(args)}` printed nothing")
        return out[-1].strip()

    return {
        "admin": token("--role", "admin", "--sub", "bench-admin", "--ttl", "21600"),
        "pharmacy": token(
            "--role", "pharmacy", "--sub", "ph-bench", "--pharmacy-id", "ph-bench", "--ttl", "21600"
        ),
    }


def main(argv: Sequence[str] | None = None) -> int:
    cfg = parse_args(argv)
    for tool in (WRK, NGINX):
        if not Path(tool).exists():
            print(f"bench: {tool} is not installed", file=sys.stderr)
            return 2
    tmp = Path(tempfile.mkdtemp(prefix="healthpay-bench-"))
    tmp.chmod(0o755)  # PostgreSQL (user postgres) and nginx workers (nobody) work inside it
    (tmp / "logs").mkdir()
    procs = Processes(tmp / "logs")

    def body() -> tuple[int, bool]:
        facts, runs = bench(cfg, procs, tmp)
        failed = sum(r.failures for r in runs if r.kind == "claims")
        bare_failed = sum(r.failures for r in runs if r.kind != "claims")
        text = report(cfg, facts, runs)
        print(text)
        if cfg.json_out:
            write_json(cfg.json_out, {**facts, "runs": [asdict(r) for r in runs]})
        if failed:
            print(f"FAILED: {failed} claim requests did not succeed", file=sys.stderr)
        if bare_failed:
            print(
                f"WARNING: {bare_failed} requests to the bare apps failed: the reference"
                " figures are suspect (see the nginx error logs)",
                file=sys.stderr,
            )
        if not store_ok(facts):
            print(
                "FAILED: the event store holds fewer events than successful answers",
                file=sys.stderr,
            )
        return (1 if failed or not store_ok(facts) else 0), bare_failed > 0

    return run_main("bench", body, procs.close, tmp, cfg.keep_temp, "logs and configs")


if __name__ == "__main__":
    sys.exit(main())
