"""CORS_ORIGINS on the gateway: the same grant as the command service behind the same public
URL, and a browser app may read the freshness header of a read."""

from __future__ import annotations

import httpx
import pytest

from api_gateway.app import create_app
from tests.api.support import API, Tokens, api_settings
from tests.gateway.conftest import Gateway

pytestmark = pytest.mark.integration

ALLOWED = "https://app.healthpay.tech"


def _client(gw: Gateway, origins: tuple[str, ...]) -> httpx.AsyncClient:
    app = create_app(api_settings(cors_origins=origins))
    app.state.read_side = gw.app.state.read_side  # the REST reads need nothing else
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw.test")


@pytest.mark.parametrize("path", ["/graphql", f"{API}/medcards/x/claims"])
async def test_a_listed_origin_passes_the_preflight(gateway: Gateway, path: str) -> None:
    async with _client(gateway, (ALLOWED,)) as client:
        answer = await client.options(
            path,
            headers={
                "Origin": ALLOWED,
                "Access-Control-Request-Method": "POST" if path == "/graphql" else "GET",
                "Access-Control-Request-Headers": "authorization,content-type,x-min-position",
            },
        )
    assert answer.status_code == 200
    assert answer.headers["access-control-allow-origin"] == ALLOWED
    allowed = answer.headers["access-control-allow-headers"].lower()
    assert {"authorization", "x-min-position", "idempotency-key"} <= set(allowed.split(", "))


async def test_a_read_exposes_its_position_to_the_listed_origin_only(
    gateway: Gateway, tokens: Tokens
) -> None:
    url = f"{API}/medcards/{gateway.world.family_card}"
    async with _client(gateway, (ALLOWED,)) as client:
        granted = await client.get(url, headers={"Origin": ALLOWED, **tokens.admin()})
        refused = await client.get(
            url, headers={"Origin": "https://evil.example", **tokens.admin()}
        )
    assert granted.status_code == 200
    assert granted.headers["access-control-allow-origin"] == ALLOWED
    assert "x-projection-position" in granted.headers["access-control-expose-headers"].lower()
    assert "access-control-allow-origin" not in refused.headers


async def test_no_origins_configured_grants_nothing(gateway: Gateway) -> None:
    async with _client(gateway, ()) as client:
        answer = await client.options(
            "/graphql", headers={"Origin": ALLOWED, "Access-Control-Request-Method": "POST"}
        )
    assert "access-control-allow-origin" not in answer.headers
