"""The gateway's composition root: /health (seed shape), its probes, /metrics, the REST reads under
/api/v1 over the PostgreSQL read models (api_gateway/rest.py), and GraphQL at /graphql over
the same read-model queries (api_gateway/graphql/), whose mutations are forwarded to the
command service (api_gateway/commands_client.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.requests import Request
from starlette.responses import Response

from api_gateway.commands_client import CommandService
from api_gateway.forwarded_writes import ROUTES as FORWARDED_WRITES
from api_gateway.freshness import ReadSide
from api_gateway.graphql import graphql_route
from api_gateway.graphql.router import PATH as GRAPHQL
from api_gateway.health import Dependencies, check, shows_details
from api_gateway.openapi import describe
from api_gateway.rest import API, ROUTES
from api_gateway.watermarks import Watermarks
from infrastructure.auth.tokens import TokenCodec, TokenVerifier
from infrastructure.http.edge_problems import EDGE_ERROR_ROUTE
from infrastructure.http.fast_routes import FastRoutesApp
from infrastructure.http.metrics import HttpMetrics
from infrastructure.http.probes import add_probes, json_response
from infrastructure.postgres.pool import open_pool, snapshot_reads
from infrastructure.settings import Settings

VERSION = "2.0.0"


def create_app(
    settings: Settings,
    *,
    read_wait_seconds: float | None = None,
    command_transport: httpx.AsyncBaseTransport | None = None,
) -> FastAPI:
    """`read_wait_seconds` bounds how long a read with `minPosition` waits for the projection
    (default: the settings' READ_WAIT_SECONDS);
    `command_transport` carries the forwarded mutations (tests: the command service in-process,
    otherwise the network to `settings.command_service_url`)."""
    registry = CollectorRegistry()
    tokens = TokenVerifier(TokenCodec.from_settings(settings))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool = await open_pool(
            settings.postgres_url, 1, settings.pool_max_size, configure=snapshot_reads
        )
        dependencies = Dependencies(settings, pool)
        app.state.dependencies = dependencies
        wait = settings.read_wait_seconds if read_wait_seconds is None else read_wait_seconds
        watermarks = Watermarks(pool)
        app.state.read_side = ReadSide(pool, tokens, watermarks, wait_seconds=wait)
        commands = CommandService(settings.command_service_url, transport=command_transport)
        app.state.commands = commands
        try:
            yield
        finally:
            await commands.aclose()
            await watermarks.aclose()
            dependencies.close()
            await pool.close()

    app = FastRoutesApp(title="HealthPay Ledger — gateway", version=VERSION, lifespan=lifespan)

    async def health(request: Request) -> Response:
        details = shows_details(tokens, request.headers)
        status, body = await check(request.app.state.dependencies, VERSION, details=details)
        return json_response(body, status)

    async def readiness(request: Request) -> dict[str, bool]:
        # Reads come from PostgreSQL alone: a Kafka or CQL outage delays the projections (and
        # /health says so) but every read still answers, so it takes no gateway out.
        return {"postgres": (await request.app.state.dependencies.postgres()).up}

    async def metrics_page(request: Request) -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    # The reads, the forwarded write and GraphQL skip FastAPI's per-request layers; the
    # security headers, CORS (the command service grants the same: one public URL) and the
    # metrics wrap every route (infrastructure/http/fast_routes.py).
    hot = [*ROUTES, *FORWARDED_WRITES, graphql_route(settings)]
    app.router.routes.extend(hot)  # for url_path_for; requests take the fast path
    describe(app)
    app.add_route("/health", health, methods=["GET"], include_in_schema=False)
    add_probes(app, VERSION, readiness)
    app.add_route("/metrics", metrics_page, methods=["GET"], include_in_schema=False)
    app.router.routes.append(EDGE_ERROR_ROUTE)  # the Ingress's own 413/429, as problem+json
    metrics = HttpMetrics(registry, "api_gateway")
    app.configure_fast_routes((API + "/", GRAPHQL), hot, metrics, settings.cors_origins)
    return app
