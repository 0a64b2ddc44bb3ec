"""The edge (scripts/edge.sh): one URL, commands hashed by card id, reads to the gateway.

Two stub command processes and a stub gateway, each answering with its own name, stand
behind a real nginx started by scripts/edge.sh on a free port.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.server_scripts import free_port, system_program

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
EDGE = ROOT / "scripts" / "edge.sh"

# Any method, any path: answer who we are and what arrived (HTTP/1.1, keep-alive).
STUB = r"""
import json, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

NAME, PORT = sys.argv[1], int(sys.argv[2])

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    wbufsize = 65536  # one write per answer, flushed by the server

    def _answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        out = json.dumps({
            "instance": NAME,
            "method": self.command,
            "path": self.path,
            "body": body.decode(),
            "requestId": self.headers.get("X-Request-ID"),
            "forwardedFor": self.headers.get("X-Forwarded-For"),
            "forwardedProto": self.headers.get("X-Forwarded-Proto"),
            "host": self.headers.get("Host"),
        }).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    do_GET = do_POST = do_DELETE = do_PUT = do_PATCH = _answer

    def log_message(self, *args):
        pass

ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
"""


def _wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"stub on port {port} exited with {proc.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port}")


def _alive(pid: int) -> bool:
    """Exists and is not a zombie (PID 1 reaps the daemonised nginx master when it likes)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _edge(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(EDGE), *args], capture_output=True, text=True, timeout=30, check=False
    )


@dataclass
class Edge:
    url: str
    dir: Path
    commands: tuple[str, ...]
    gateways: tuple[str, ...] = ("gateway-1", "gateway-2")


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Edge]:
    system_program("nginx")  # installed when missing (scripts/edge.sh would do it too)
    tmp = tmp_path_factory.mktemp("edge")
    stubs: list[subprocess.Popen[bytes]] = []
    ports: dict[str, int] = {}
    try:
        for name in ("command-1", "command-2", "gateway-1", "gateway-2"):
            port = free_port()
            proc = subprocess.Popen([sys.executable, "-c", STUB, name, str(port)])
            stubs.append(proc)
            ports[name] = port
        for proc, port in zip(stubs, ports.values(), strict=True):
            _wait_port(port, proc)
        edge_port = free_port()
        commands = ",".join(f"http://127.0.0.1:{ports[n]}" for n in ("command-1", "command-2"))
        gateways = ",".join(f"http://127.0.0.1:{ports[n]}" for n in ("gateway-1", "gateway-2"))
        started = _edge("start", str(tmp / "edge"), str(edge_port), gateways, commands)
        assert started.returncode == 0, started.stdout + started.stderr
        yield Edge(f"http://127.0.0.1:{edge_port}", tmp / "edge", ("command-1", "command-2"))
    finally:
        _edge("stop", str(tmp / "edge"))
        for proc in stubs:
            proc.terminate()
        for proc in stubs:
            proc.wait(timeout=10)


def _ask(client: httpx.Client, method: str, path: str, **kw: Any) -> dict[str, Any]:
    answer = client.request(method, path, **kw)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    body["edgeRequestId"] = answer.headers.get("X-Request-ID")
    return body


def test_the_same_card_always_reaches_the_same_command_process(edge: Edge) -> None:
    card = str(uuid.uuid4())
    paths = [
        f"/api/v1/medcards/{card}/claims/prescriptions",
        f"/api/v1/medcards/{card}/activate",
        f"/api/v1/medcards/{card}/claims/{uuid.uuid4()}/reversal",
        f"/api/v1/medcards/{card}/beneficiaries",
    ]
    with httpx.Client(base_url=edge.url) as client:
        seen = {_ask(client, "POST", p, json={"n": i})["instance"] for i, p in enumerate(paths * 5)}
        seen.add(_ask(client, "DELETE", f"/api/v1/medcards/{card}/beneficiaries/b-1")["instance"])
    assert len(seen) == 1
    assert seen <= set(edge.commands)


