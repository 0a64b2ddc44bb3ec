"""infrastructure/http/one_write.py: every answer leaves in one write, whole and in order.

Over a real uvicorn server on a loopback socket (the protocol `healthpay serve-commands`
runs), with the transport's writes recorded: a JSON answer is one write holding the head and
the body; keep-alive requests on one connection each get theirs; a HEAD answer, an empty
body and a streamed body come out exactly as uvicorn's own protocol sends them.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from infrastructure.http.one_write import OneWriteProtocol
from tests.integration.server_scripts import free_port


async def _json(request: Request) -> Response:
    body = await request.body()
    return Response(b'{"echo":%d}' % len(body), media_type="application/json")


async def _empty(request: Request) -> Response:
    return Response(status_code=204)


async def _streamed(request: Request) -> StreamingResponse:
    async def parts() -> AsyncIterator[bytes]:
        for part in (b"one,", b"two,", b"three"):
            yield part

    return StreamingResponse(parts(), media_type="text/plain")


APP = Starlette(
    routes=[
        Route("/json", _json, methods=["POST", "GET", "HEAD"]),
        Route("/empty", _empty),
        Route("/streamed", _streamed),
    ]
)


class _Spy:
    def __init__(self, transport: asyncio.Transport, writes: list[bytes]) -> None:
        self._transport = transport
        self._writes = writes

    def write(self, data: bytes) -> None:
        self._writes.append(bytes(data))
        self._transport.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


def _record_writes(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """Every write the server's connections make from now on, in order."""
    writes: list[bytes] = []
    original = HttpToolsProtocol.connection_made

    def made(protocol: HttpToolsProtocol, transport: asyncio.Transport) -> None:
        original(protocol, transport)
        protocol.transport = _Spy(transport, writes)  # type: ignore[assignment]

    monkeypatch.setattr(HttpToolsProtocol, "connection_made", made)
    return writes


async def _serving(
    protocol: type[asyncio.Protocol],
) -> tuple[uvicorn.Server, asyncio.Task[None], str]:
    port = free_port()
    config = uvicorn.Config(
        APP, host="127.0.0.1", port=port, http=protocol, loop="none", log_level="warning"
    )
    server = uvicorn.Server(config)
    task = asyncio.get_running_loop().create_task(server.serve())
    while not server.started:  # noqa: ASYNC110  (uvicorn.Server has a flag, no event)
        await asyncio.sleep(0.01)
    return server, task, f"http://127.0.0.1:{port}"


async def _answers(
    protocol: type[asyncio.Protocol], monkeypatch: pytest.MonkeyPatch
) -> tuple[list[httpx.Response], list[bytes]]:
    writes = _record_writes(monkeypatch)
    server, task, url = await _serving(protocol)
    try:
        async with httpx.AsyncClient(base_url=url) as client:  # one keep-alive connection
            answers = [
                await client.post("/json", content=b"x" * 300),
                await client.post("/json", content=b"y" * 10),
                await client.head("/json"),
                await client.get("/empty"),
                await client.get("/streamed"),
            ]
    finally:
        server.should_exit = True
        await task
    return answers, writes


def _head(write: bytes) -> bytes:
    return write.split(b"\r\n\r\n", 1)[0]


async def test_a_json_answer_is_one_write_with_head_and_body(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    answers, writes = await _answers(OneWriteProtocol, monkeypatch)
    assert [a.status_code for a in answers] == [200, 200, 200, 204, 200]
    assert answers[0].json() == {"echo": 300}
    assert answers[1].json() == {"echo": 10}
    assert answers[4].text == "one,two,three"
    # the two JSON answers: one write each, the head with its whole body
    assert writes[0].startswith(b"HTTP/1.1 200 OK\r\n")
    assert writes[0].endswith(b'\r\n\r\n{"echo":300}')
    assert writes[1].startswith(b"HTTP/1.1 200 OK\r\n")
    assert writes[1].endswith(b'\r\n\r\n{"echo":10}')
    assert b"content-length: 12" in writes[0]
    # HEAD: the head alone (no body is written), still one write; 204: one write
    assert writes[2].startswith(b"HTTP/1.1 200 OK\r\n")
    assert writes[2].endswith(b"\r\n\r\n")
    assert writes[3].startswith(b"HTTP/1.1 204 No Content\r\n")
    assert writes[3].endswith(b"\r\n\r\n")


async def test_the_bytes_on_the_wire_are_uvicorns_own(monkeypatch: pytest.MonkeyPatch) -> None:
    """Joined or not, the same bytes in the same order (the date header aside)."""
    _, joined = await _answers(OneWriteProtocol, monkeypatch)
    monkeypatch.undo()
    _, plain = await _answers(HttpToolsProtocol, monkeypatch)

    def without_date(stream: list[bytes]) -> list[bytes]:
        lines = b"".join(stream).split(b"\r\n")
        return [line for line in lines if not line.startswith(b"date: ")]

    assert without_date(joined) == without_date(plain)
    assert len(plain) > len(joined)  # uvicorn's own: head and body apart
