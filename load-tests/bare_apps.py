"""Reference endpoints for the benchmark: how fast can one process answer a trivial POST?

Each app has one POST endpoint that parses a small JSON body with orjson and answers a small
JSON body; nothing else. `bench.py` runs them under the same uvicorn settings as the command
service (uvloop, httptools, no access log) so the claim path can be reported as a share of them.

    .venv/bin/python load-tests/bare_apps.py --app asgi --port 8001

The endpoint is served on every path, so the same wrk scripts (and the same nginx config) work
against the bare apps and the command service.
"""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.applications import Starlette
from starlette.routing import Route

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

CLAIM_PATH = "/api/v1/medcards/{card_id}/claims/prescriptions"
_JSON_HEADERS = [(b"content-type", b"application/json")]


def _answer(body: bytes) -> bytes:
    """The work every reference does: parse the request, build a small answer."""
    doc = orjson.loads(body) if body else {}
    prescription = doc.get("prescriptionId") if isinstance(doc, dict) else None
    return orjson.dumps({"ok": True, "prescriptionId": prescription, "decision": "approved"})


async def asgi_app(scope: Scope, receive: Receive, send: Send) -> None:
    """Plain ASGI: no framework at all. Any POST gets 201, anything else 405."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    chunks: list[bytes] = []
    more = True
    while more:
        message = await receive()
        chunks.append(message.get("body", b""))
        more = bool(message.get("more_body", False))
    if scope["method"] != "POST":
        await send({"type": "http.response.start", "status": 405, "headers": _JSON_HEADERS})
        await send({"type": "http.response.body", "body": b'{"ok":false}'})
        return
    payload = _answer(b"".join(chunks))
    await send({"type": "http.response.start", "status": 201, "headers": _JSON_HEADERS})
    await send({"type": "http.response.body", "body": payload})


def build_fastapi_app() -> FastAPI:
    """FastAPI with a path parameter, the framework's routing and dependency layers, orjson."""
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)

    @app.post(CLAIM_PATH, status_code=201)
    async def claim(card_id: str, request: Request) -> Response:
        return Response(_answer(await request.body()), 201, media_type="application/json")

    @app.post("/{rest:path}", status_code=201)
    async def anything(rest: str, request: Request) -> Response:
        return Response(_answer(await request.body()), 201, media_type="application/json")

    return app


def build_starlette_app() -> Starlette:
    """A plain Starlette route: what docs/design.md §3 allows for the claim route inside FastAPI."""

    async def endpoint(request: Request) -> Response:
        return Response(_answer(await request.body()), 201, media_type="application/json")

    return Starlette(
        routes=[
            Route(CLAIM_PATH, endpoint, methods=["POST"]),
            Route("/{rest:path}", endpoint, methods=["POST"]),
        ]
    )


APPS: dict[str, Callable[[], Any]] = {
    "asgi": lambda: asgi_app,
    "fastapi": build_fastapi_app,
    "starlette": build_starlette_app,
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--app", choices=sorted(APPS), required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    uvicorn.run(
        APPS[args.app](),
        host=args.host,
        port=args.port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
        lifespan="on",
    )


if __name__ == "__main__":
    main()
