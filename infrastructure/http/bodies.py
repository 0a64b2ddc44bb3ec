"""A write's body, read within the one limit every service that takes writes applies
(MAX_BODY_BYTES: the command service, and the gateway passing a write on to it)."""

from __future__ import annotations

from starlette.requests import Request

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
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise _too_large()
        chunks.append(chunk)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _too_large() -> Problem:
    return Problem(413, "body_too_large", f"request bodies are limited to {MAX_BODY_BYTES} bytes")
