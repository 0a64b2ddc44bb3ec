"""The gateway's composition root. For now: /health (seed shape) and /metrics; the GraphQL
and REST reads over the projections come next (issue 5)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import orjson
from fastapi import FastAPI
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.requests import Request
from starlette.responses import Response

from api_gateway.health import Dependencies, check
from infrastructure.http.metrics import HttpMetrics, MetricsMiddleware
from infrastructure.postgres.pool import open_pool
from infrastructure.settings import Settings

VERSION = "2.0.0"


def create_app(settings: Settings) -> FastAPI:
    registry = CollectorRegistry()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool = await open_pool(settings.postgres_url, 1, settings.pool_max_size)
        dependencies = Dependencies(settings, pool)
        app.state.dependencies = dependencies
        try:
            yield
        finally:
            dependencies.close()
            await pool.close()

    app = FastAPI(title="HealthPay Ledger — gateway", version=VERSION, lifespan=lifespan)

    async def health(request: Request) -> Response:
        status, body = await check(request.app.state.dependencies, VERSION)
        return Response(orjson.dumps(body), status, media_type="application/json")

    async def metrics_page(request: Request) -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    app.add_route("/health", health, methods=["GET"], include_in_schema=False)
    app.add_route("/metrics", metrics_page, methods=["GET"], include_in_schema=False)
    app.add_middleware(MetricsMiddleware, metrics=HttpMetrics(registry, "api_gateway"))
    return app
