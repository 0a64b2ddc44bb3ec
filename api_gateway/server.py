"""Runs one gateway process."""

from __future__ import annotations

import uvicorn

from api_gateway.app import create_app
from infrastructure.settings import Settings


def serve(settings: Settings, host: str, port: int) -> None:
    uvicorn.run(
        create_app(settings),
        host=host,
        port=port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_config=None,  # uvicorn's loggers propagate to the one masked JSON handler
        log_level="warning",
    )
