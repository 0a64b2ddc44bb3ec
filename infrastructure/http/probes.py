"""Liveness and readiness routes of the HTTP services (the command service, the gateway).

Liveness answers from the process alone: restarting a process cures nothing that an outage
of PostgreSQL, Kafka or the CQL store causes, so a probe that asked them would only turn an
outage into a restart loop. Readiness asks the stores the process serves its requests from:
while one is out of reach the process takes no traffic, and is not restarted either.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import orjson
from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response

LIVE = "/health/live"
READY = "/health/ready"

# store name -> reachable now, for one request
ReadinessCheck = Callable[[Request], Awaitable[Mapping[str, bool]]]


def json_response(body: Mapping[str, Any], status: int = 200) -> Response:
    return Response(orjson.dumps(body), status, media_type="application/json")


def add_probes(app: FastAPI, version: str, readiness: ReadinessCheck) -> None:
    async def live(request: Request) -> Response:
        return json_response({"status": "alive", "version": version})

    async def ready(request: Request) -> Response:
        stores = await readiness(request)
        up = all(stores.values())
        body = {
            "status": "ready" if up else "not_ready",
            "version": version,
            "services": {name: "up" if ok else "down" for name, ok in stores.items()},
        }
        return json_response(body, 200 if up else 503)

    app.add_route(LIVE, live, methods=["GET"], include_in_schema=False)
    app.add_route(READY, ready, methods=["GET"], include_in_schema=False)
