"""Running the local servers' scripts (scripts/pg.sh, kafka.sh, cassandra.sh, ...) for the test
harnesses: a free port to start one on, a script run that fails with its output, and the
system programs the tests run (installed by scripts/need.sh when missing: a test that needs
a tool never skips for want of it)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Mapping
from functools import cache
from pathlib import Path

NEED_SH = Path(__file__).resolve().parents[2] / "scripts" / "need.sh"
TOOLS_SH = NEED_SH.with_name("tools.sh")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def run_script(script: Path, *args: str, env: Mapping[str, str] | None = None) -> str:
    """Runs `script args...`; returns the last line it printed (an address, for `start`).
    Raises RuntimeError with its output if it exits non-zero."""
    done = subprocess.run(
        [str(script), *args],
        env=None if env is None else dict(env),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"scripts/{script.name} {' '.join(args)} failed ({done.returncode}):\n"
            f"{done.stdout}\n{done.stderr}"
        )
    lines = done.stdout.strip().splitlines()
    return lines[-1] if lines else ""


@cache
def system_program(program: str, package: str | None = None) -> str:
    """The absolute path of `program`, installing its Debian package (default: the program's
    name) when it is missing; RuntimeError if it cannot be had."""
    return run_script(NEED_SH, f"{program}:{package or program}")


@cache
def project_tool(name: str) -> str:
    """The path scripts/tools.sh prints for `name` (kubeconform, k8s-schemas, compose-schema),
    which installs the pinned tool into .local/tools/ on first use."""
    return run_script(TOOLS_SH, name)


def kill_pidfile(pidfile: Path, timeout: float = 30.0) -> None:
    """SIGKILL the process named in `pidfile` (a server script's), if it runs, and wait until
    it is gone: a crash, with no shutdown hook at all (scripts' `stop` sends SIGTERM first)."""
    try:
        pid = int(pidfile.read_text().strip())
        os.kill(pid, signal.SIGKILL)
    except (OSError, ValueError):
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            return
        if state in ("Z", "X"):
            return
        time.sleep(0.05)
    raise TimeoutError(f"pid {pid} still alive {timeout}s after SIGKILL")
