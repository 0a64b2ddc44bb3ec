"""`healthpay notify`: runs the SMS notifier until SIGTERM or SIGINT."""

from __future__ import annotations

import asyncio
import logging

from prometheus_client import start_http_server

from infrastructure.outage import exit_after_outage
from infrastructure.postgres.pool import open_pool
from infrastructure.settings import Settings, SettingsError
from infrastructure.sms.cequens import CequensSender
from infrastructure.sms.port import DisabledSender, SmsSender
from projection_service.notifier.worker import Notifier, NotifierMetrics
from projection_service.process import POOL_WAIT_S, stop_on_signals

log = logging.getLogger("healthpay.notifier")


def sender_for(settings: Settings) -> SmsSender:
    """Cequens when SMS_ENABLED; SettingsError if it is enabled without a key."""
    if not settings.sms_enabled:
        return DisabledSender()
    if settings.cequens_api_key is None:
        raise SettingsError("CEQUENS_API_KEY is not set (or set SMS_ENABLED=false)")
    return CequensSender(
        settings.cequens_api_key, settings.cequens_url, settings.cequens_sender_name
    )


async def _main(settings: Settings, metrics_port: int | None, metrics_host: str) -> None:
    sender = sender_for(settings)
    stop = stop_on_signals()
    metrics = NotifierMetrics()
    if metrics_port:
        start_http_server(metrics_port, addr=metrics_host, registry=metrics.registry)
    pool = await open_pool(
        settings.postgres_url, 1, 4, wait_timeout=POOL_WAIT_S, check=True, wait=False
    )
    try:
        notifier = Notifier(
            pool,
            sender,
            ",".join(settings.kafka_brokers),
            settings.kafka_topic,
            settings.sms_low_wallet_balance,
            settings.sms_default_language,
            metrics=metrics,
            outage_budget_s=settings.outage_budget_s,
        )
        with exit_after_outage(log):
            await notifier.run(stop)
    finally:
        await sender.aclose()
        await pool.close()


def run_notifier(
    settings: Settings, metrics_port: int | None, metrics_host: str = "127.0.0.1"
) -> None:
    asyncio.run(_main(settings, metrics_port, metrics_host))
