"""A throwaway single-node Kafka for the test session, and one fresh topic per test.

One broker per pytest session (started with scripts/kafka.sh in a temp dir on free ports),
or the brokers named by HEALTHPAY_TEST_KAFKA_BROKERS (a bootstrap list, e.g.
`127.0.0.1:9092`). Topics are never auto-created: each test asks for its own, uniquely named
topic, so tests never see each other's messages and need no cleanup between them.

A plain module, like postgres_harness.py, so that every test package shares the one broker.
It is also a pytest plugin: `pytest_plugins = ["tests.integration.kafka_harness"]` in
tests/conftest.py brings the fixtures `kafka_harness`, `kafka_bootstrap`,
`kafka_topic_factory` and `kafka_topic`.
"""

from __future__ import annotations

import atexit
import itertools
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic  # what confluent_kafka.admin re-exports untyped

from tests.integration.server_scripts import free_port, kill_pidfile, run_script
from tests.log_scan import scan_server_logs

REPO = Path(__file__).resolve().parents[2]
KAFKA_SH = REPO / "scripts" / "kafka.sh"
ENV_BROKERS = "HEALTHPAY_TEST_KAFKA_BROKERS"
TOPIC_PREFIX = "healthpay.test"
TIMEOUT_S = 30.0


class KafkaHarness:
    def __init__(self, bootstrap: str, data_dir: Path | None, port: int | None = None) -> None:
        self.bootstrap = bootstrap
        self._data_dir = data_dir  # set when this process started the broker
        self._port = port
        self._prefix = f"{TOPIC_PREFIX}.{os.getpid()}.{uuid.uuid4().hex[:6]}"
        self._numbers = itertools.count(1)
        self._stopped = False
        self._admin: AdminClient | None = None

    @classmethod
    def start(cls) -> KafkaHarness:
        """The brokers of HEALTHPAY_TEST_KAFKA_BROKERS if set, else a broker of our own."""
        brokers = os.environ.get(ENV_BROKERS)
        if brokers:
            return cls(brokers, None)
        return cls.launch()

    @classmethod
    def launch(cls) -> KafkaHarness:
        """Always a new local broker in a temp dir (e.g. for a test that restarts it)."""
        data_dir = Path(tempfile.mkdtemp(prefix="healthpay-kafka-"))
        port = free_port()
        try:
            bootstrap = _kafka_sh("start", str(data_dir), str(port), str(free_port()))
        except BaseException:
            shutil.rmtree(data_dir, ignore_errors=True)
            raise
        return cls(bootstrap, data_dir, port)

    @property
    def owns_broker(self) -> bool:
        return self._data_dir is not None

    @property
    def admin(self) -> AdminClient:
        if self._admin is None:
            self._admin = AdminClient({"bootstrap.servers": self.bootstrap})
        return self._admin

    def create_topic(self, partitions: int = 3, config: Mapping[str, str] | None = None) -> str:
        """A new, uniquely named topic (replication factor 1); returns once every partition
        has a leader, so a producer's first send does not race the topic's creation."""
        name = f"{self._prefix}.{next(self._numbers)}"
        future = self.admin.create_topics(
            [NewTopic(name, partitions, 1, config=dict(config or {}))],
            operation_timeout=TIMEOUT_S,
        )[name]
        future.result(timeout=TIMEOUT_S)
        deadline = time.monotonic() + TIMEOUT_S
        while True:
            topic = self.admin.list_topics(name, timeout=TIMEOUT_S).topics.get(name)
            if (
                topic is not None
                and topic.error is None
                and len(topic.partitions) == partitions
                and all(p.leader >= 0 for p in topic.partitions.values())
            ):
                return name
            if time.monotonic() > deadline:
                raise TimeoutError(f"topic {name} has no leader for every partition")
            time.sleep(0.05)

    def delete_topic(self, name: str) -> None:
        """Best effort: a test's leftovers must not fail the next one."""
        if self._stopped:
            return
        try:
            self.admin.delete_topics([name], operation_timeout=TIMEOUT_S)[name].result(
                timeout=TIMEOUT_S
            )
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.UNKNOWN_TOPIC_OR_PART:
                raise

    def restart(self) -> None:
        """Stop and start the broker on the same directory and ports; data is kept."""
        if self._data_dir is None or self._port is None:
            raise RuntimeError(f"cannot restart brokers this harness did not start ({ENV_BROKERS})")
        self.take_down()
        self.bring_up()

    def bring_up(self) -> None:
        """Start the stopped (or killed) broker on its directory and ports."""
        if self._data_dir is None or self._port is None:
            raise RuntimeError(f"cannot start brokers this harness did not start ({ENV_BROKERS})")
        self.bootstrap = _kafka_sh("start", str(self._data_dir), str(self._port))

    def take_down(self, kill: bool = False) -> None:
        """Stop the broker, keeping its directory and ports (`bring_up` brings it back);
        `kill`: SIGKILL, no controlled shutdown (the next start recovers its logs)."""
        if self._data_dir is None:
            raise RuntimeError(f"cannot stop brokers this harness did not start ({ENV_BROKERS})")
        self._admin = None  # it would log every failed reconnect while the broker is away
        if kill:
            kill_pidfile(self._data_dir / "kafka.pid")
        _kafka_sh("stop", str(self._data_dir))

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self._admin = None
        if self._data_dir is not None:
            subprocess.run(
                [str(KAFKA_SH), "stop", str(self._data_dir)], check=False, capture_output=True
            )
            scan_server_logs(sorted((self._data_dir / "logs").glob("*.log")), "kafka")
            shutil.rmtree(self._data_dir, ignore_errors=True)


class TopicFactory:
    """Creates fresh topics for one test and deletes them after it."""

    def __init__(self, harness: KafkaHarness) -> None:
        self._harness = harness
        self.created: list[str] = []

    def __call__(self, partitions: int = 3, config: Mapping[str, str] | None = None) -> str:
        name = self._harness.create_topic(partitions, config)
        self.created.append(name)
        return name

    def delete_all(self) -> None:
        for name in self.created:
            self._harness.delete_topic(name)
        self.created.clear()


def _kafka_sh(*args: str) -> str:
    """Runs scripts/kafka.sh; returns the last line it printed (the bootstrap address)."""
    # The readiness check inside kafka.sh uses this interpreter's confluent-kafka.
    return run_script(KAFKA_SH, *args, env={**os.environ, "KAFKA_PYTHON": sys.executable})


_shared: KafkaHarness | None = None


def shared_harness() -> KafkaHarness:
    """The session's one harness, started on first use and stopped when the process ends."""
    global _shared
    if _shared is None:
        _shared = KafkaHarness.start()
        atexit.register(_shared.stop)
    return _shared


# ---------------------------------------------------------------- pytest fixtures


@pytest.fixture(scope="session")
def kafka_harness() -> Iterator[KafkaHarness]:
    harness = shared_harness()
    yield harness
    harness.stop()


@pytest.fixture(scope="session")
def kafka_bootstrap(kafka_harness: KafkaHarness) -> str:
    """`bootstrap.servers` of the session's broker."""
    return kafka_harness.bootstrap


@pytest.fixture
def kafka_topic_factory(kafka_harness: KafkaHarness) -> Iterator[TopicFactory]:
    """`kafka_topic_factory(partitions=3, config=None)` -> a fresh topic's name."""
    factory = TopicFactory(kafka_harness)
    yield factory
    factory.delete_all()


@pytest.fixture
def kafka_topic(kafka_topic_factory: TopicFactory) -> str:
    """A fresh 3-partition topic of this test's own."""
    return kafka_topic_factory(3)
