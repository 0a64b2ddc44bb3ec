"""The REST fuzz: Schemathesis over the public OpenAPI document, once per role.

The document is the gateway's own /openapi.json, as a client at the public URL gets it, with
one change: each operation names the server that answers it (writes: the command service,
reads: the gateway), which is what the edge does by method at the public URL. It is served
to Schemathesis from a local HTTP server, since Schemathesis honours per-operation servers
only for a document it fetched.

Admin and ops fuzz every operation from scratch (stateful phase: the links the document
declares, e.g. a card issued, then claimed on, reversed, read with minPosition). The
pharmacy and the member can create little of their own, so their runs aim every path id at
the seeded world they may act on (tests/fuzz/stack.py).
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import tempfile
import threading
from collections import Counter
from dataclasses import dataclass, field
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from tests.fuzz.stack import Stack

SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
WRITE_METHODS = frozenset({"post", "put", "patch", "delete"})
# Replaced by tests/fuzz/hooks.py's stricter server_error and valid_input_refused.
REPLACED_CHECKS = "not_a_server_error,positive_data_acceptance"


@dataclass(frozen=True, slots=True)
class RoleRun:
    role: str
    seconds: int
    seeded_ids: bool  # aim path ids at the seeded world


@dataclass(slots=True)
class RestResult:
    role: str
    generated: int = 0
    exit_code: int = 0
    failures: list[dict[str, Any]] = field(default_factory=list)
    errors: list[Any] = field(default_factory=list)
    answers: Counter[str] = field(default_factory=Counter)  # "METHOD path status" -> count
    logs: list[Path] = field(default_factory=list)  # Schemathesis's output: the failures' detail


def routed_document(stack: Stack) -> dict[str, Any]:
    """The public document, each operation sent where the edge would send it."""
    document: dict[str, Any] = httpx.get(stack.gateway_url + "/openapi.json", timeout=30).json()
    routed = copy.deepcopy(document)
    for item in routed["paths"].values():
        for method, operation in item.items():
            url = stack.commands_url if method in WRITE_METHODS else stack.gateway_url
            operation["servers"] = [{"url": url}]
    return routed


class DocumentServer:
    """Serves one file over HTTP on a free local port until closed."""

    def __init__(self, directory: Path) -> None:
        handler = partial(_QuietHandler, directory=str(directory))
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def _config(stack: Stack, run: RoleRun) -> str:
    lines = ["[phases.stateful]", "max-steps = 12", ""]
    if run.seeded_ids:
        lines.append("[parameters]")
        for name, key in (
            ("card_id", "card"),
            ("wallet_id", "wallet"),
            ("claim_id", "claim"),
            ("beneficiary_id", "beneficiary"),
            ("pharmacy_id", "pharmacy"),  # the fuzz pharmacy's statement
            ("debit_id", "debit"),
            ("hold_id", "hold"),
        ):
            lines.append(f'"path.{name}" = "{stack.seeded[key]}"')
    return "\n".join(lines) + "\n"


# The coverage phase (boundary values of every keyword) runs on one worker: with several,
# Hypothesis's lambda descriptions race in CPython 3.11's AST constructor (a RuntimeError
# inside Schemathesis, not an answer of ours). Fuzzing and stateful share the time budget.
PASSES = (("examples,coverage", 1, None), ("fuzzing,stateful", 4, 1.0))


def run_role(stack: Stack, document_url: str, run: RoleRun, workdir: Path, seed: int) -> RestResult:
    config = workdir / f"schemathesis-{run.role}.toml"
    config.write_text(_config(stack, run))
    result = RestResult(run.role)
    for phases, workers, share in PASSES:
        seconds = None if share is None else max(5, int(run.seconds * share))
        _one_pass(stack, document_url, run, workdir, seed, phases, workers, seconds, config, result)
    return result


def _one_pass(
    stack: Stack,
    document_url: str,
    run: RoleRun,
    workdir: Path,
    seed: int,
    phases: str,
    workers: int,
    seconds: int | None,
    config: Path,
    result: RestResult,
) -> None:
    name = f"{run.role}-{phases.replace(',', '-')}"
    report = workdir / f"report-{name}.json"
    counts = workdir / f"counts-{name}.json"
    command = [
        str(SCHEMATHESIS),
        "--config-file",
        str(config),
        "run",
        f"{document_url}/openapi.json",
        "--header",
        f"Authorization: Bearer {stack.tokens[run.role]}",
        "--checks",
        "all",
        "--exclude-checks",
        REPLACED_CHECKS,
        "--phases",
        phases,
        *(["--max-time", str(seconds)] if seconds is not None else []),
        "--workers",
        str(workers),
        "--seed",
        str(seed),
        "--generation-database",
        "none",
        # A health check judges the generator, not the API: an operation whose body is mostly
        # patterns (a beneficiary: national id, birth date, phone) sometimes draws too few
        # inputs past them for Hypothesis's taste, and that counted as an error of the run.
        "--suppress-health-check",
        "filter_too_much",
        "--report",
        "json",
        "--report-json-path",
        str(report),
        "--no-color",
        "--output-truncate",
        "true",
    ]
    env = {
        **os.environ,
        "SCHEMATHESIS_HOOKS": "tests.fuzz.hooks",
        "FUZZ_COUNTS_FILE": str(counts),
        "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
    }
    log = workdir / f"schemathesis-{name}.log"
    with log.open("w") as out:
        done = subprocess.run(command, env=env, stdout=out, stderr=subprocess.STDOUT, check=False)
    result.exit_code = max(result.exit_code, done.returncode)
    result.logs.append(log)
    if report.exists():
        data = json.loads(report.read_text())
        result.generated += int(data["test_cases"]["generated"])
        result.failures += [failure | {"phases": phases} for failure in data["failures"]]
        result.errors += list(data["errors"])
    if counts.exists():
        result.answers.update(json.loads(counts.read_text()))


def run_rest(stack: Stack, runs: list[RoleRun], seed: int, keep: Path | None) -> list[RestResult]:
    workdir = Path(tempfile.mkdtemp(prefix="healthpay-fuzz-")) if keep is None else keep
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "openapi.json").write_text(json.dumps(routed_document(stack)))
    server = DocumentServer(workdir)
    try:
        return [run_role(stack, server.url, run, workdir, seed) for run in runs]
    finally:
        server.close()
