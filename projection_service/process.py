"""`healthpay project`: runs a projection worker until SIGTERM or SIGINT."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal

from prometheus_client import start_http_server

from infrastructure.outage import exit_after_outage
from infrastructure.postgres.pool import open_pool
from infrastructure.settings import Settings
from projection_service.worker import ProjectionWorker, WorkerMetrics

log = logging.getLogger("healthpay.projections")
# How long one try waits for a pooled connection while PostgreSQL is away (the worker's
# outage budget bounds the tries).
POOL_WAIT_S = 5.0


def stop_on_signals() -> asyncio.Event:
    """An event that SIGTERM or SIGINT sets: the consumer loops run until it is set.
    Call it from inside the running event loop."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    return stop


async def _main(settings: Settings, metrics_port: int | None, metrics_host: str) -> None:
    stop = stop_on_signals()
    metrics = WorkerMetrics()
    if metrics_port:
        start_http_server(metrics_port, addr=metrics_host, registry=metrics.registry)
    # Connections are checked before each batch: after a database restart every idle one is
    # dead, and one round trip per batch costs less than a failed try per dead connection.
    # Not waited for: a database that is down at start is an outage like any other.
    pool = await open_pool(
        settings.postgres_url, 1, 4, wait_timeout=POOL_WAIT_S, check=True, wait=False
    )
    try:
        worker = ProjectionWorker(
            pool,
            settings.postgres_url,
            ",".join(settings.kafka_brokers),
            settings.kafka_topic,
            metrics=metrics,
            outage_budget_s=settings.outage_budget_s,
        )
        # Everything allocated so far lives as long as the process: keep the collector from
        # walking it again and again (each batch allocates thousands of row dicts, and the
        # oldest generation's collections scanned every module, schema and pool object).
        gc.freeze()
        with exit_after_outage(log):
            await worker.run(stop)
    finally:
        await pool.close()


def run_projection_worker(
    settings: Settings, metrics_port: int | None, metrics_host: str = "127.0.0.1"
) -> None:
    asyncio.run(_main(settings, metrics_port, metrics_host))
