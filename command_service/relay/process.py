"""`healthpay relay`: runs the relay until SIGTERM or SIGINT, with /metrics on its own port."""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType

from prometheus_client import start_http_server

from command_service.relay.publisher import KafkaPublisher
from command_service.relay.relay import Relay, RelayMetrics
from infrastructure.outage import exit_after_outage
from infrastructure.settings import Settings

log = logging.getLogger("healthpay.relay")


def run_relay(
    settings: Settings, metrics_port: int | None, metrics_host: str = "127.0.0.1"
) -> None:
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    metrics = RelayMetrics()
    if metrics_port:
        start_http_server(metrics_port, addr=metrics_host, registry=metrics.registry)
    publisher = KafkaPublisher(",".join(settings.kafka_brokers), settings.kafka_topic)
    relay = Relay(
        settings.postgres_url, publisher, metrics=metrics, outage_budget_s=settings.outage_budget_s
    )
    try:
        with exit_after_outage(log):
            relay.run(stop)
    finally:
        publisher.close()
