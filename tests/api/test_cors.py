"""CORS_ORIGINS is honoured on the write routes and on the rest alike; others get no grant."""

from __future__ import annotations

import httpx

from command_service.app import create_app
from tests.api.support import API, api_settings, memory_store

ALLOWED = "https://app.healthpay.tech"


async def _preflight(path: str, origin: str) -> httpx.Response:
    app = create_app(api_settings(cors_origins=(ALLOWED,)), memory_store)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://c.test") as client:
            return await client.options(
                path,
                headers={
                    "Origin": origin,
                    "Access-Control-Request-Method": "POST",
                    "Access-Control-Request-Headers": "authorization,content-type,idempotency-key",
                },
            )


async def test_a_listed_origin_may_post_claims() -> None:
    answer = await _preflight(
        f"{API}/medcards/00000000-0000-0000-0000-000000000001/claims/prescriptions", ALLOWED
    )
    assert answer.status_code == 200
    assert answer.headers["access-control-allow-origin"] == ALLOWED
    assert "idempotency-key" in answer.headers["access-control-allow-headers"].lower()


async def test_an_unlisted_origin_gets_no_grant() -> None:
    answer = await _preflight(f"{API}/medcards", "https://evil.example")
    assert "access-control-allow-origin" not in answer.headers


async def test_the_health_route_follows_the_same_policy() -> None:
    answer = await _preflight("/health", ALLOWED)
    assert answer.headers.get("access-control-allow-origin") == ALLOWED
