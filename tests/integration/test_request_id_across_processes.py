"""One claim followed by its request id through every process it passes: the edge's access
log, then the JSON log lines of the command service, the relay, the projection worker and the
balance projection (README, "Logs").

Real processes (`healthpay serve-commands`, `relay`, `project`, `project-balances`, started
as an operator starts them, with LOG_LEVEL=DEBUG) over the session's PostgreSQL, Kafka and
Cassandra, behind a real nginx (scripts/edge.sh). The claim is posted to the edge with an
X-Request-ID of the test's own; the test waits for the claim to reach both stores (the read
model row and the CQL month total), then reads every process's log.
"""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import psycopg
import pytest

from infrastructure.cassandra.migrations import migrate
from infrastructure.cassandra.session import CqlConfig, connect, parse_hosts
from projection_service.balances.versions import current_version, table_name
from tests.integration.cassandra_harness import CassandraHarness
from tests.integration.server_scripts import free_port, system_program
from tests.integration.stream_load import Callers
from tests.integration.stream_processes import Fleet, HealthpayProcess, fleet_of

pytestmark = pytest.mark.integration

SECRET = "request-id-secret-0123456789abcdef0123"
EDGE = Path(__file__).resolve().parents[2] / "scripts" / "edge.sh"
WAIT_S = 60.0  # a bound on waiting for the stores, not a figure under test


@pytest.fixture
def fleet(postgres_url: str) -> Iterator[Fleet]:
    with fleet_of(postgres_url, SECRET) as processes:
        processes.env = {**processes.env, "LOG_LEVEL": "DEBUG"}
        yield processes


@pytest.fixture
def cql(cassandra_harness: CassandraHarness, cassandra_keyspace: str) -> Iterator[Any]:
    config = CqlConfig(
        parse_hosts(cassandra_harness.hosts),
        cassandra_keyspace,
        local_dc=cassandra_harness.datacenter,
    )
    with connect(config) as connection:
        migrate(connection.session, config)
        yield connection.session


@pytest.fixture
def edge(tmp_path: Path, fleet: Fleet) -> Iterator[tuple[str, Path]]:
    """nginx in front of one command service (it stands in for the gateway too: only
    commands pass here). Yields the edge's URL and its directory (access.log)."""
    system_program("nginx")
    commands = fleet.command_service()
    directory, port = tmp_path / "edge", free_port()

    def edge_sh(*args: str) -> subprocess.CompletedProcess[str]:
        run = [str(EDGE), *args]
        return subprocess.run(run, capture_output=True, text=True, timeout=60, check=False)

    started = edge_sh("start", str(directory), str(port), commands.url, commands.url)
    try:
        assert started.returncode == 0, started.stdout + started.stderr
        yield f"http://127.0.0.1:{port}", directory
    finally:
        edge_sh("stop", str(directory))


def _until(what: str, check: Any) -> Any:
    deadline = time.monotonic() + WAIT_S
    while True:
        found = check()
        if found:
            return found
        assert time.monotonic() < deadline, f"{what}: not within {WAIT_S}s"
        time.sleep(0.2)


def _json_lines(path: Path) -> list[dict[str, Any]]:
    """Every line of a log, each parsed as JSON (a line that is not fails the test)."""
    lines = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        try:
            lines.append(orjson.loads(line))
        except orjson.JSONDecodeError:
            pytest.fail(f"{path.name}:{number} is not JSON: {line[:200]!r}")
    return lines


def _mentioning(process: HealthpayProcess, request_id: str) -> list[dict[str, Any]]:
    return [
        line
        for line in _json_lines(process.log)
        if line.get("correlation_id") == request_id or request_id in line.get("correlation_ids", ())
    ]


def test_one_claim_is_followed_by_its_request_id_through_every_process(
    postgres_url: str,
    kafka_bootstrap: str,
    kafka_topic: str,
    cassandra_harness: CassandraHarness,
    cassandra_keyspace: str,
    cql: Any,
    fleet: Fleet,
    edge: tuple[str, Path],
) -> None:
    url, edge_dir = edge
    commands = fleet.started[0]
    fleet.use_kafka(kafka_bootstrap, kafka_topic)
    fleet.env = {
        **fleet.env,
        "SCYLLA_HOSTS": cassandra_harness.hosts,
        "SCYLLA_KEYSPACE": cassandra_keyspace,
        "SCYLLA_DC": cassandra_harness.datacenter,
    }
    relay, worker, balances = fleet.relay(), fleet.worker(), fleet.balance_projection()
    callers = Callers.make(SECRET)
    request_id = str(uuid.uuid4())
    with httpx.Client(base_url=url, timeout=30) as client:
        card = client.post(
            "/api/v1/medcards",
            json={"userId": "traced-user", "cardType": "gold", "monthlyLimit": "5000.00"},
            headers=callers.admin,
        )
        assert card.status_code == 201, card.text
        card_id = card.json()["id"]
        answer = client.post(
            f"/api/v1/medcards/{card_id}/claims/prescriptions",
            json={"prescriptionId": "rx-traced", "totalAmount": "250.00"},
            headers={**callers.pharmacies[0], "X-Request-ID": request_id},
        )
    assert answer.status_code == 201, answer.text
    assert answer.headers["X-Request-ID"] == request_id
    claim_id = answer.json()["claimId"]

    # The claim in both stores: the event store (with the id), the read model, the CQL total.
    with psycopg.connect(postgres_url, autocommit=True) as db:
        row = db.execute(
            "SELECT metadata->>'correlation_id' FROM events"
            " WHERE event_type = 'medcard.claim_adjudicated' AND event_data->>'claim_id' = %s",
            (claim_id,),
        ).fetchone()
        assert row == (request_id,)
        _until(
            "the claim in the read models",
            lambda: db.execute(
                "SELECT 1 FROM prescription_claims WHERE prescription_id = 'rx-traced'"
            ).fetchone(),
        )
    spend = table_name("medcard_monthly_spend", current_version(cql, cassandra_keyspace))
    _until(
        "the claim in the CQL month total",
        lambda: cql.execute(
            f"SELECT total_spent FROM {cassandra_keyspace}.{spend} WHERE medcard_id = %s",
            (uuid.UUID(card_id),),
        ).one(),
    )

    # The edge's access log, then each process's own lines for this request id.
    (access,) = _until(
        "the edge's access log line",
        lambda: [
            line
            for line in _json_lines(edge_dir / "access.log")
            if line["request_id"] == request_id
        ],
    )
    assert (access["correlation_id"], access["status"]) == (request_id, 201)
    seen = {
        process.name: _until(
            f"{process.name}'s lines", lambda p=process: _mentioning(p, request_id)
        )
        for process in (commands, relay, worker, balances)
    }
    (done,) = [line for line in seen[commands.name] if line["message"].startswith("command done")]
    assert (done["process"], done["claim_id"], done["aggregate_id"]) == (
        "serve-commands",
        claim_id,
        card_id,
    )
    (published,) = seen[relay.name]
    assert published["process"] == "relay"
    assert published["level"] == "DEBUG"
    projected = [line for line in seen[worker.name] if line["message"].startswith("projected")]
    assert [(line["process"], line["event_type"]) for line in projected] == [
        ("project", "medcard.claim_adjudicated")
    ]
    written = [line for line in seen[balances.name] if line["message"].startswith("projected")]
    assert [(line["process"], line["event_type"]) for line in written] == [
        ("project-balances", "medcard.claim_adjudicated")
    ]
    assert projected[0]["event_id"] == written[0]["event_id"]
