"""What the benchmarks share: the repo root, checked subprocesses, free ports, the machine's
description (and its report line), CPU time of processes from /proc, Markdown tables, the
JSON output, signals that unwind like Ctrl-C so every child gets stopped, and the end of a
`main()` that turns failures into exit codes and cleans up."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from types import FrameType
from typing import Any, NamedTuple

import psycopg

ROOT = Path(__file__).resolve().parent.parent


class BenchError(Exception):
    """The bench could not be set up, or a target or phase misbehaved; the message says why."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_checked(
    argv: Sequence[str | Path], env: dict[str, str] | None = None, timeout: float = 180
) -> str:
    res = subprocess.run(
        [str(a) for a in argv],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if res.returncode != 0:
        raise BenchError(
            f"{' '.join(map(str, argv))} failed ({res.returncode}):\n"
            f"{res.stdout[-2000:]}{res.stderr[-2000:]}"
        )
    return res.stdout


def count_events(url: str) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM events").fetchone()
    return int(row[0]) if row else 0


def machine() -> dict[str, Any]:
    cpu, mem_kib = platform.processor() or "unknown", 0
    with suppress(OSError, StopIteration, ValueError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem_kib = next(
            int(line.split()[1])
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal:")
        )

    def git(*args: str) -> str:
        res = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)
        return res.stdout.strip()

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": len(os.sched_getaffinity(0)),
        "cpu": cpu,
        "ram_gib": round(mem_kib / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "load_avg_1m": round(os.getloadavg()[0], 2),
        "git": commit + (" (+ uncommitted changes)" if dirty else ""),
    }


def machine_line(m: dict[str, Any]) -> str:
    """The report's line about `machine()`'s facts."""
    return (
        f"machine: {m['nproc']} cores ({m['cpu']}), {m['ram_gib']} GiB RAM, Linux {m['kernel']},"
        f" Python {m['python']}; load average {m['load_avg_1m']} before the run"
        " (other work on the box skews the figures)"
    )


def markdown_table(head: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(cells) + " |" for cells in rows]
    return "\n".join(lines)


def write_json(path: Path, doc: Mapping[str, Any]) -> None:
    path.write_text(json.dumps(doc, indent=2, default=str) + "\n")


# --------------------------------------------------------------------------- CPU from /proc


class ProcCpu(NamedTuple):
    ppid: int
    pgrp: int
    cpu: float  # user + system seconds of the process itself (all its threads)
    reaped: float  # user + system seconds of the children it has waited for


CpuSnapshot = dict[int, ProcCpu]


def cpu_snapshot() -> CpuSnapshot:
    """CPU time so far of every process on the box, from /proc/<pid>/stat."""
    tick = os.sysconf("SC_CLK_TCK")
    snap: CpuSnapshot = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # gone meanwhile
            continue
        snap[int(entry.name)] = _proc_cpu(stat, tick)
    return snap


def own_cpu() -> float:
    """CPU seconds (user + system, all threads) this process has spent, from /proc/self/stat."""
    return _proc_cpu(Path("/proc/self/stat").read_text(), os.sysconf("SC_CLK_TCK")).cpu


def _proc_cpu(stat: str, tick: int) -> ProcCpu:
    f = stat[stat.rindex(")") + 2 :].split()  # fields 3.. of proc(5)
    return ProcCpu(
        int(f[1]), int(f[2]), (int(f[11]) + int(f[12])) / tick, (int(f[13]) + int(f[14])) / tick
    )


def process_tree(snap: CpuSnapshot, roots: Iterable[int], prune: Iterable[int] = ()) -> set[int]:
    """`roots` and their descendants in `snap`, without the subtrees of the `prune` PIDs."""
    children: dict[int, list[int]] = {}
    for pid, p in snap.items():
        children.setdefault(p.ppid, []).append(pid)
    pruned = set(prune)
    seen: set[int] = set()
    todo = [r for r in roots if r in snap]
    while todo:
        pid = todo.pop()
        if pid not in seen and pid not in pruned:
            seen.add(pid)
            todo.extend(children.get(pid, ()))
    return seen


def tree_cpu(snap: CpuSnapshot, roots: Iterable[int], prune: Iterable[int] = ()) -> float:
    """CPU seconds of `process_tree(snap, roots, prune)`, the exited members included: a child
    that exited and was waited for counts in its parent's `reaped` (PostgreSQL's backends and
    autovacuum workers, a supervisor's checks). The difference of two calls is the CPU the
    tree spent in between, as long as its roots live."""
    return sum(snap[pid].cpu + snap[pid].reaped for pid in process_tree(snap, roots, prune))


def machine_busy() -> float:
    """Busy CPU seconds of the machine since boot (/proc/stat: all but idle and iowait)."""
    tick = os.sysconf("SC_CLK_TCK")
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / tick


@contextmanager
def signals_as_exits() -> Iterator[None]:
    """SIGTERM/SIGHUP unwind like Ctrl-C, so the `finally` that stops the servers runs."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    old = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGHUP)}
    old[signal.SIGINT] = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def run_main(
    name: str,
    body: Callable[[], tuple[int, bool]],
    close: Callable[[], None],
    tmp: Path,
    keep_temp: bool,
    kept: str,
) -> int:
    """Runs a bench's `body` with `signals_as_exits` and returns the exit code: the one `body`
    returns (0 ok, 1 failures), 2 when the setup failed (a `BenchError`), 130 on Ctrl-C, 128 +
    the signal on SIGTERM/SIGHUP. `body` also says whether to keep `tmp` even if all went well.
    Then `close` stops the children, with SIGINT/SIGTERM/SIGHUP ignored meanwhile, and `tmp` is
    removed unless something failed or the temp dir is to be kept. `name` prefixes the messages
    on stderr; `kept` says what the kept `tmp` holds ("logs")."""
    code, keep = 2, False
    try:
        with signals_as_exits():
            code, keep = body()
    except BenchError as exc:
        print(f"{name}: {exc}", file=sys.stderr)
    except KeyboardInterrupt:
        print(f"{name}: interrupted", file=sys.stderr)
        code = 130
    except SystemExit as exc:  # from signals_as_exits
        print(f"{name}: stopped by a signal", file=sys.stderr)
        code = exc.code if isinstance(exc.code, int) else 1
    finally:
        # let the clean-up finish: a second Ctrl-C or a TERM must not orphan the children
        stops = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
        old = {s: signal.signal(s, signal.SIG_IGN) for s in stops}
        try:
            close()
        finally:
            for s, h in old.items():
                signal.signal(s, h)
        if code == 0 and not keep_temp and not keep:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print(f"{name}: {kept} kept in {tmp}", file=sys.stderr)
    return code
