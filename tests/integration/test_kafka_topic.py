"""`healthpay kafka create-topic` on a real broker: the topic gets KAFKA_PARTITIONS
partitions, a second run accepts it, and a topic with another count is refused."""

from __future__ import annotations

from uuid import uuid4

import pytest
from confluent_kafka.admin import AdminClient

from cli.kafka import create_topic
from tests.isolation import isolated_settings

pytestmark = pytest.mark.integration


def test_the_topic_gets_the_settings_partitions_and_another_count_is_refused(
    kafka_bootstrap: str, capsys: pytest.CaptureFixture[str]
) -> None:
    name = f"create-topic-{uuid4().hex[:8]}"
    settings = isolated_settings(kafka_brokers=(kafka_bootstrap,), kafka_topic=name)
    assert settings.kafka_partitions == 24  # the default the stack is documented with
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    try:
        assert create_topic(settings, replication_factor=1) == 0
        assert len(admin.list_topics(name, timeout=10).topics[name].partitions) == 24
        assert create_topic(settings, replication_factor=1) == 0  # as it is: accepted
        other = isolated_settings(
            kafka_brokers=(kafka_bootstrap,), kafka_topic=name, kafka_partitions=6
        )
        assert create_topic(other, replication_factor=1) == 1
        assert "exists with 24 partitions, not 6" in capsys.readouterr().err
        assert len(admin.list_topics(name, timeout=10).topics[name].partitions) == 24
    finally:
        admin.delete_topics([name])[name].result(timeout=30)
