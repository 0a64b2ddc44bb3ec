"""One CORS policy for every public service (CORS_ORIGINS): the command service and the
gateway sit behind the same public URL, so a browser app must get the same grant from both,
and read the headers that make read-your-writes work (positions, request ids)."""

from __future__ import annotations

from typing import Any

from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp

ALLOWED_METHODS = ("GET", "POST", "DELETE")
ALLOWED_HEADERS = (
    "Authorization",
    "Content-Type",
    "Idempotency-Key",
    "X-Correlation-ID",
    "X-Request-ID",
    "X-Min-Position",
)
EXPOSED_HEADERS = ("X-Projection-Position", "X-Request-ID", "Retry-After", "Location")
PREFLIGHT_MAX_AGE = 600  # seconds a browser may cache a preflight answer


def cors_options(origins: tuple[str, ...]) -> dict[str, Any]:
    """Starlette CORSMiddleware's options: exact origins only, no credentials (bearer tokens
    travel in a header, not cookies)."""
    return {
        "allow_origins": list(origins),
        "allow_methods": list(ALLOWED_METHODS),
        "allow_headers": list(ALLOWED_HEADERS),
        "expose_headers": list(EXPOSED_HEADERS),
        "max_age": PREFLIGHT_MAX_AGE,
    }


def with_cors(app: ASGIApp, origins: tuple[str, ...]) -> ASGIApp:
    """`app` answering preflights and granting `origins`; `app` itself when no origin is
    configured, so nothing is granted by default."""
    return CORSMiddleware(app, **cors_options(origins)) if origins else app
