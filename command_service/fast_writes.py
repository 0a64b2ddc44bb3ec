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
from starlette.routing import Route, Router
from starlette.types import ASGIApp, Receive, Scope, Send

from infrastructure.http.cors import with_cors
from infrastructure.http.metrics import HttpMetrics, MetricsMiddleware
from infrastructure.http.problems import Problem, problem_response

WRITE_PREFIX = "/api/v1/"


class FastWritesApp(FastAPI):
    """FastAPI whose /api/v1 write routes skip FastAPI's per-request layers."""

    _fast: ASGIApp | None = None

    def configure_fast_writes(
        self, routes: list[Route], metrics: HttpMetrics, cors_origins: tuple[str, ...]
    ) -> None:
        self._write_routes = routes
        self._http_metrics = metrics
        self._cors_origins = cors_origins

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Checked before FastAPI.__call__, which itself costs a telemetry lookup per request.
        if scope["type"] == "http" and scope["path"].startswith(WRITE_PREFIX):
            if self._fast is None:
                self._fast = self._wrap(_WriteRoutes(Router(routes=self._write_routes)))
            scope["app"] = self
            await self._fast(scope, receive, send)
            return
        await super().__call__(scope, receive, send)

    def build_middleware_stack(self) -> ASGIApp:
        return self._wrap(super().build_middleware_stack())

    def _wrap(self, app: ASGIApp) -> ASGIApp:
        app = with_cors(app, self._cors_origins)
        return MetricsMiddleware(app, self._http_metrics)


class _WriteRoutes:
    def __init__(self, router: Router) -> None:
        self.router = router

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.router(scope, receive, send)
        except HTTPException as exc:  # no route, or the route exists for other methods
            code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
            headers = dict(exc.headers) if exc.headers else None
            problem = Problem(exc.status_code, code, str(exc.detail), headers=headers)
            await problem_response(problem, scope["path"])(scope, receive, send)
