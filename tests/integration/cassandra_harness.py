"""A throwaway single-node Cassandra 5.0 (the CQL stand-in for ScyllaDB) for the test session,
and one fresh keyspace per test.

One node per pytest session (started with scripts/cassandra.sh in a temp dir on free ports),
or the cluster named by HEALTHPAY_TEST_SCYLLA_HOSTS (`host[:port],...`, port 9042 by default;
a real ScyllaDB works too). Each test gets a keyspace of its own, replicated with
NetworkTopologyStrategy {<the node's data centre>: 1}, dropped after the test.

The node takes 5-15 s to start on 2 cores, so the hook `pytest_collection_finish` begins
starting it in the background as soon as pytest knows that some collected test needs it;
the PostgreSQL and Kafka tests run meanwhile, and the first Cassandra test only waits for
what is left. A test run that selects no Cassandra test starts nothing.

A plain module, like postgres_harness.py, so that every test package shares the one node.
It is also a pytest plugin: `pytest_plugins = ["tests.integration.cassandra_harness"]` in
tests/conftest.py brings the fixtures `cassandra_harness`, `cassandra_keyspace` and
`cassandra_session`, and the start-early hook.

The driver speaks protocol v4, the newest both ScyllaDB and Cassandra 5 accept; keep to the
CQL both speak (docs/local-stack.md, "One CQL dialect").
"""

from __future__ import annotations

import atexit
import itertools
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from cassandra.cluster import (  # type: ignore[import-untyped]
    EXEC_PROFILE_DEFAULT,
    Cluster,
    ExecutionProfile,
    Session,
)
from cassandra.policies import RoundRobinPolicy  # type: ignore[import-untyped]

from tests.integration.server_scripts import free_port, kill_pidfile, run_script
from tests.log_scan import scan_server_logs

REPO = Path(__file__).resolve().parents[2]
CASSANDRA_SH = REPO / "scripts" / "cassandra.sh"
ENV_HOSTS = "HEALTHPAY_TEST_SCYLLA_HOSTS"
PROTOCOL_VERSION = 4
DEFAULT_PORT = 9042
DDL_TIMEOUT_S = 60.0
REQUEST_TIMEOUT_S = 30.0
FIXTURE_NAMES = frozenset({"cassandra_harness", "cassandra_keyspace", "cassandra_session"})


