"""What the benchmarks share: the repo root, checked subprocesses, free ports, the machine's
description, signals that unwind like Ctrl-C so every child gets stopped, and the end of a
`main()` that turns failures into exit codes and cleans up."""

from __future__ import annotations

import datetime as dt
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from types import FrameType
from typing import Any

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
