"""The /graphql route: bearer authentication at the HTTP edge (401 problem+json, as the REST
reads), GraphiQL only in development, one Context per request closed when it ends.

The context carries the caller's raw Authorization header and the command-service forwarder
for the mutations; Strawberry refuses mutations over GET (400), so a link cannot write."""

from __future__ import annotations

from collections.abc import AsyncIterator

from starlette.requests import Request
from strawberry.fastapi import GraphQLRouter

from api_gateway.commands_client import CommandService
from api_gateway.graphql.context import Context
from api_gateway.graphql.schema import schema
from api_gateway.rest import ReadSide
from infrastructure.http.bearer import authenticate
from infrastructure.settings import Settings


def _ide_page(request: Request, ide: bool) -> bool:
    """The GraphiQL page itself (it runs no query), which a browser loads without a token."""
    return (
        ide
        and request.method == "GET"
        and "text/html" in request.headers.get("accept", "")
        and "authorization" not in request.headers
    )


def graphql_router(settings: Settings) -> GraphQLRouter[Context, None]:
    ide = settings.environment == "development"

    async def context(request: Request) -> AsyncIterator[Context]:
        side: ReadSide = request.app.state.read_side
        principal = None if _ide_page(request, ide) else authenticate(side.tokens, request.headers)
        # Absent when the app runs without its lifespan (a test serving the GraphiQL page).
        commands: CommandService | None = getattr(request.app.state, "commands", None)
        authorization = request.headers.get("authorization") if principal else None
        ctx = Context(side, principal, authorization=authorization, commands=commands)
        try:
            yield ctx
        finally:
            await ctx.close()

    return GraphQLRouter(
        schema,
        context_getter=context,  # type: ignore[arg-type]  # a FastAPI dependency may yield
        graphql_ide="graphiql" if ide else None,
    )
