"""The /graphql route: bearer authentication at the HTTP edge (401 problem+json, as the REST
reads), GraphiQL only in development, one Context per request closed when it ends."""

from __future__ import annotations

from collections.abc import AsyncIterator

from starlette.requests import Request
from strawberry.fastapi import GraphQLRouter

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
        ctx = Context(side, principal)
        try:
            yield ctx
        finally:
            await ctx.close()

    return GraphQLRouter(
        schema,
        context_getter=context,  # type: ignore[arg-type]  # a FastAPI dependency may yield
        graphql_ide="graphiql" if ide else None,
    )
