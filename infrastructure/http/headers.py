"""The response headers every answer of the public services carries, set in one place.

Both services sit behind the edge (the local nginx, or ingress-nginx in Kubernetes), and
both edges pass the apps' headers on unchanged; so setting them here makes local and
Kubernetes answers agree without a second list per edge. The edge sets the same list only
on the answers it makes itself (its errors, `/edge/health`). HSTS is not here: it belongs
where TLS ends (the Ingress; the local edge is plain http). docs/edge.md, "Headers".

- `Cache-Control: no-store` unless the answer chose otherwise: every answer is one caller's
  data (cards, wallets, claims, money moved), never for a shared cache or a browser's disk.
- `X-Content-Type-Options: nosniff`: JSON is never reinterpreted as HTML or script.
- `X-Frame-Options: DENY` and CSP `frame-ancestors 'none'`: nothing here is meant to be framed
  (the docs and GraphiQL pages included).
- `Referrer-Policy: no-referrer`: ids in URLs do not leak to other sites.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

SECURITY_HEADERS: tuple[tuple[str, str], ...] = (
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Content-Security-Policy", "frame-ancestors 'none'"),
    ("Referrer-Policy", "no-referrer"),
)
NO_STORE = ("Cache-Control", "no-store")

_RAW = [(name.lower().encode(), value.encode()) for name, value in SECURITY_HEADERS]
_RAW_NO_STORE = (NO_STORE[0].lower().encode(), NO_STORE[1].encode())


def secured(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """`headers` (raw ASGI ones, changed in place) with SECURITY_HEADERS, and NO_STORE where
    no Cache-Control is set."""
    if not any(name == b"cache-control" for name, _ in headers):
        headers.append(_RAW_NO_STORE)
    headers.extend(_RAW)
    return headers


class SecurityHeaders:
    """ASGI middleware adding the headers of `secured` to every answer."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": secured(list(message.get("headers", ())))}
            await send(message)

        await self.app(scope, receive, with_headers)
