"""uvicorn's httptools protocol, with each answer sent in ONE socket write.

uvicorn writes the status line and headers when the app sends `http.response.start` and the
body when it sends `http.response.body`: two send(2) calls, and with TCP_NODELAY two TCP
segments, for every small JSON answer, each read separately by the client (nginx, k6). Here
the head is held back until the body's first write and goes out joined with it; an answer
without a body write (HEAD, a failure after the head) gets its head written when it ends or
when its connection closes, so nothing is lost or reordered. Streamed answers (more than one
body message) are written as before after that first joined write.

Used by `healthpay serve-commands` only (command_service/server.py).
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle


class _Joiner:
    """Stands in for the transport during one answer: holds the first write (the head) and
    writes it together with the next one."""

    __slots__ = ("held", "transport")

    def __init__(self, transport: asyncio.Transport) -> None:
        self.transport = transport
        self.held: bytes | None = None

    def write(self, data: bytes) -> None:
        if self.held is None:
            self.held = data
            return
        self.transport.write(self.held + data)
        self.held = b""

    def flush(self) -> None:
        if self.held:
            self.transport.write(self.held)
        self.held = b""

    def close(self) -> None:
        self.flush()
        self.transport.close()

    def is_closing(self) -> bool:
        return self.transport.is_closing()


class OneWriteCycle(RequestResponseCycle):
    async def send(self, message: Any) -> None:
        if message["type"] == "http.response.start" and not self.response_started:
            joiner = _Joiner(self.transport)
            self.transport = joiner  # type: ignore[assignment]  # write, close, is_closing
            await super().send(message)
            if not self.response_started:  # disconnected meanwhile: nothing was written
                self.transport = joiner.transport
            return
        await super().send(message)
        transport: Any = self.transport
        if type(transport) is _Joiner and (transport.held == b"" or self.response_complete):
            # the head went out with the body's first write, or the answer ended without one
            transport.flush()
            self.transport = transport.transport


class OneWriteProtocol(HttpToolsProtocol):
    """HttpToolsProtocol whose request cycles answer in one write (`OneWriteCycle`)."""

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        # The cycle was just made and its task is scheduled, not yet run: it sends as a
        # OneWriteCycle from its first message on.
        if type(self.cycle) is RequestResponseCycle:
            self.cycle.__class__ = OneWriteCycle
