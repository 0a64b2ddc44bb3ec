"""Tests never touch the stack `make up` runs (tests/isolation.py says why and how).

The store commands the suite runs (migrate, projections status and rebuild, balances verify
and migrate) run here as they do in the tests, in their own process under strace, with the
session's environment and a real test database: every connect() they make is recorded, and
none may reach a port of `make up`'s stack. This holds whether or not that stack is running
(strace sees the attempt either way), and each command must be seen reaching NOWHERE or the
test's own server, so a trace that caught nothing cannot pass.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from psycopg.conninfo import conninfo_to_dict

from infrastructure.settings import Settings
from tests.integration.server_scripts import system_program
from tests.isolation import (
    ENDPOINTS,
    NOWHERE,
    isolated_environ,
    isolated_settings,
    local_stack_ports,
)

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
PORT = re.compile(r"sin6?_port=htons\((\d+)\)")
NOWHERE_PORT = int(NOWHERE.rsplit(":", 1)[1])

# The suite's store paths, in-process as the tests call them (tests/integration/test_ops_cli.py,
# tests/balances/*), and through the CLI as an operator (or a test's child process) runs them.
IN_PROCESS = """
import sys
from cli import balances, projections
from tests.isolation import isolated_settings

settings = isolated_settings(postgres_url=sys.argv[1])
projections.status(settings)
projections.run_rebuild(settings, "all", False)
for check in (balances.verify, balances.migrate):
    try:
        check(settings)
    except Exception as exc:  # NOWHERE refuses: that is the point
        print(type(exc).__name__)
"""
CLI = [
    ["db", "migrate"],
    ["projections", "status"],
    ["projections", "rebuild", "all"],
    ["balances", "verify"],
    ["balances", "migrate"],
]


def _connected_ports(argv: list[str], env: dict[str, str], trace: Path) -> list[int]:
    """Every TCP port `argv` (and its children) tried to connect() to."""
    strace = system_program("strace")
    subprocess.run(
        [strace, "-f", "-qq", "-e", "trace=connect", "-o", str(trace), *argv],
        env=env,
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=240,
        check=False,  # the commands fail against NOWHERE; what they tried is what counts
    )
    return [int(port) for port in PORT.findall(trace.read_text())]


@pytest.mark.parametrize("argv", [["in-process"], *CLI], ids=lambda a: " ".join(a))
def test_store_commands_never_connect_to_the_local_stack(
    argv: list[str], postgres_url: str, tmp_path: Path
) -> None:
    env = {**os.environ, "POSTGRES_URL": postgres_url}  # the session's environment, scrubbed
    if argv == ["in-process"]:
        command = [sys.executable, "-c", IN_PROCESS, postgres_url]
    else:
        command = [sys.executable, "-m", "cli.main", *argv]
    reached = set(_connected_ports(command, env, tmp_path / "connect.trace"))
    assert not reached & local_stack_ports(), sorted(reached & local_stack_ports())
    # what it did reach: the test's own PostgreSQL, and NOWHERE for the stores it has not
    test_postgres = int(str(conninfo_to_dict(postgres_url)["port"]))
    assert {test_postgres, NOWHERE_PORT} <= reached, sorted(reached)


def test_the_session_environment_names_nowhere() -> None:
    for name, value in ENDPOINTS.items():
        assert os.environ[name] == value, name
    for settings in (Settings.from_env(), isolated_settings()):
        hosts = [*settings.kafka_brokers, *settings.scylla_hosts]
        assert hosts == [NOWHERE, NOWHERE]
        assert NOWHERE in settings.postgres_url
        assert NOWHERE in settings.command_service_url


def test_processes_the_tests_start_get_nowhere_even_from_a_shell_that_names_the_stack(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # `make fuzz` runs outside pytest: a shell that exported make up's endpoints must not leak
    for name in ENDPOINTS:
        monkeypatch.setenv(name, "127.0.0.1:29042")
    env = isolated_environ(POSTGRES_URL="postgresql://x@127.0.0.1:5/mine")
    assert env["POSTGRES_URL"] == "postgresql://x@127.0.0.1:5/mine"
    assert {name: env[name] for name in ENDPOINTS if name != "POSTGRES_URL"} == {
        name: value for name, value in ENDPOINTS.items() if name != "POSTGRES_URL"
    }


def _settings_calls(path: Path) -> list[int]:
    tree = ast.parse(path.read_text(), str(path))
    return [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
        if node.func.id == "Settings"
    ]


def test_no_test_builds_settings_with_the_local_stack_defaults() -> None:
    tests = ROOT / "tests"
    allowed = {tests / "isolation.py"}
    found = {
        f"{path.relative_to(ROOT)}:{line}"
        for path in tests.rglob("*.py")
        if path not in allowed
        for line in _settings_calls(path)
    }
    assert not found, f"use tests.isolation.isolated_settings(...) instead: {sorted(found)}"
