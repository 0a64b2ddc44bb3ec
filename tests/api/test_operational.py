"""/health, the probes, /metrics and /openapi.json of the command service."""

from __future__ import annotations

import asyncio
import re

import pytest

from tests.api.endpoints import ENDPOINTS
from tests.api.support import API, Api, Tokens, issue_card, running_api
from tests.integration.postgres_harness import PostgresHarness

UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


async def test_health_reports_postgres_up(api: Api) -> None:
    response = await api.client.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "healthy"
    assert body["services"]["postgres"] == "up"


async def test_liveness_and_readiness_answer(api: Api) -> None:
    live = await api.client.get("/health/live")
    ready = await api.client.get("/health/ready")
    assert (live.status_code, live.json()) == (200, {"status": "alive", "version": "2.0.0"})
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "version": "2.0.0", "services": {"postgres": "up"}}


@pytest.mark.integration
async def test_a_postgres_outage_makes_it_unready_but_still_alive(
    postgres_harness: PostgresHarness, postgres_url: str
) -> None:
    async with running_api("postgres", postgres_url) as api:
        with postgres_harness.unreachable(postgres_url):
            ready = await api.client.get("/health/ready")
            live = await api.client.get("/health/live")
            health = await api.client.get("/health")
        assert ready.status_code == 503
        assert ready.json()["status"] == "not_ready"
        assert ready.json()["services"] == {"postgres": "down"}
        assert live.status_code == 200  # a restart would not bring PostgreSQL back
        assert health.status_code == 503
        for _ in range(50):  # the pool reconnects on its own
            back = await api.client.get("/health/ready")
            if back.status_code == 200:
                break
            await asyncio.sleep(0.2)
        assert back.status_code == 200, back.text


async def test_metrics_are_labelled_by_route_template(api: Api, tokens: Tokens) -> None:
    card = await issue_card(api, tokens.admin(), "metrics-user")
    suspended = await api.client.post(
        f"{API}/medcards/{card['id']}/suspend", headers=tokens.admin()
    )
    assert suspended.status_code == 200
    missing = await api.client.post(f"{API}/medcards/not-a-uuid/suspend", headers=tokens.admin())
    assert missing.status_code == 404

    response = await api.client.get("/metrics")
    assert response.status_code == 200
    text = response.text
    samples = [line for line in text.splitlines() if line and not line.startswith("#")]
    requests = [line for line in samples if line.startswith("http_requests_total{")]
    durations = [line for line in samples if line.startswith("http_request_duration_seconds")]
    assert requests
    assert durations
    assert any(
        'route="/api/v1/medcards/{card_id}/suspend"' in line and 'status="200"' in line
        for line in requests
    ), requests
    assert any(
        'route="/api/v1/medcards/{card_id}/suspend"' in line and 'status="404"' in line
        for line in requests
    ), requests
    assert any('route="/api/v1/medcards"' in line and 'status="201"' in line for line in requests)
    assert any(
        line.startswith("http_request_duration_seconds_count{")
        and 'route="/api/v1/medcards/{card_id}/suspend"' in line
        for line in durations
    ), durations
    # Never a raw id (nor a malformed one) as a label value.
    assert not UUID_RE.search(text)
    assert "not-a-uuid" not in text


async def test_openapi_lists_every_write_route(api: Api) -> None:
    response = await api.client.get("/openapi.json")
    assert response.status_code == 200
    spec = response.json()
    paths = spec["paths"]
    for endpoint in ENDPOINTS:
        assert endpoint.route in paths, endpoint.route
        operation = paths[endpoint.route].get(endpoint.method.lower())
        assert operation is not None, (endpoint.route, endpoint.method)
        assert operation["operationId"] == endpoint.name
        if endpoint.body is not None:
            ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
            assert ref.rsplit("/", 1)[-1] in spec["components"]["schemas"]
    assert "Problem" in spec["components"]["schemas"]
