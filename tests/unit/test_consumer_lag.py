"""The consumer-lag gauge both projection groups report: a partition's value goes when the
partition goes (a rebalance hands it to another consumer, which reports it from then on)."""

from __future__ import annotations

from confluent_kafka import TopicPartition
from prometheus_client import CollectorRegistry

from infrastructure.kafka.consumers import forget_lag, lag_gauge


def _lags(registry: CollectorRegistry) -> dict[str, float]:
    return {
        s.labels["partition"]: s.value
        for metric in registry.collect()
        if metric.name == "kafka_consumer_lag"
        for s in metric.samples
    }


def test_revoked_partitions_stop_reporting_and_the_others_keep_their_values() -> None:
    registry = CollectorRegistry()
    gauge = lag_gauge(registry)
    for partition, lag in ((0, 5.0), (1, 7.0), (2, 0.0)):
        gauge.labels("events", str(partition)).set(lag)

    # partition 3 was never read here: forgetting it is not an error
    forget_lag(gauge, "events", [TopicPartition("events", 0), TopicPartition("events", 3)])

    assert _lags(registry) == {"1": 7.0, "2": 0.0}
