"""The edge (scripts/edge.sh): one URL, commands hashed by card id, reads to the gateway;
its own answers (errors, rate limits, /metrics) as problem+json.

Two stub command processes and two stub gateways, each answering with its own name, stand
behind a real nginx started by scripts/edge.sh on a free port.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from domain.identity import luhn_check_digit
from infrastructure.http.edge_problems import EDGE_PROBLEMS, RETRY_AFTER
from infrastructure.http.headers import NO_STORE, SECURITY_HEADERS
from tests.integration.server_scripts import free_port, system_program

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
EDGE = ROOT / "scripts" / "edge.sh"
TEMPLATE = ROOT / "scripts" / "edge" / "nginx.conf.template"
COMPOSE = ROOT / "scripts" / "edge" / "nginx.compose.conf"
INGRESS = ROOT / "k8s" / "ingress.yaml"

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
            "correlationId": self.headers.get("X-Correlation-Id"),
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


def _edge(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(EDGE), *args], capture_output=True, text=True, timeout=30, check=False, env=env
    )


@dataclass
class Edge:
    url: str
    dir: Path
    commands: tuple[str, ...]
    gateways: tuple[str, ...] = ("gateway-1", "gateway-2")


@dataclass(frozen=True)
class Stubs:
    gateways: str  # the gateway URLs, comma-separated (scripts/edge.sh's argument)
    commands: str


@pytest.fixture(scope="module")
def stubs() -> Iterator[Stubs]:
    system_program("nginx")  # installed when missing (scripts/edge.sh would do it too)
    procs: list[subprocess.Popen[bytes]] = []
    ports: dict[str, int] = {}
    try:
        for name in ("command-1", "command-2", "gateway-1", "gateway-2"):
            port = free_port()
            proc = subprocess.Popen([sys.executable, "-c", STUB, name, str(port)])
            procs.append(proc)
            ports[name] = port
        for proc, port in zip(procs, ports.values(), strict=True):
            _wait_port(port, proc)
        commands = ",".join(f"http://127.0.0.1:{ports[n]}" for n in ("command-1", "command-2"))
        gateways = ",".join(f"http://127.0.0.1:{ports[n]}" for n in ("gateway-1", "gateway-2"))
        yield Stubs(gateways, commands)
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=10)


@contextmanager
def _running_edge(directory: Path, stubs: Stubs, **limits: int) -> Iterator[Edge]:
    """An edge over the stubs; `limits` set EDGE_* (e.g. CLIENT_RATE=1)."""
    env = {**os.environ, **{f"EDGE_{k}": str(v) for k, v in limits.items()}}
    port = free_port()
    started = _edge("start", str(directory), str(port), stubs.gateways, stubs.commands, env=env)
    try:
        assert started.returncode == 0, started.stdout + started.stderr
        yield Edge(f"http://127.0.0.1:{port}", directory, ("command-1", "command-2"))
    finally:
        _edge("stop", str(directory))


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory, stubs: Stubs) -> Iterator[Edge]:
    with _running_edge(tmp_path_factory.mktemp("edge") / "edge", stubs) as running:
        yield running


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


def _card_number(serial: int) -> str:
    body = f"6048{serial:011d}"
    return body + luhn_check_digit(body)


def test_a_claim_by_card_number_reaches_the_cards_process_by_its_number(edge: Edge) -> None:
    """POST /api/v1/claims/prescriptions and /api/v1/eligibility name the card in the body:
    hashed on the number, wherever it stands in the body; different numbers spread."""
    number = _card_number(1)
    bodies = [
        {"cardNumber": number, "prescriptionId": f"rx-{i}", "totalAmount": "10.00"}
        for i in range(10)
    ] + [{"prescriptionId": "rx-first", "totalAmount": "1.00", "cardNumber": number}]
    with httpx.Client(base_url=edge.url) as client:
        same = {
            _ask(client, "POST", "/api/v1/claims/prescriptions", json=b)["instance"] for b in bodies
        }
        same.add(
            _ask(client, "POST", "/api/v1/eligibility", json={"cardNumber": number})["instance"]
        )
        spread = [
            _ask(
                client,
                "POST",
                "/api/v1/claims/prescriptions",
                json={"cardNumber": _card_number(serial), "prescriptionId": "rx"},
            )
            for serial in range(64)
        ]
    assert len(same) == 1
    assert same <= set(edge.commands)
    seen = [answer["instance"] for answer in spread]
    assert set(seen) == set(edge.commands)
    assert min(seen.count(c) for c in edge.commands) >= 8
    assert json.loads(spread[0]["body"])["cardNumber"] == _card_number(0)  # passed on as sent


def test_reads_and_the_rest_go_to_the_gateway(edge: Edge) -> None:
    card = str(uuid.uuid4())
    served = set()
    with httpx.Client(base_url=edge.url) as client:
        for method, path in 2 * [
            ("GET", f"/api/v1/medcards/{card}"),
            ("GET", f"/api/v1/medcards/{card}/claims?limit=5"),
            ("GET", "/api/v1/wallets/w-1/transactions"),
            ("GET", "/health"),
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


def test_the_payment_gateways_callbacks_reach_a_command_process_as_sent(edge: Edge) -> None:
    """No token (the signature is in the body or the query), both passed on unchanged."""
    notification = {"fawryRefNumber": "970177", "messageSignature": "ab" * 32}
    paths = ["/api/v1/payments/fawry/callback", "/api/v1/payments/paymob/callback?hmac=ab12"]
    with httpx.Client(base_url=edge.url) as client:
        for path in paths:
            answer = _ask(client, "POST", path, json=notification)
            assert answer["instance"] in edge.commands, path
            assert answer["path"] == path
            assert json.loads(answer["body"]) == notification


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


def _access_log_lines(edge: Edge, request_id: str) -> list[dict[str, Any]]:
    """The access log's lines for one request id (the log is flushed at least every second)."""
    deadline = time.monotonic() + 5
    while True:
        lines = [json.loads(line) for line in (edge.dir / "access.log").read_text().splitlines()]
        found = [line for line in lines if line["request_id"] == request_id]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def test_the_request_id_is_the_correlation_id_and_the_access_log_is_json(edge: Edge) -> None:
    secret = "Bearer token-that-must-not-be-logged"
    with httpx.Client(base_url=edge.url) as client:
        claim = _ask(
            client,
            "POST",
            "/api/v1/medcards/c1/claims/prescriptions?nationalId=29001011234567",
            headers={"X-Request-ID": "req-claim-1", "Authorization": secret},
        )
        own = _ask(client, "POST", "/api/v1/medcards", headers={"X-Correlation-Id": "corr-9"})
        unfit = _ask(client, "GET", "/health", headers={"X-Request-ID": "x" * 101})
    assert claim["requestId"] == claim["correlationId"] == "req-claim-1"
    assert own["correlationId"] == "corr-9"
    assert own["requestId"] == own["edgeRequestId"]
    # an id the command service would refuse as a correlation id is replaced by nginx's own
    assert unfit["requestId"] == unfit["edgeRequestId"] != "x" * 101
    assert re.fullmatch(r"[0-9a-f]{32}", unfit["requestId"])
    (line,) = _access_log_lines(edge, "req-claim-1")
    assert line["correlation_id"] == "req-claim-1"
    assert (line["method"], line["path"], line["status"]) == (
        "POST",
        "/api/v1/medcards/c1/claims/prescriptions",
        200,
    )
    assert isinstance(line["request_time"], float | int)
    logged = (edge.dir / "access.log").read_text()
    for personal in ("token-that-must-not-be-logged", "29001011234567", "127.0.0.1 ["):
        assert personal not in logged, personal
    assert _access_log_lines(edge, own["requestId"])[0]["correlation_id"] == "corr-9"


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
        # the edge answers even when its upstreams are down: a 502 problem, not a hang
        down = httpx.get(f"http://127.0.0.1:{port}/health", timeout=10)
        assert _edge_problem(down, 502, "upstream_unavailable")["title"] == "Bad Gateway"
        assert down.headers["retry-after"] == "1"
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


