"""Write routes served by a bare Starlette router, in front of FastAPI's middleware stack.

FastAPI wraps every request in about eight layers (error and exception middleware, an
AsyncExitStack, body limits, telemetry); on the claim path they cost more than deciding the
claim. Write endpoints already turn every error into problem+json themselves (`guarded`), so
they need none of it. Everything else (docs, OpenAPI, health, metrics) still goes through
FastAPI as usual.
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.exceptions import HTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.routing import Route, Router
from starlette.types import ASGIApp, Receive, Scope, Send

from infrastructure.http.metrics import HttpMetrics, MetricsMiddleware
from infrastructure.http.problems import Problem, problem_response

WRITE_PREFIX = "/api/v1/"


class FastWritesApp(FastAPI):
    """FastAPI whose /api/v1 write routes skip FastAPI's per-request layers."""

    def configure_fast_writes(
        self, routes: list[Route], metrics: HttpMetrics, cors_origins: tuple[str, ...]
    ) -> None:
        self._write_routes = routes
        self._http_metrics = metrics
        self._cors_origins = cors_origins

    def build_middleware_stack(self) -> ASGIApp:
        regular = super().build_middleware_stack()
        dispatch: ASGIApp = _Dispatch(Router(routes=self._write_routes), regular)
        if self._cors_origins:
            dispatch = CORSMiddleware(
                dispatch,
                allow_origins=list(self._cors_origins),
                allow_methods=["GET", "POST", "DELETE"],
                allow_headers=[
                    "Authorization",
                    "Content-Type",
                    "Idempotency-Key",
                    "X-Correlation-ID",
                ],
            )
        return MetricsMiddleware(dispatch, self._http_metrics)


class _Dispatch:
    def __init__(self, writes: Router, regular: ASGIApp) -> None:
        self.writes = writes
        self.regular = regular

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(WRITE_PREFIX):
            await self.regular(scope, receive, send)
            return
        try:
            await self.writes(scope, receive, send)
        except HTTPException as exc:  # no route, or the route exists for other methods
            code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
            headers = dict(exc.headers) if exc.headers else None
            problem = Problem(exc.status_code, code, str(exc.detail), headers=headers)
            await problem_response(problem, scope["path"])(scope, receive, send)
