"""Runs one command-service process: uvloop, httptools (answers in one write), no access log
(docs/design.md §3)."""

from __future__ import annotations

import gc

import uvicorn

from command_service.app import create_app
from infrastructure.http.one_write import OneWriteProtocol
from infrastructure.settings import Settings

# Each claim allocates a few hundred short-lived objects while the aggregate cache holds
# hundreds of thousands of long-lived ones. With CPython's default (700, 10, 10) the
# collector ran so often that it took ~40% of the claim path's CPU and pushed p95 from
# ~50 ms to ~250 ms (docs/benchmarks.md). Collect young objects less often; the long-lived
# cache is frozen out of the scans at start and only grows slowly afterwards.
GC_THRESHOLDS = (50_000, 20, 100)


def serve(settings: Settings, host: str, port: int) -> None:
    app = create_app(settings)
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    uvicorn.run(
        app,
        host=host,
        port=port,
        loop="uvloop",
        http=OneWriteProtocol,  # httptools, each answer in one socket write
        access_log=False,
        log_config=None,  # uvicorn's loggers propagate to the one masked JSON handler
        proxy_headers=False,  # nothing reads the client address; skip the per-request work
        log_level="warning",
        timeout_graceful_shutdown=10,
    )