class CassandraHarness:
    def __init__(
        self, contact_points: Sequence[tuple[str, int]], data_dir: Path | None = None
    ) -> None:
        self.contact_points = list(contact_points)
        self._data_dir = data_dir  # set when this process started the node
        self._prefix = f"healthpay_test_{os.getpid()}"
        self._numbers = itertools.count(1)
        self._stopped = False
        self._cluster: Any = None
        self._admin: Any = None
        self._datacenter = ""
        self._open_admin()

    @classmethod
    def start(cls) -> CassandraHarness:
        """The cluster of HEALTHPAY_TEST_SCYLLA_HOSTS if set, else a node of our own."""
        hosts = os.environ.get(ENV_HOSTS)
        if hosts:
            return cls(parse_hosts(hosts))
        return cls.launch()

    @classmethod
    def launch(cls) -> CassandraHarness:
        """Always a new local node in a temp dir."""
        return _Launch.begin().finish()

    @property
    def owns_node(self) -> bool:
        return self._data_dir is not None

    @property
    def hosts(self) -> str:
        """`host:port,...`, the form HEALTHPAY_TEST_SCYLLA_HOSTS and the app's settings take."""
        return ",".join(f"{host}:{port}" for host, port in self.contact_points)

    @property
    def datacenter(self) -> str:
        return self._datacenter

    def new_cluster(self) -> Any:
        """A driver Cluster for these contact points (protocol v4); the caller shuts it down."""
        profile = ExecutionProfile(
            load_balancing_policy=RoundRobinPolicy(), request_timeout=REQUEST_TIMEOUT_S
        )
        return Cluster(
            contact_points=self.contact_points,
            protocol_version=PROTOCOL_VERSION,
            execution_profiles={EXEC_PROFILE_DEFAULT: profile},
            connect_timeout=10,
            control_connection_timeout=10,
        )

    def session(self, keyspace: str | None = None) -> Any:
        """A new Session on the harness's shared Cluster; the caller shuts it down.
        Prefer no keyspace and qualified table names: Cassandra 5 warns about prepared
        statements on a session with a current keyspace (`USE`), ScyllaDB does not mind."""
        return self._cluster.connect(keyspace)

    def create_keyspace(self) -> str:
        """A new, uniquely named, empty keyspace; returns its name."""
        name = f"{self._prefix}_{next(self._numbers)}"
        self._admin.execute(
            f"CREATE KEYSPACE {name} WITH replication = "
            f"{{'class': 'NetworkTopologyStrategy', '{self._datacenter}': 1}}",
            timeout=DDL_TIMEOUT_S,
        )
        return name

    def drop_keyspace(self, name: str) -> None:
        if self._stopped:
            return
        self._admin.execute(f"DROP KEYSPACE IF EXISTS {name}", timeout=DDL_TIMEOUT_S)

    def restart(self) -> None:
        """Stop the node and start it again on the same directory and port; data is kept.
        Sessions opened before are left to the driver's reconnection: open new ones."""
        if self._data_dir is None:
            raise RuntimeError(f"cannot restart a cluster this harness did not start ({ENV_HOSTS})")
        self._close_admin()
        self.take_down()
        self.bring_up()

    def bring_up(self) -> None:
        """Start the stopped (or killed) node on its directory and port."""
        if self._data_dir is None:
            raise RuntimeError(f"cannot start a cluster this harness did not start ({ENV_HOSTS})")
        self._close_admin()
        port = self.contact_points[0][1]
        _cassandra_sh("start", str(self._data_dir), str(port))
        self._open_admin()

    def take_down(self, kill: bool = False) -> None:
        """Stop the node, keeping its directory and port (`bring_up` brings it back); the
        harness's own sessions are left to fail until then. `kill`: SIGKILL, no drain (what
        the commit log has not synced is lost: scripts/cassandra/cassandra.yaml syncs it
        before a write is acknowledged)."""
        if self._data_dir is None:
            raise RuntimeError(f"cannot stop a cluster this harness did not start ({ENV_HOSTS})")
        if kill:
            kill_pidfile(self._data_dir / "cassandra.pid")
        _cassandra_sh("stop", str(self._data_dir))

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self._close_admin()
        if self._data_dir is not None:
            _stop_node(self._data_dir)

    def _open_admin(self) -> None:
        self._cluster = self.new_cluster()
        try:
            self._admin = self.session()
            row = self._admin.execute("SELECT data_center FROM system.local").one()
            self._datacenter = str(row.data_center)
        except BaseException:
            self._close_admin()
            raise

    def _close_admin(self) -> None:
        if self._cluster is not None:
            self._cluster.shutdown()
        self._cluster = None
        self._admin = None


