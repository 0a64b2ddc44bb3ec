"""A driver session for the balance store, the one way the application connects.

Protocol v4 (the newest both ScyllaDB and Cassandra 5 speak), token-aware routing over a
DC-aware round robin pinned to the local data centre, LOCAL_QUORUM, and a retry policy that
retries only statements marked idempotent. A node that went away is tried again every few
seconds at most (the driver's default backs off to 10 minutes, long after a restart is over),
and `connect` given an Outage waits out a store that is not up yet. The local DC and
replication factor are read from SCYLLA_DC (default `datacenter1`) and SCYLLA_RF (default 1
locally; production runs NetworkTopologyStrategy {'dc1': 3}: SCYLLA_DC=dc1 SCYLLA_RF=3).
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cassandra import ConsistencyLevel  # type: ignore[import-untyped]
from cassandra.cluster import (  # type: ignore[import-untyped]
    EXEC_PROFILE_DEFAULT,
    Cluster,
    ExecutionProfile,
    NoHostAvailable,
)
from cassandra.policies import (  # type: ignore[import-untyped]
    DCAwareRoundRobinPolicy,
    ExponentialReconnectionPolicy,
    RetryPolicy,
    TokenAwarePolicy,
)

from infrastructure.outage import Outage
from infrastructure.settings import Settings

PROTOCOL_VERSION = 4
DEFAULT_PORT = 9042
DEFAULT_DC = "datacenter1"
DEFAULT_RF = 1
MAX_RETRIES = 3
# Delays between reconnection attempts to a node marked down: from 0.5 s up to 2 s.
RECONNECT_BASE_S = 0.5
RECONNECT_MAX_S = 2.0


@dataclass(frozen=True, slots=True)
class CqlConfig:
    hosts: tuple[tuple[str, int], ...]
    keyspace: str
    local_dc: str = DEFAULT_DC
    replication_factor: int = DEFAULT_RF
    request_timeout_s: float = 10.0

    @classmethod
    def from_settings(cls, settings: Settings, env: Mapping[str, str] | None = None) -> CqlConfig:
        e = os.environ if env is None else env
        return cls(
            hosts=parse_hosts(settings.scylla_hosts),
            keyspace=settings.scylla_keyspace,
            local_dc=e.get("SCYLLA_DC", DEFAULT_DC),
            replication_factor=int(e.get("SCYLLA_RF", DEFAULT_RF)),
        )

    @property
    def replication(self) -> str:
        """The keyspace's replication map, as CQL."""
        return (
            f"{{'class': 'NetworkTopologyStrategy', "
            f"'{self.local_dc}': {int(self.replication_factor)}}}"
        )


def parse_hosts(hosts: tuple[str, ...] | str) -> tuple[tuple[str, int], ...]:
    """("a:9043", "b") or "a:9043,b" -> (("a", 9043), ("b", 9042))."""
    items = hosts.split(",") if isinstance(hosts, str) else hosts
    points: list[tuple[str, int]] = []
    for raw in items:
        item = raw.strip()
        if not item:
            continue
        host, sep, port = item.rpartition(":")
        points.append((host, int(port)) if sep else (item, DEFAULT_PORT))
    if not points:
        raise ValueError(f"no CQL host in {hosts!r}")
    return tuple(points)


class IdempotentOnlyRetryPolicy(RetryPolicy):  # type: ignore[misc]
    """Retries (on the next host) timeouts, unavailability and connection errors, but only
    for statements marked `is_idempotent`; everything else is rethrown to the caller."""

    def _retry(self, query: Any, consistency: Any, retry_num: int) -> tuple[Any, Any]:
        if query is not None and query.is_idempotent and retry_num < MAX_RETRIES:
            return self.RETRY_NEXT_HOST, consistency
        return self.RETHROW, None

    def on_read_timeout(
        self, query: Any, consistency: Any, required_responses: int,
        received_responses: int, data_retrieved: bool, retry_num: int,
    ) -> tuple[Any, Any]:  # fmt: skip
        return self._retry(query, consistency, retry_num)

    def on_write_timeout(
        self, query: Any, consistency: Any, write_type: Any,
        required_responses: int, received_responses: int, retry_num: int,
    ) -> tuple[Any, Any]:  # fmt: skip
        return self._retry(query, consistency, retry_num)

    def on_unavailable(
        self, query: Any, consistency: Any, required_replicas: int, alive_replicas: int,
        retry_num: int,
    ) -> tuple[Any, Any]:  # fmt: skip
        return self._retry(query, consistency, retry_num)

    def on_request_error(
        self, query: Any, consistency: Any, error: Exception, retry_num: int
    ) -> tuple[Any, Any]:
        return self._retry(query, consistency, retry_num)


@dataclass
class CqlConnection:
    """A Cluster and its one Session (no current keyspace: table names are qualified)."""

    cluster: Any
    session: Any

    def close(self) -> None:
        self.cluster.shutdown()

    def __enter__(self) -> CqlConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def connect(config: CqlConfig, outage: Outage | None = None) -> CqlConnection:
    """A connected session. With `outage`, a cluster that is not reachable yet is tried
    again with its back-off (OutageTooLong past its budget); without, the first failure
    raises."""
    while True:
        try:
            connection = _connect_once(config)
        except NoHostAvailable as exc:
            if outage is None:
                raise
            time.sleep(outage.failed(exc))
            continue
        if outage is not None:
            outage.recovered()
        return connection


def _connect_once(config: CqlConfig) -> CqlConnection:
    profile = ExecutionProfile(
        load_balancing_policy=TokenAwarePolicy(DCAwareRoundRobinPolicy(local_dc=config.local_dc)),
        retry_policy=IdempotentOnlyRetryPolicy(),
        consistency_level=ConsistencyLevel.LOCAL_QUORUM,
        request_timeout=config.request_timeout_s,
    )
    cluster = Cluster(
        contact_points=list(config.hosts),
        protocol_version=PROTOCOL_VERSION,
        execution_profiles={EXEC_PROFILE_DEFAULT: profile},
        connect_timeout=10,
        control_connection_timeout=10,
        reconnection_policy=ExponentialReconnectionPolicy(RECONNECT_BASE_S, RECONNECT_MAX_S),
    )
    try:
        session = cluster.connect()
    except BaseException:
        cluster.shutdown()
        raise
    return CqlConnection(cluster, session)


def prepare_idempotent(session: Any, cql: str) -> Any:
    """A prepared statement marked idempotent (so the retry policy may retry it)."""
    statement = session.prepare(cql)
    statement.is_idempotent = True
    return statement