# ------------------------------------------------------------ the edge's own answers


def _edge_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """An answer the edge made itself: problem+json with the apps' headers, no HSTS."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert (body["status"], body["code"], body["type"]) == (
        status,
        code,
        f"https://healthpay.tech/problems/{code}",
    )
    for name, value in (*SECURITY_HEADERS, NO_STORE):
        assert response.headers.get_list(name) == [value], (name, response.headers)
    assert "strict-transport-security" not in response.headers  # plain http: docs/edge.md
    assert response.headers["x-request-id"]
    return body


def _raw(url: str, request: bytes) -> httpx.Response:
    """What the edge answers to bytes no HTTP client would send."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(request)
        data = b""
        while b"\r\n\r\n" not in data or len(data) < _expected_length(data):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode().split("\r\n")
    headers = [(name, value) for name, _, value in (h.partition(": ") for h in header_lines)]
    return httpx.Response(int(status_line.split()[1]), headers=headers, content=body)


def _expected_length(data: bytes) -> int:
    head, _, _ = data.partition(b"\r\n\r\n")
    found = re.search(rb"(?im)^content-length: (\d+)", head)
    return len(head) + 4 + (int(found.group(1)) if found else 0)


def test_the_edges_own_errors_are_problem_json(edge: Edge) -> None:
    with httpx.Client(base_url=edge.url) as client:
        _edge_problem(client.get("/__edge/problem"), 404, "not_found")
        long_uri = client.get("/api/v1/medcards/" + "a" * 20_000)
        _edge_problem(long_uri, 414, "uri_too_long")
        big_header = client.get("/health", headers={"X-Big": "a" * 20_000})
        _edge_problem(big_header, 400, "bad_request")
    trace = _raw(edge.url, b"TRACE /api/v1/medcards HTTP/1.1\r\nHost: edge\r\n\r\n")
    _edge_problem(trace, 405, "method_not_allowed")
    assert "GET" in trace.headers["allow"]
    for garbage in (b"GARBAGE\r\n\r\n", b"GET /%00 HTTP/1.1\r\nHost: edge\r\n\r\n"):
        _edge_problem(_raw(edge.url, garbage), 400, "bad_request")
    coding = b"POST /api/v1/medcards HTTP/1.1\r\nHost: e\r\nTransfer-Encoding: zip\r\n\r\n"
    _edge_problem(_raw(edge.url, coding), 501, "not_implemented")


