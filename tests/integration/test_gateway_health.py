"""/health in the seed's shape over the real servers: names what is down, and recovers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from api_gateway.app import create_app
from infrastructure.settings import Settings
from tests.api.support import api_settings
from tests.integration.cassandra_harness import CassandraHarness
from tests.integration.kafka_harness import KafkaHarness

pytestmark = pytest.mark.integration


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


async def _health(client: httpx.AsyncClient) -> tuple[int, dict[str, Any]]:
    answer = await client.get("/health")
    return answer.status_code, answer.json()


async def test_all_up_is_healthy_with_the_drivers_view_of_the_cluster(settings: Settings) -> None:
    async with _gateway(settings) as client:
        status, body = await _health(client)
    assert status == 200, body
    assert body["status"] == "healthy"
    assert body["version"] == "2.0.0"
    assert body["services"] == {"postgres": "up", "scylla": "up", "kafka": "up"}
    hosts = body["details"]["scylla"]["hosts"]
    assert hosts
    assert all(h["up"] for h in hosts)
    assert body["details"]["scylla"]["release_version"].startswith("5.")
    assert body["details"]["kafka"]["partitions"] == 3


@pytest.mark.parametrize(
    ("broken", "culprit"),
    [
        ({"scylla_hosts": ("127.0.0.1:1",)}, "scylla"),
        ({"kafka_brokers": ("127.0.0.1:1",)}, "kafka"),
    ],
)
async def test_a_dependency_out_of_reach_makes_it_503_and_names_it(
    settings: Settings, broken: dict[str, Any], culprit: str
) -> None:
    async with _gateway(settings.model_copy(update=broken)) as client:
        status, body = await _health(client)
    assert status == 503
    assert body["status"] == "degraded"
    assert body["down"] == [culprit]
    assert body["services"][culprit] == "down"
    assert [name for name, state in body["services"].items() if state == "up"] == [
        name for name in ("postgres", "scylla", "kafka") if name != culprit
    ]


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
        assert body["down"] == [culprit]
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