class _Launch:
    """`scripts/cassandra.sh start` running in the background for a temp dir."""

    def __init__(self, data_dir: Path, port: int, process: subprocess.Popen[str]) -> None:
        self.data_dir = data_dir
        self.port = port
        self._process = process
        self._finished = False

    @classmethod
    def begin(cls) -> _Launch:
        data_dir = Path(tempfile.mkdtemp(prefix="healthpay-cassandra-"))
        port = free_port()
        process = subprocess.Popen(
            [str(CASSANDRA_SH), "start", str(data_dir), str(port)],
            env=_script_env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        return cls(data_dir, port, process)

    def finish(self) -> CassandraHarness:
        """Waits for the node; raises with the script's output if it did not come up."""
        self._finished = True
        out, err = self._process.communicate()
        if self._process.returncode != 0:
            _stop_node(self.data_dir)
            raise RuntimeError(
                f"scripts/cassandra.sh start failed ({self._process.returncode}):\n{out}\n{err}"
            )
        try:
            host, _, port = out.strip().splitlines()[-1].rpartition(":")
            return CassandraHarness([(host, int(port))], self.data_dir)
        except BaseException:
            _stop_node(self.data_dir)
            raise

    def abandon(self) -> None:
        """At exit, for a start nobody waited for: stop whatever came up, remove the dir."""
        if self._finished:
            return
        self._finished = True
        self._process.terminate()
        self._process.communicate()
        _stop_node(self.data_dir)


def parse_hosts(hosts: str) -> list[tuple[str, int]]:
    """`a:9042,b` -> [("a", 9042), ("b", 9042)]."""
    points: list[tuple[str, int]] = []
    for item in hosts.split(","):
        item = item.strip()
        if not item:
            continue
        host, sep, port = item.rpartition(":")
        points.append((host, int(port)) if sep else (item, DEFAULT_PORT))
    if not points:
        raise ValueError(f"{ENV_HOSTS} names no host: {hosts!r}")
    return points


def _script_env() -> dict[str, str]:
    # The readiness check inside cassandra.sh uses this interpreter's cassandra-driver.
    env = {**os.environ, "CASSANDRA_PYTHON": sys.executable}
    # C1 only: half the CPU to start (about 4.5 s instead of 9 s of a shared 2-core box) for
    # some peak throughput the tests never reach. CASSANDRA_JVM_OPTS="" restores full JIT.
    env.setdefault("CASSANDRA_JVM_OPTS", "-XX:TieredStopAtLevel=1")
    return env


def _cassandra_sh(*args: str) -> str:
    """Runs scripts/cassandra.sh; returns the last line it printed."""
    return run_script(CASSANDRA_SH, *args, env=_script_env())


def _stop_node(data_dir: Path) -> None:
    """Stops the node and deletes its directory. No graceful drain (flushing memtables that
    are about to be deleted costs ~5 s): CASSANDRA_STOP_TIMEOUT=0 sends SIGKILL at once."""
    subprocess.run(
        [str(CASSANDRA_SH), "stop", str(data_dir)],
        env={**os.environ, "CASSANDRA_STOP_TIMEOUT": "0"},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        check=False,
    )
    scan_server_logs(sorted((data_dir / "logs").glob("*.log")), "cassandra")
    shutil.rmtree(data_dir, ignore_errors=True)


_shared: CassandraHarness | None = None
_pending: _Launch | None = None


def prestart() -> None:
    """Begin starting the session's node in the background, if it is ours to start."""
    global _pending
    if _shared is not None or _pending is not None or os.environ.get(ENV_HOSTS):
        return
    _pending = _Launch.begin()
    atexit.register(_pending.abandon)


def shared_harness() -> CassandraHarness:
    """The session's one harness, started on first use and stopped when the process ends."""
    global _shared, _pending
    if _shared is None:
        if _pending is not None:
            pending, _pending = _pending, None
            _shared = pending.finish()
        else:
            _shared = CassandraHarness.start()
        atexit.register(_shared.stop)
    return _shared


# ---------------------------------------------------------------- pytest hook and fixtures


def pytest_collection_finish(session: pytest.Session) -> None:
    """Start the node early when a collected test will need it (see the module docstring)."""
    if any(FIXTURE_NAMES.intersection(getattr(item, "fixturenames", ())) for item in session.items):
        prestart()


@pytest.fixture(scope="session")
def cassandra_harness() -> Iterator[CassandraHarness]:
    harness = shared_harness()
    yield harness
    harness.stop()


@pytest.fixture
def cassandra_keyspace(cassandra_harness: CassandraHarness) -> Iterator[str]:
    """The name of a fresh, empty keyspace of this test's own."""
    name = cassandra_harness.create_keyspace()
    yield name
    cassandra_harness.drop_keyspace(name)


@pytest.fixture
def cassandra_session(cassandra_harness: CassandraHarness) -> Iterator[Any]:
    """A driver Session (protocol v4) with no current keyspace: qualify table names with
    `cassandra_keyspace`, as the application should."""
    session: Session = cassandra_harness.session()
    yield session
    session.shutdown()
