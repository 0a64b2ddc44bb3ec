"""A write's body, read within the one limit every service that takes writes applies
(MAX_BODY_BYTES: the command service, and the gateway passing a write on to it)."""

from __future__ import annotations

from starlette.requests import ClientDisconnect, Request

from infrastructure.http.problems import Problem
from schemas.api.commands import MAX_BODY_BYTES


async def read_body(request: Request) -> bytes:
    """The body, refused with 413 as soon as it is known to be too large (before it is read
    when Content-Length says so, else once the chunks read so far exceed the limit)."""
    declared = request.headers.get("content-length", "")
    # Ten digits are too many whatever they say (and int() of a thousand would be slow).
    digits = declared.isascii() and declared.isdigit()
    if digits and (len(declared) > 9 or int(declared) > MAX_BODY_BYTES):
        raise _too_large()
    # The ASGI messages read directly, as Request.stream() would (an async generator per
    # request costs more than the rest of this function): a server hands over a small body
    # in one message, which is then returned as it is.
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await request.receive()
        if message["type"] != "http.request":  # http.disconnect: the client is gone
            raise ClientDisconnect()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise _too_large()
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _too_large() -> Problem:
    return Problem(413, "body_too_large", f"request bodies are limited to {MAX_BODY_BYTES} bytes")
