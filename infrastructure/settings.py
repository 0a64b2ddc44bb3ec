"""Process settings, read once from the environment at start-up (never at import time)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field


def _split(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


@dataclass(frozen=True, slots=True)
class Settings:
    postgres_url: str = "postgresql://healthpay@127.0.0.1:25432/healthpay_ledger"
    port: int = 3000
    jwt_secret: str = "dev-only-secret-change-me-0123456789abcdef"
    jwt_issuer: str = "healthpay"
    jwt_audience: str = "healthpay-api"
    cors_origins: tuple[str, ...] = field(default_factory=tuple)
    kafka_brokers: tuple[str, ...] = ("127.0.0.1:29092",)
    kafka_topic: str = "healthpay.events.wallet"
    scylla_hosts: tuple[str, ...] = ("127.0.0.1:29042",)
    scylla_keyspace: str = "healthpay_balances"
    pool_min_size: int = 4
    pool_max_size: int = 16
    aggregate_cache_size: int = 100_000
    environment: str = "development"
    # The gateway forwards GraphQL mutations here: the public edge, which sends each write to
    # the command-service process that owns its card.
    command_service_url: str = "http://127.0.0.1:3000"
    # How long a gateway read with minPosition waits for the projection (then 504).
    read_wait_seconds: float = 2.0

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        e = os.environ if env is None else env
        d = cls()
        return cls(
            postgres_url=e.get("POSTGRES_URL", d.postgres_url),
            port=int(e.get("PORT", d.port)),
            jwt_secret=e.get("JWT_SECRET", d.jwt_secret),
            jwt_issuer=e.get("JWT_ISSUER", d.jwt_issuer),
            jwt_audience=e.get("JWT_AUDIENCE", d.jwt_audience),
            cors_origins=_split(e.get("CORS_ORIGINS", "")),
            kafka_brokers=_split(e.get("KAFKA_BROKERS", ",".join(d.kafka_brokers))),
            kafka_topic=e.get("KAFKA_TOPIC", d.kafka_topic),
            scylla_hosts=_split(e.get("SCYLLA_HOSTS", ",".join(d.scylla_hosts))),
            scylla_keyspace=e.get("SCYLLA_KEYSPACE", d.scylla_keyspace),
            pool_min_size=int(e.get("PG_POOL_MIN", d.pool_min_size)),
            pool_max_size=int(e.get("PG_POOL_MAX", d.pool_max_size)),
            aggregate_cache_size=int(e.get("AGGREGATE_CACHE_SIZE", d.aggregate_cache_size)),
            environment=e.get("HEALTHPAY_ENV", d.environment),
            command_service_url=e.get("COMMAND_SERVICE_URL", d.command_service_url),
            read_wait_seconds=float(e.get("READ_WAIT_SECONDS", d.read_wait_seconds)),
        )
