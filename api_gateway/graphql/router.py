"""The /graphql route: bearer authentication at the HTTP edge (401 problem+json, as the REST
reads), GraphiQL only in development, one Context per request closed when it ends.

A plain Starlette route around Strawberry's ASGI view, like the REST reads: FastAPI's router
and dependency resolution cost a fifth of a card query's CPU and give GraphQL nothing.
The context carries the caller's raw Authorization header and the command-service forwarder
for the mutations; Strawberry refuses mutations over GET (400), so a link cannot write."""

from __future__ import annotations

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL

from api_gateway.commands_client import CommandService
from api_gateway.graphql.context import Context
from api_gateway.graphql.schema import schema
from api_gateway.rest import ReadSide
from infrastructure.http.bearer import authenticate
from infrastructure.settings import Settings

PATH = "/graphql"


def _ide_page(request: Request, ide: bool) -> bool:
    """The GraphiQL page itself (it runs no query), which a browser loads without a token."""
    return (
        ide
        and request.method == "GET"
        and "text/html" in request.headers.get("accept", "")
        and "authorization" not in request.headers
    )


class _Endpoint(GraphQL[Context, None]):
    def __init__(self, ide: bool) -> None:
        super().__init__(schema, graphql_ide="graphiql" if ide else None, subscription_protocols=())
        self._ide = ide

    async def run(  # type: ignore[override]  # HTTP only: no subscriptions are offered
        self, request: Request, context: Context | None = None, root_value: None = None
    ) -> Response:
        try:
            return await super().run(request)
        finally:
            ctx = getattr(request.state, "graphql_context", None)
            if isinstance(ctx, Context):
                await ctx.close()

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> Context:
        assert isinstance(request, Request)
        side: ReadSide = request.app.state.read_side
        # raises a 401 Problem, which the app's handler answers as problem+json
        principal = (
            None if _ide_page(request, self._ide) else authenticate(side.tokens, request.headers)
        )
        # Absent when the app runs without its lifespan (a test serving the GraphiQL page).
        commands: CommandService | None = getattr(request.app.state, "commands", None)
        authorization = request.headers.get("authorization") if principal else None
        ctx = Context(side, principal, authorization=authorization, commands=commands)
        ctx.request = request
        request.state.graphql_context = ctx
        return ctx

    def encode_json(self, data: object) -> bytes:
        return orjson.dumps(data)


def graphql_route(settings: Settings) -> Route:
    return Route(PATH, _Endpoint(settings.environment == "development"), methods=["GET", "POST"])