def test_different_cards_spread_over_both_processes(edge: Edge) -> None:
    with httpx.Client(base_url=edge.url) as client:
        seen = [
            _ask(client, "POST", f"/api/v1/medcards/{uuid.uuid4()}/claims/prescriptions")[
                "instance"
            ]
            for _ in range(64)
        ]
    assert set(seen) == set(edge.commands)
    # consistent hashing over 2 processes: neither gets (nearly) everything
    assert min(seen.count(c) for c in edge.commands) >= 8


def test_reads_and_the_rest_go_to_the_gateway(edge: Edge) -> None:
    card = str(uuid.uuid4())
    served = set()
    with httpx.Client(base_url=edge.url) as client:
        for method, path in 2 * [
            ("GET", f"/api/v1/medcards/{card}"),
            ("GET", f"/api/v1/medcards/{card}/claims?limit=5"),
            ("GET", "/api/v1/wallets/w-1/transactions"),
            ("GET", "/health"),
            ("GET", "/metrics"),
            ("GET", "/docs"),
            ("POST", "/graphql"),
        ]:
            body = _ask(client, method, path, **({"json": {}} if method == "POST" else {}))
            assert body["instance"] in edge.gateways, (method, path)
            assert body["path"] == path
            served.add(body["instance"])
        edge_health = client.get("/edge/health")
    assert edge_health.status_code == 200
    assert edge_health.json()["status"] == "ok"
    assert served == set(edge.gateways)  # reads need no affinity: balanced over every gateway


def test_commands_without_a_card_id_reach_a_command_process(edge: Edge) -> None:
    issue = {"userId": "test-user-1", "cardType": "gold", "monthlyLimit": 5000}
    with httpx.Client(base_url=edge.url) as client:
        seen = [_ask(client, "POST", "/api/v1/medcards", json=issue) for _ in range(32)]
        wallet = _ask(client, "POST", "/api/v1/wallets", json={})
    assert {b["instance"] for b in seen} == set(edge.commands)  # no id: any process
    assert json.loads(seen[0]["body"]) == issue
    assert seen[0]["path"] == "/api/v1/medcards"
    assert wallet["instance"] in edge.commands


def test_proxy_headers_and_request_id(edge: Edge) -> None:
    with httpx.Client(base_url=edge.url) as client:
        mine = _ask(client, "POST", "/api/v1/medcards", headers={"X-Request-ID": "req-123"})
        theirs = _ask(client, "GET", "/health")
    assert mine["requestId"] == mine["edgeRequestId"] == "req-123"
    assert theirs["requestId"]
    assert theirs["requestId"] == theirs["edgeRequestId"]
    assert mine["forwardedFor"] == "127.0.0.1"
    assert mine["forwardedProto"] == "http"
    assert mine["host"] == edge.url.removeprefix("http://")


def test_status_and_clean_stop(tmp_path: Path) -> None:
    system_program("nginx")  # installed when missing (scripts/edge.sh would do it too)
    port, upstream = free_port(), free_port()
    directory = tmp_path / "edge"
    url = f"http://127.0.0.1:{upstream}"
    started = _edge("start", str(directory), str(port), url, url)
    try:
        assert started.returncode == 0, started.stdout + started.stderr
        conf = (directory / "nginx.conf").read_text()
        assert f"listen 127.0.0.1:{port} " in conf
        assert "hash $card_id consistent;" in conf
        assert str(directory) in conf
        assert "/var/" not in conf
        pid = int((directory / "nginx.pid").read_text())
        assert _edge("status", str(directory)).returncode == 0
        # the edge answers even when its upstreams are down: 502, not a hang
        assert httpx.get(f"http://127.0.0.1:{port}/health", timeout=10).status_code == 502
    except BaseException:  # a failed check must not leave nginx running
        _edge("stop", str(directory))
        raise
    stopped = _edge("stop", str(directory))
    assert stopped.returncode == 0, stopped.stderr
    assert not _alive(pid)
    assert _edge("status", str(directory)).returncode == 3
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0
    assert _edge("stop", str(directory)).returncode == 0  # idempotent
