"""Real command-service processes for tests that kill, restart or run several of them."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from infrastructure.auth.tokens import Role, SigningKey, TokenCodec
from tests.integration.server_scripts import free_port
from tests.isolation import isolated_environ, isolated_settings

REPO = Path(__file__).resolve().parents[2]


class CommandProcess:
    def __init__(self, postgres_url: str, jwt_secret: str, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._env = isolated_environ(POSTGRES_URL=postgres_url, JWT_SECRET=jwt_secret)
        self._proc: subprocess.Popen[bytes] | None = None
        self._log = REPO / ".local" / "log" / f"test-command-{self.port}.log"

    def start(self, timeout: float = 30.0, until: str = "/health") -> CommandProcess:
        """Starts the process and waits until `until` answers 200 (the default: healthy,
        PostgreSQL reached; LIVE: the process is up, whatever the database's state)."""
        self._log.parent.mkdir(parents=True, exist_ok=True)
        with self._log.open("ab") as log:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "cli.main", "serve-commands", "--port", str(self.port)],
                cwd=REPO,
                env=self._env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"command service exited early; see {self._log}")
            try:
                if httpx.get(self.url + until, timeout=1.0).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"command service: no 200 on {until} within {timeout}s; see {self._log}")

    def kill(self) -> None:
        """SIGKILL: no shutdown hooks, no flush — what a crash looks like."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGKILL)
            self._proc.wait(10)

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()


# The secret the concurrency tests' command processes and tokens share.
CONCURRENCY_SECRET = "integration-secret-0123456789abcdef0123"


def two_command_processes(postgres_url: str) -> Iterator[list[CommandProcess]]:
    """Two command services on one PostgreSQL (use as a fixture's body: `yield from`)."""
    processes = [CommandProcess(postgres_url, CONCURRENCY_SECRET).start() for _ in range(2)]
    try:
        yield processes
    finally:
        for process in processes:
            process.stop()


def bearer(role: Role, subject: str, pharmacy_id: str | None = None) -> dict[str, str]:
    """An Authorization header the two processes accept."""
    d = isolated_settings()
    codec = TokenCodec(SigningKey.of(CONCURRENCY_SECRET), d.jwt_issuer, d.jwt_audience)
    return {"Authorization": "Bearer " + codec.issue(role, subject, pharmacy_id)}
