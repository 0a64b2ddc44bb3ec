"""The command service's composition root: builds the app and, on start, its connections."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from fastapi import FastAPI
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.requests import Request
from starlette.responses import Response

from command_service.aggregates import Aggregates
from command_service.execution import Executor
from command_service.http_endpoints import WriteSide
from command_service.openapi import describe
from command_service.routes import CLAIM_ROUTES, PREFIX, ROUTES
from infrastructure.auth.tokens import TokenCodec, TokenVerifier
from infrastructure.eventstore.group_commit import GroupCommitAppender
from infrastructure.eventstore.port import EventStore
from infrastructure.eventstore.postgres import PostgresEventStore
from infrastructure.http.fast_routes import FastRoutesApp
from infrastructure.http.metrics import HttpMetrics
from infrastructure.http.probes import add_probes, json_response
from infrastructure.postgres.pool import Pool, open_pool
from infrastructure.settings import Settings

VERSION = "2.0.0"
log = logging.getLogger("healthpay.command_service")

Ping = Callable[[], Awaitable[bool]]


@asynccontextmanager
async def postgres_store(settings: Settings) -> AsyncIterator[tuple[EventStore, Ping]]:
    """The default event store: PostgreSQL through a pool opened for the app's lifetime.

    The pool connects in the background (`wait=False`): the process starts, answers its
    probes and reports itself not ready while PostgreSQL is out of reach, and serves as soon
    as the connections come up. Waiting here instead would keep the process from listening
    at all, so an orchestrator would see a dead process rather than an unready one and
    restart it in a loop for as long as the database is away."""
    pool = await open_pool(
        settings.postgres_url, settings.pool_min_size, settings.pool_max_size, wait=False
    )
    try:
        yield PostgresEventStore(pool), lambda: _postgres_up(pool)
    finally:
        await pool.close()


def create_app(
    settings: Settings,
    store_context: Callable[
        [Settings], AbstractAsyncContextManager[tuple[EventStore, Ping]]
    ] = postgres_store,
    card_numbers: Callable[[], str] | None = None,
) -> FastAPI:
    """`card_numbers`: draws a new card number (default: random; tests inject collisions)."""
    registry = CollectorRegistry()
    tokens = TokenVerifier(TokenCodec.from_settings(settings))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with store_context(settings) as (store, ping):
            appender = GroupCommitAppender(store, max_queue=settings.group_commit_max_queue)
            aggregates = Aggregates(store, settings.aggregate_cache_bytes)
            executor = Executor(store, appender, aggregates)
            executor.claim_rules = settings.claim_rules
            executor.hold_ttl_hours = settings.hold_ttl_hours
            if card_numbers is not None:
                executor.card_numbers = card_numbers
            app.state.write_side = WriteSide(
                executor,
                store,
                tokens,
                fawry_security_key=settings.fawry_security_key,
                paymob_hmac_secret=settings.paymob_hmac_secret,
            )
            app.state.ping = ping
            try:
                yield
            finally:
                await appender.close()
                await aggregates.close()

    metrics = HttpMetrics(registry, "command_service")
    app = FastRoutesApp(
        title="HealthPay Ledger — command service",
        version=VERSION,
        lifespan=lifespan,
        docs_url="/docs" if settings.environment == "development" else None,
        redoc_url=None,
    )
    app.router.routes.extend(ROUTES)  # for OpenAPI and url_path_for; requests take the fast path
    app.configure_fast_routes(
        (PREFIX + "/",), ROUTES, metrics, settings.cors_origins, direct=CLAIM_ROUTES
    )
    describe(app)

    async def health(request: Request) -> Response:
        postgres = "up" if await request.app.state.ping() else "down"
        healthy = postgres == "up"
        body = {
            "status": "healthy" if healthy else "degraded",
            "version": VERSION,
            "services": {"postgres": postgres},
        }
        return json_response(body, 200 if healthy else 503)

    async def readiness(request: Request) -> dict[str, bool]:
        return {"postgres": await request.app.state.ping()}  # every write needs the event store

    async def metrics_page(request: Request) -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    app.add_route("/health", health, methods=["GET"], include_in_schema=False)
    add_probes(app, VERSION, readiness)
    app.add_route("/metrics", metrics_page, methods=["GET"], include_in_schema=False)
    return app


async def _postgres_up(pool: Pool) -> bool:
    try:
        async with pool.connection(timeout=2.0) as conn:
            await conn.execute("SELECT 1")
        return True
    except Exception:
        log.warning("postgres health check failed", exc_info=True)
        return False
