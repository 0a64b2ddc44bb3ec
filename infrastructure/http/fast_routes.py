"""Hot routes served by a bare Starlette router, in front of FastAPI's middleware stack.

FastAPI wraps every request in about eight layers (error and exception middleware, an
AsyncExitStack, body limits, telemetry); on the claim path they cost more than deciding the
claim, and on a REST read about a seventh of it. The hot endpoints already turn every error
into problem+json themselves, so they need none of it; a `Problem` that escapes one (the
GraphQL route's authentication) is answered here too. Everything else (docs, OpenAPI,
health, metrics) still goes through FastAPI as usual. The security headers, CORS and the
HTTP metrics wrap both, and both answer a missing route (404) or an undeclared method (405,
with `Allow`) as problem+json alike.

The hottest routes (the claim POSTs) skip even the bare router: `configure_fast_routes`'
`direct` routes are matched first and their endpoint called at once, the security headers
set on its Response and the request counted by the metrics without a middleware around
`send` (the same `secured` headers and `HttpMetrics.observe` the middlewares use). Only a
request that needs CORS (an `Origin` while origins are configured) takes the layered way.
Their endpoints answer every error themselves (command_service/http_endpoints.guarded).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, Route, Router
from starlette.types import ASGIApp, Receive, Scope, Send

from infrastructure.http.cors import with_cors
from infrastructure.http.edge_problems import edge_problem_for
from infrastructure.http.headers import SecurityHeaders, secured
from infrastructure.http.metrics import HttpMetrics, MetricsMiddleware
from infrastructure.http.problems import Problem, problem_response
from infrastructure.logs import CURRENT_CORRELATION_ID
from schemas.api.commands import CORRELATION_ID

_HTTP_CODES = {404: "not_found", 405: "method_not_allowed"}


def http_problem(exc: HTTPException, headers: Mapping[str, str]) -> Problem:
    """Starlette's own refusal (no route; a route without this method) as a Problem, with its
    headers (a 405's `Allow`); or the Ingress's, when it sent the request on to say it
    refused it (edge_problems: a service with no ready pod)."""
    edge = edge_problem_for(headers)
    if edge is not None:
        return edge
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    answer_headers = dict(exc.headers) if exc.headers else None
    return Problem(exc.status_code, code, str(exc.detail), headers=answer_headers)


def correlation_of(scope: Scope) -> str | None:
    """The request's X-Correlation-Id when it is one the write API would accept, else None
    (a write refuses a bad one with 400; a read just logs without it)."""
    for name, value in scope["headers"]:
        if name == b"x-correlation-id":
            text = value.decode("latin-1")
            return text if CORRELATION_ID.accepts(text) else None
    return None


class FastRoutesApp(FastAPI):
    """FastAPI whose hot routes (paths under the given prefixes) skip FastAPI's layers."""

    _fast: ASGIApp | None = None
    _prefixes: tuple[str, ...] = ()
    _direct: tuple[Route, ...] = ()

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)

        async def starlettes(request: Request, exc: Exception) -> Response:
            assert isinstance(exc, HTTPException)
            return problem_response(http_problem(exc, request.headers), request.url.path)

        async def raised(request: Request, exc: Exception) -> Response:
            assert isinstance(exc, Problem)  # e.g. /graphql's authentication
            return problem_response(exc, request.url.path)

        self.add_exception_handler(HTTPException, starlettes)
        self.add_exception_handler(Problem, raised)

    def configure_fast_routes(
        self,
        prefixes: Sequence[str],
        routes: Sequence[BaseRoute],
        metrics: HttpMetrics,
        cors_origins: tuple[str, ...],
        direct: Sequence[Route] = (),
    ) -> None:
        """`direct`: routes among `routes` whose endpoints are called with no router or
        middleware around them (see the module's docstring)."""
        self._prefixes = tuple(prefixes)
        self._fast_routes = list(routes)
        self._http_metrics = metrics
        self._cors_origins = cors_origins
        self._direct = tuple(direct)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        # Whatever this request logs, here or in a library, carries its correlation id (the
        # edge's request id unless the caller sent its own): infrastructure/logs.py. Reset
        # after, though each request runs in its own task, for servers that reuse one.
        token = CURRENT_CORRELATION_ID.set(correlation_of(scope))
        try:
            await self._http(scope, receive, send)
        finally:
            CURRENT_CORRELATION_ID.reset(token)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Checked before FastAPI.__call__, which itself costs a telemetry lookup per request.
        if scope["path"].startswith(self._prefixes):
            for route in self._direct:
                match, child_scope = route.matches(scope)
                if match is Match.FULL and not self._needs_cors(scope):
                    scope["app"] = self
                    scope.update(child_scope)
                    await self._call_directly(route, scope, receive, send)
                    return
            if self._fast is None:
                self._fast = self._wrap(_FastRoutes(Router(routes=self._fast_routes)))
            scope["app"] = self
            await self._fast(scope, receive, send)
            return
        await super().__call__(scope, receive, send)

    def _needs_cors(self, scope: Scope) -> bool:
        return bool(self._cors_origins) and any(name == b"origin" for name, _ in scope["headers"])

    async def _call_directly(
        self, route: Route, scope: Scope, receive: Receive, send: Send
    ) -> None:
        """What the middlewares and the router would do for `route`, without their layers."""
        started = time.perf_counter()
        status = 500  # as MetricsMiddleware counts a request that raised
        try:
            response: Response = await route.endpoint(Request(scope, receive))
            status = response.status_code
            secured(response.raw_headers)
            await response(scope, receive, send)
        finally:
            elapsed = time.perf_counter() - started
            self._http_metrics.observe(scope["method"], route.path, status, elapsed)

    def build_middleware_stack(self) -> ASGIApp:
        return self._wrap(super().build_middleware_stack())

    def _wrap(self, app: ASGIApp) -> ASGIApp:
        app = with_cors(app, self._cors_origins)
        return SecurityHeaders(MetricsMiddleware(app, self._http_metrics))


class _FastRoutes:
    def __init__(self, router: Router) -> None:
        self.router = router

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.router(scope, receive, send)
        except HTTPException as exc:  # no route, or the route exists for other methods
            problem = http_problem(exc, Headers(scope=scope))
            if problem.status == 405:
                problem.headers = {"Allow": self._allowed(scope)}
            await problem_response(problem, scope["path"])(scope, receive, send)
        except Problem as problem:
            await problem_response(problem, scope["path"])(scope, receive, send)

    def _allowed(self, scope: Scope) -> str:
        """Every method some route of this path takes: Starlette's 405 names only the first
        route's, and one path may have two (a read and the forwarded write)."""
        methods: set[str] = set()
        for route in self.router.routes:
            if (
                isinstance(route, Route)
                and route.methods
                and route.matches(scope)[0] is Match.PARTIAL
            ):
                methods |= route.methods
        return ", ".join(sorted(methods))