def test_proxied_answers_keep_the_apps_headers_and_get_none_of_the_edges(edge: Edge) -> None:
    """The apps set the security headers (infrastructure/http/headers.py); the edge adds them
    to its own answers only, so an app's answer never carries them twice."""
    with httpx.Client(base_url=edge.url) as client:
        proxied = client.get("/api/v1/medcards/x")
        health = client.get("/edge/health")
    assert proxied.status_code == 200
    for name, _ in (*SECURITY_HEADERS, NO_STORE):
        assert name not in proxied.headers, name  # the stub sets none: nor does the edge
        assert health.headers.get_list(name), name


def test_metrics_are_not_reachable_through_the_edge(edge: Edge) -> None:
    with httpx.Client(base_url=edge.url) as client:
        for method in ("GET", "POST", "HEAD"):
            answer = client.request(method, "/metrics")
            assert answer.status_code == 404, method
        body = _edge_problem(client.get("/metrics?name[]=x"), 404, "not_found")
    assert "instance" not in body  # the stub answers 200 with its name: it was never asked


def test_a_body_over_the_limit_is_413_before_it_is_read(edge: Edge) -> None:
    # only the headers are sent: the answer comes from the Content-Length alone
    declared = b"POST /api/v1/medcards HTTP/1.1\r\nHost: edge\r\nContent-Length: 2000000\r\n"
    answer = _raw(edge.url, declared + b"Content-Type: application/json\r\n\r\n")
    assert _edge_problem(answer, 413, "payload_too_large")["detail"] == "the body exceeds 1 MB"
    with httpx.Client(base_url=edge.url) as client:
        sent = client.post("/graphql", content=b"x" * (1024 * 1024 + 1))
        _edge_problem(sent, 413, "payload_too_large")
        assert client.post("/graphql", content=b"x" * (1024 * 1024 - 4096)).status_code == 200


