"""Health of what the read side depends on, in the seed's shape (status, version, services).

Each probe is bounded in time and runs off the event loop (the CQL and Kafka clients block),
so a hung dependency makes /health say "down" quickly instead of hanging with it. Anyone may
ask; what a probe found (the CQL driver's view of the cluster: host addresses, data centres)
is shown to staff only, with an admin or ops token.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka.admin import AdminClient

from infrastructure.auth.tokens import Role, TokenVerifier
from infrastructure.cassandra.session import CqlConfig, CqlConnection, connect
from infrastructure.http.bearer import authenticate
from infrastructure.postgres.pool import Pool
from infrastructure.settings import Settings

log = logging.getLogger("healthpay.gateway.health")
PROBE_SECONDS = 3.0


@dataclass
class Probe:
    up: bool
    details: dict[str, Any] = field(default_factory=dict)


class Dependencies:
    """Connections the gateway reads through; CQL reconnects when its node comes back."""

    def __init__(self, settings: Settings, pool: Pool) -> None:
        self.settings = settings
        self.pool = pool
        self._cql: CqlConnection | None = None
        # made by the first probe: librdkafka connects as soon as a client exists, and a
        # gateway that is never asked for its health need not talk to Kafka at all
        self._kafka: AdminClient | None = None

    async def postgres(self) -> Probe:
        try:
            async with asyncio.timeout(PROBE_SECONDS):
                async with self.pool.connection() as conn:
                    await conn.execute("SELECT 1")
            return Probe(True)
        except Exception as exc:
            return Probe(False, {"error": type(exc).__name__})

    async def scylla(self) -> Probe:
        try:
            return await asyncio.wait_for(asyncio.to_thread(self._scylla), PROBE_SECONDS + 7)
        except Exception as exc:
            self._drop_cql()
            return Probe(False, {"error": type(exc).__name__})

    def _scylla(self) -> Probe:
        if self._cql is None:
            self._cql = connect(CqlConfig.from_settings(self.settings))
        row = self._cql.session.execute(
            "SELECT release_version FROM system.local", timeout=PROBE_SECONDS
        ).one()
        hosts = [
            {
                "address": f"{host.endpoint}",
                "datacenter": host.datacenter,
                "rack": host.rack,
                "up": bool(host.is_up),
                "release_version": host.release_version,
            }
            for host in self._cql.cluster.metadata.all_hosts()
        ]
        return Probe(bool(hosts) and any(h["up"] for h in hosts), {
            "release_version": row.release_version if row else None,
            "hosts": hosts,
        })  # fmt: skip

    def _drop_cql(self) -> None:
        if self._cql is not None:
            try:
                self._cql.close()
            except Exception:
                log.debug("closing the CQL connection failed", exc_info=True)
            self._cql = None

    async def kafka(self) -> Probe:
        try:
            return await asyncio.wait_for(asyncio.to_thread(self._kafka_probe), PROBE_SECONDS + 1)
        except Exception as exc:
            return Probe(False, {"error": type(exc).__name__})

    def _kafka_probe(self) -> Probe:
        if self._kafka is None:
            brokers = ",".join(self.settings.kafka_brokers)
            self._kafka = AdminClient({"bootstrap.servers": brokers, "socket.timeout.ms": 2000})
        metadata = self._kafka.list_topics(timeout=PROBE_SECONDS)
        topic = metadata.topics.get(self.settings.kafka_topic)
        details = {
            "brokers": len(metadata.brokers),
            "topic": self.settings.kafka_topic,
            "partitions": len(topic.partitions) if topic is not None else 0,
        }
        return Probe(bool(metadata.brokers) and topic is not None, details)

    def close(self) -> None:
        self._drop_cql()


STAFF = frozenset({Role.ADMIN, Role.OPS})


def shows_details(verifier: TokenVerifier, headers: Mapping[str, str]) -> bool:
    """Whether the caller may see the probes' details: an admin or ops token. No token is an
    anonymous caller; a token that is refused is a 401 (Problem), as on every other route."""
    if "authorization" not in headers:
        return False
    return authenticate(verifier, headers).role in STAFF


async def check(
    dependencies: Dependencies, version: str, *, details: bool = False
) -> tuple[int, dict[str, Any]]:
    """The seed's body (status, version, services); `details` adds what each probe found and
    the names of the services down."""
    postgres, scylla, kafka = await asyncio.gather(
        dependencies.postgres(), dependencies.scylla(), dependencies.kafka()
    )
    probes = {"postgres": postgres, "scylla": scylla, "kafka": kafka}
    down = [name for name, probe in probes.items() if not probe.up]
    body: dict[str, Any] = {
        "status": "healthy" if not down else "degraded",
        "version": version,
        "services": {name: "up" if probe.up else "down" for name, probe in probes.items()},
    }
    if details:
        body["details"] = {name: probe.details for name, probe in probes.items() if probe.details}
        if down:
            body["down"] = down
    return (200 if not down else 503), body
