"""`healthpay project-balances`: runs the balance consumer until SIGTERM or SIGINT."""

from __future__ import annotations

import asyncio
import logging

from prometheus_client import start_http_server

from infrastructure.cassandra.session import CqlConfig, connect
from infrastructure.outage import Outage, exit_after_outage
from infrastructure.settings import Settings
from projection_service.balances.consumer import BalanceConsumer, BalanceMetrics
from projection_service.balances.parking import BalanceParking
from projection_service.balances.projector import BalanceProjector
from projection_service.process import stop_on_signals

log = logging.getLogger("healthpay.balances")


async def _main(settings: Settings, metrics_port: int | None, metrics_host: str) -> None:
    stop = stop_on_signals()
    metrics = BalanceMetrics()
    if metrics_port:
        start_http_server(metrics_port, addr=metrics_host, registry=metrics.registry)
    config = CqlConfig.from_settings(settings)
    with exit_after_outage(log):
        starting = Outage("cql", settings.outage_budget_s)
        with await asyncio.to_thread(connect, config, starting) as cql:
            projector = BalanceProjector(cql.session, config.keyspace)
            consumer = BalanceConsumer(
                projector,
                ",".join(settings.kafka_brokers),
                settings.kafka_topic,
                metrics=metrics,
                parking=BalanceParking(settings.postgres_url),
                outage_budget_s=settings.outage_budget_s,
            )
            await consumer.run(stop)


def run_balance_projection(
    settings: Settings, metrics_port: int | None, metrics_host: str = "127.0.0.1"
) -> None:
    asyncio.run(_main(settings, metrics_port, metrics_host))
