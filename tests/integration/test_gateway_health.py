"""/health in the seed's shape over the real servers: names what is down, and recovers; its
details (the CQL driver's view of the cluster) for staff only; liveness asks nothing, and
readiness only PostgreSQL, the one store the reads come from."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from api_gateway.app import create_app
from infrastructure.settings import Settings
from tests.api.support import Tokens, api_settings, assert_problem
from tests.integration.cassandra_harness import CassandraHarness
from tests.integration.kafka_harness import KafkaHarness
from tests.integration.postgres_harness import PostgresHarness

pytestmark = pytest.mark.integration

SEED_KEYS = {"status", "version", "services"}  # docs/product-spec.md, "Health Checks"


@asynccontextmanager
async def _gateway(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw.test") as client:
            yield client


@pytest.fixture
def settings(
    postgres_url: str, cassandra_harness: CassandraHarness, kafka_bootstrap: str, kafka_topic: str
) -> Settings:
    return api_settings(
        postgres_url,
        scylla_hosts=tuple(cassandra_harness.hosts.split(",")),
        kafka_brokers=(kafka_bootstrap,),
        kafka_topic=kafka_topic,
        pool_max_size=2,
    )


@pytest.fixture
def tokens(settings: Settings) -> Tokens:
    return Tokens(settings)


async def _health(
    client: httpx.AsyncClient, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, Any]]:
    answer = await client.get("/health", headers=headers)
    return answer.status_code, answer.json()


async def test_all_up_is_the_seeds_body_exactly_and_staff_see_the_drivers_view(
    settings: Settings, tokens: Tokens
) -> None:
    async with _gateway(settings) as client:
        status, body = await _health(client)
        member_status, member_body = await _health(client, tokens.member("u-1"))
        details = [await _health(client, staff) for staff in (tokens.ops(), tokens.admin())]
    assert status == 200, body
    assert body == {
        "status": "healthy",
        "version": "2.0.0",
        "services": {"postgres": "up", "scylla": "up", "kafka": "up"},
    }
    assert (member_status, member_body) == (status, body)  # not staff: the public body
    for staff_status, staff_body in details:
        assert staff_status == 200
        assert {key: staff_body[key] for key in SEED_KEYS} == body
        hosts = staff_body["details"]["scylla"]["hosts"]
        assert hosts
        assert all(h["up"] for h in hosts)
        assert staff_body["details"]["scylla"]["release_version"].startswith("5.")
        assert staff_body["details"]["kafka"]["partitions"] == 3
    # no internal address in what anyone may read
    addresses = [
        h["address"].rsplit(":", 1)[0] for h in details[0][1]["details"]["scylla"]["hosts"]
    ]
    assert addresses
    assert not any(address in str(body) for address in addresses)


async def test_a_refused_token_on_health_is_a_401_problem(settings: Settings) -> None:
    async with _gateway(settings) as client:
        answer = await client.get("/health", headers={"Authorization": "Bearer not-a-token"})
    assert_problem(answer, 401, "invalid_token")


@pytest.mark.parametrize(
    ("broken", "culprit"),
    [
        ({"scylla_hosts": ("127.0.0.1:1",)}, "scylla"),
        ({"kafka_brokers": ("127.0.0.1:1",)}, "kafka"),
    ],
)
async def test_a_dependency_out_of_reach_makes_it_503_and_names_it(
    settings: Settings, tokens: Tokens, broken: dict[str, Any], culprit: str
) -> None:
    async with _gateway(settings.model_copy(update=broken)) as client:
        status, body = await _health(client)
        staff_status, staff = await _health(client, tokens.ops())
    assert (status, staff_status) == (503, 503)
    assert set(body) == SEED_KEYS
    assert body["status"] == "degraded"
    assert body["services"][culprit] == "down"
    assert [name for name, state in body["services"].items() if state == "up"] == [
        name for name in ("postgres", "scylla", "kafka") if name != culprit
    ]
    assert staff["down"] == [culprit]
    assert staff["services"] == body["services"]


async def test_liveness_asks_no_store_and_readiness_only_postgres(settings: Settings) -> None:
    nowhere = settings.model_copy(
        update={"scylla_hosts": ("127.0.0.1:1",), "kafka_brokers": ("127.0.0.1:1",)}
    )
    async with _gateway(nowhere) as client:
        live = await client.get("/health/live")
        ready = await client.get("/health/ready")
        health, _ = await _health(client)
    assert (live.status_code, live.json()) == (200, {"status": "alive", "version": "2.0.0"})
    # the reads still answer while Kafka and CQL are out of reach: the gateway stays in
    assert ready.status_code == 200, ready.text
    assert ready.json()["services"] == {"postgres": "up"}
    assert health == 503


async def test_a_postgres_outage_makes_it_unready_but_still_alive(
    settings: Settings, postgres_harness: PostgresHarness
) -> None:
    async with _gateway(settings) as client:
        assert (await client.get("/health/ready")).status_code == 200
        with postgres_harness.unreachable(settings.postgres_url):
            ready = await client.get("/health/ready")
            live = await client.get("/health/live")
            status, body = await _health(client)
        assert ready.status_code == 503, ready.text
        assert ready.json()["status"] == "not_ready"
        assert ready.json()["services"] == {"postgres": "down"}
        assert live.status_code == 200
        assert (status, body["services"]["postgres"]) == (503, "down")
        for _ in range(50):  # the pool reconnects on its own
            back = await client.get("/health/ready")
            if back.status_code == 200:
                break
            await asyncio.sleep(0.2)
        assert back.status_code == 200, back.text


async def _down_then_back(
    settings: Settings, harness: KafkaHarness | CassandraHarness, culprit: str, tries: int
) -> None:
    """Healthy; 503 naming `culprit` once the harness's server is taken down; healthy again
    within `tries` probes of its restart."""
    async with _gateway(settings) as client:
        assert (await _health(client))[0] == 200
        await asyncio.to_thread(harness.take_down)
        status, body = await _health(client)
        assert status == 503
        assert body["services"][culprit] == "down"
        await asyncio.to_thread(harness.restart)
        for _ in range(tries):
            status, body = await _health(client)
            if status == 200:
                break
            await asyncio.sleep(0.2)
        assert status == 200, body


@pytest.fixture
def private_kafka() -> Iterator[KafkaHarness]:
    harness = KafkaHarness.launch()
    yield harness
    harness.stop()


async def test_health_turns_503_when_kafka_stops_and_recovers_when_it_is_back(
    settings: Settings, private_kafka: KafkaHarness
) -> None:
    topic = private_kafka.create_topic(partitions=2)
    mine = settings.model_copy(
        update={"kafka_brokers": (private_kafka.bootstrap,), "kafka_topic": topic}
    )
    # the admin client reconnects on its own schedule
    await _down_then_back(mine, private_kafka, "kafka", tries=50)


@pytest.fixture
def private_cassandra() -> Iterator[CassandraHarness]:
    harness = CassandraHarness.launch()
    yield harness
    harness.stop()


async def test_health_turns_503_when_cassandra_stops_and_recovers_when_it_is_back(
    settings: Settings, private_cassandra: CassandraHarness
) -> None:
    mine = settings.model_copy(update={"scylla_hosts": tuple(private_cassandra.hosts.split(","))})
    # the gateway reconnects on the next probe after a failure
    await _down_then_back(mine, private_cassandra, "scylla", tries=75)
