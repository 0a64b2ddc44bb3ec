"""The tests' endpoints are their own servers' or nowhere; never the stack `make up` runs.

Settings' defaults and an environment without POSTGRES_URL, KAFKA_BROKERS, SCYLLA_HOSTS or
COMMAND_SERVICE_URL name the local stack of `make up` (PostgreSQL 25432, Kafka 29092, CQL
29042, the edge 3000). A test that left one endpoint at its default reached that stack while
it ran, and changed it: `projections rebuild all` over a test database swapped the running
stack's balance tables to a version built from the test's events. So:

- the session starts by pointing every endpoint variable at NOWHERE (tests/conftest.py), so
  a CLI path or a child process that reads the environment reaches nothing;
- tests build settings with `isolated_settings(...)`, which does the same for every endpoint
  the test does not name (tests/integration/test_isolation.py checks that no test builds
  `Settings(...)` itself, and that the store commands never connect to `LOCAL_STACK_PORTS`).
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping
from typing import Any
from urllib.parse import urlsplit

from infrastructure.settings import Settings

NOWHERE = "127.0.0.1:1"  # nothing listens on port 1: a connection is refused at once
ENDPOINTS = {
    "POSTGRES_URL": f"postgresql://nowhere@{NOWHERE}/nowhere",
    "KAFKA_BROKERS": NOWHERE,
    "SCYLLA_HOSTS": NOWHERE,
    "COMMAND_SERVICE_URL": f"http://{NOWHERE}",
    # Cequens' production API by default: a test's notifier must never send a real SMS.
    "CEQUENS_URL": f"http://{NOWHERE}",
}


def scrub_environment(env: MutableMapping[str, str] = os.environ) -> None:
    env.update(ENDPOINTS)


def isolated_environ(**overrides: str) -> dict[str, str]:
    """The environment of a process a test starts: this one's, every endpoint pointing NOWHERE
    unless named (also when the caller runs outside pytest, as `make fuzz` does)."""
    return {**os.environ, **ENDPOINTS, **overrides}


def isolated_settings(**fields: Any) -> Settings:
    """Settings(**fields) with every endpoint the caller does not name pointing NOWHERE
    (whatever the environment says: pydantic's Settings() reads it too)."""
    by_alias = {str(f.validation_alias): name for name, f in Settings.model_fields.items()}
    nowhere = {by_alias[variable]: value for variable, value in ENDPOINTS.items()}
    return Settings(**{**nowhere, **fields})


def local_stack_ports() -> frozenset[int]:
    """The TCP ports of `make up`'s stack: Settings' defaults, the Kafka controller (29093),
    and 3000-3200 (the edge, the services and the metrics ports; scripts/up.sh)."""
    defaults = {name: f.default for name, f in Settings.model_fields.items()}
    ports = {29093, *range(3000, 3201)}
    for url in (defaults["postgres_url"], defaults["command_service_url"]):
        port = urlsplit(str(url)).port
        assert port is not None
        ports.add(port)
    for hostport in (*defaults["kafka_brokers"], *defaults["scylla_hosts"]):
        ports.add(int(str(hostport).rsplit(":", 1)[1]))
    return frozenset(ports)