def test_rate_limits_per_token_with_a_ceiling_per_address(tmp_path: Path, stubs: Stubs) -> None:
    """Per client (its token; its address without one) and per address: forged tokens are
    free, so each makes a new client but all of them share their address's ceiling."""
    limits = {"CLIENT_RATE": 1, "CLIENT_BURST": 3, "ADDRESS_RATE": 1, "ADDRESS_BURST": 14}
    with (
        _running_edge(tmp_path / "limited", stubs, **limits) as limited,
        httpx.Client(base_url=limited.url) as client,
    ):
        started = time.monotonic()
        first = [client.get("/api/v1/medcards/x", headers=_bearer("a")) for _ in range(10)]
        other = client.get("/api/v1/medcards/x", headers=_bearer("b"))
        forged = [client.get("/graphql", headers=_bearer(f"f{n}")) for n in range(20)]
        elapsed = time.monotonic() - started
        edge_health = client.get("/edge/health")
    leaked = int(elapsed) + 1  # what the 1 r/s rates let through meanwhile
    statuses = [a.status_code for a in first]
    assert statuses[:4] == [200] * 4  # the first request and its burst of 3
    assert 429 in statuses
    assert statuses.count(200) <= 4 + leaked
    refused = next(a for a in first if a.status_code == 429)
    _edge_problem(refused, 429, "rate_limited")
    assert refused.headers["retry-after"] == "1"
    assert other.status_code == 200  # another token: a budget of its own
    # 15 per address (1 + burst 14): the forged tokens run out of it, each fresh as it is
    forged_statuses = [a.status_code for a in forged]
    assert 429 in forged_statuses
    assert statuses.count(200) + 1 + forged_statuses.count(200) <= 15 + leaked
    assert edge_health.status_code == 200  # the edge's own liveness is never limited


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# ------------------------------------------------------- one table, one set of limits


def _nginx_map(text: str, variable: str) -> dict[str, str]:
    body = re.search(r"map \$status \$" + variable + r" \{(.*?)\n\s*\}", text, re.S)
    assert body is not None, variable
    pairs = re.findall(r'^\s*(\S+)\s+("[^"]*"|[^\s;]+);', body.group(1), re.M)
    return {key: value.strip('"') for key, value in pairs}


def test_the_edge_and_the_gateway_render_the_same_problems() -> None:
    """The local edge's problems (nginx maps) and the Ingress's (the gateway's table)."""
    template = TEMPLATE.read_text()
    codes, details = (
        _nginx_map(template, "edge_problem_code"),
        _nginx_map(template, "edge_problem_detail"),
    )
    titles = _nginx_map(template, "edge_problem_title")
    retry = {int(k) for k, v in _nginx_map(template, "edge_retry_after").items() if v}
    assert {int(k) for k in codes if k != "default"} == set(EDGE_PROBLEMS)
    for status, (code, detail) in EDGE_PROBLEMS.items():
        assert (codes[str(status)], details[str(status)]) == (code, detail), status
        assert titles[str(status)]
    assert retry == set(RETRY_AFTER)
    for status in EDGE_PROBLEMS:  # every code nginx may answer itself goes to the problem page
        assert re.search(rf"error_page [\d ]*\b{status}\b[\d ]* /__edge/problem;", template)


def test_the_compose_edge_has_the_templates_limits_and_problems() -> None:
    template, compose = TEMPLATE.read_text(), COMPOSE.read_text()

    def blocks(text: str) -> list[str]:
        start = text.index("    map $http_authorization $edge_client")
        end = text.index("}\n", text.index("map $status $edge_allow")) + 2
        server = text[
            text.index("        limit_req zone=per_client") : text.index("location /api/v1/ {")
        ]
        unrated = re.sub(r"(rate=|burst=)(@\w+@|\d+)", r"\1N", text[start:end] + server)
        return unrated.split("\n")

    assert blocks(compose) == blocks(template)


def test_every_ingress_limits_alike_and_hides_metrics() -> None:
    documents = list(yaml.safe_load_all(INGRESS.read_text()))
    ingresses = [d for d in documents if d["kind"] == "Ingress"]
    shared = (
        "proxy-body-size",
        "limit-rps",
        "limit-burst-multiplier",
        "limit-connections",
        "custom-http-errors",
        "default-backend",
    )
    seen = {
        tuple(d["metadata"]["annotations"][f"nginx.ingress.kubernetes.io/{k}"] for k in shared)
        for d in ingresses
    }
    assert seen == {("1m", "1000", "2", "200", "413,429", "api-gateway")}
    hidden = [
        d
        for d in ingresses
        for rule in d["spec"]["rules"]
        for p in rule["http"]["paths"]
        if p["path"] == "/metrics"
    ]
    [metrics] = hidden
    assert metrics["metadata"]["annotations"]["nginx.ingress.kubernetes.io/rewrite-target"] == "/"
