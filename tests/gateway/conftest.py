"""Fixtures for the gateway's REST reads: one database per module, a world written through the
real command service (in-process), projected into the read models by the real projector, and
the gateway built by its composition root over the same database."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from fastapi import FastAPI

from api_gateway.app import create_app
from infrastructure.postgres.pool import Pool, open_pool
from tests.api.support import Api, Tokens, api_settings, running_api
from tests.integration.postgres_harness import PostgresHarness
from tests.projections.support import World, project, stored_events, write_world

WAIT_SECONDS = 1.0  # the gateway's minPosition bound in these tests


@dataclass(slots=True)
class Gateway:
    app: FastAPI
    client: httpx.AsyncClient
    api: Api  # the command service, to write more
    pool: Pool
    world: World
    projected: int  # the last position projected so far

    async def project_new(self) -> int:
        """Projects everything written since the last call; the new high position."""
        events = await self.api.store.read_all(self.projected, 1_000_000)
        if events:
            await project(self.pool, events)
            self.projected = events[-1].position
        return self.projected


@pytest.fixture(scope="session")
def tokens() -> Tokens:
    return Tokens(api_settings())


@pytest.fixture(scope="module")
async def gateway(postgres_harness: PostgresHarness) -> AsyncIterator[Gateway]:
    url = postgres_harness.create_database()
    try:
        async with running_api("postgres", url) as api:
            world = await write_world(api)
            pool = await open_pool(url, min_size=1, max_size=4)
            try:
                events = await stored_events(api)
                await project(pool, events)
                app = create_app(api_settings(url), read_wait_seconds=WAIT_SECONDS)
                async with app.router.lifespan_context(app):
                    transport = httpx.ASGITransport(app=app)
                    async with httpx.AsyncClient(
                        transport=transport, base_url="http://gw.test"
                    ) as client:
                        yield Gateway(app, client, api, pool, world, events[-1].position)
            finally:
                await pool.close()
    finally:
        postgres_harness.drop_database(url)


@pytest.fixture(scope="module")
async def writer(gateway: Gateway) -> AsyncIterator[httpx.AsyncClient]:
    """A gateway whose mutations reach the in-process command service of `gateway.api`."""
    assert gateway.api.postgres_url is not None
    app = create_app(
        api_settings(gateway.api.postgres_url),
        read_wait_seconds=WAIT_SECONDS,
        command_transport=httpx.ASGITransport(app=gateway.api.app),
    )
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw.test") as client:
            yield client
