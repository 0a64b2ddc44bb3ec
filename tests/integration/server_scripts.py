"""Running the local servers' scripts (scripts/pg.sh, kafka.sh, cassandra.sh, ...) for the test
harnesses: a free port to start one on, and a script run that fails with its output."""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Mapping
from pathlib import Path


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
