"""The /graphql route: bearer authentication at the HTTP edge (401 problem+json, as the REST
reads), GraphiQL and introspection only in development, one Context per request closed when it ends.
A request refused before any operation ran (a body that is not one operation, a document
that does not validate, variables that do not coerce) is HTTP 400 with a GraphQL error body,
never Strawberry's plain text; one whose fields ran is 200, with any field errors.

A plain Starlette route around Strawberry's ASGI view, like the REST reads: FastAPI's router
and dependency resolution cost a fifth of a card query's CPU and give GraphQL nothing.
The context carries the caller's raw Authorization header and the command-service forwarder
for the mutations; Strawberry refuses mutations over GET (400), so a link cannot write."""

from __future__ import annotations

import orjson
from cross_web import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLHTTPResponse

from api_gateway.commands_client import CommandService
from api_gateway.freshness import ReadSide
from api_gateway.graphql.context import Context
from api_gateway.graphql.inputs import RefusedBody, check_body
from api_gateway.graphql.schema import development_schema, schema
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


_HTTP_CODES = {400: "BAD_REQUEST", 404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}


def _request_error(status: int, message: str, code: str | None = None) -> Response:
    """A request refused before any operation ran: a GraphQL error body, as JSON."""
    code = code or _HTTP_CODES.get(status, "BAD_REQUEST")
    body = {"errors": [{"message": message, "extensions": {"code": code}}]}
    headers = {"Allow": "GET, POST"} if status == 405 else None
    return Response(orjson.dumps(body), status, headers, media_type="application/json")


class _Endpoint(GraphQL[Context, None]):
    def __init__(self, development: bool) -> None:
        super().__init__(
            development_schema() if development else schema,
            graphql_ide="graphiql" if development else None,
            subscription_protocols=(),
        )
        self._ide = development

    async def run(  # type: ignore[override]  # HTTP only: no subscriptions are offered
        self, request: Request, context: Context | None = None, root_value: None = None
    ) -> Response:
        try:
            return await super().run(request)
        except HTTPException as exc:  # Strawberry's refusals would be plain text
            return _request_error(exc.status_code, exc.reason)
        except RefusedBody as exc:
            return _request_error(400, str(exc), exc.code)
        finally:
            ctx = getattr(request.state, "graphql_context", None)
            if isinstance(ctx, Context):
                await ctx.close()

    def decode_json(self, data: str | bytes) -> object:
        # orjson: faster, and it refuses nesting past 1,024 levels with a JSONDecodeError
        # (Strawberry's 400) where the standard library's decoder overflows Python's stack
        value = orjson.loads(data)
        check_body(value)  # RefusedBody: answered by run()
        return value

    def create_response(
        self, response_data: GraphQLHTTPResponse | list[GraphQLHTTPResponse], sub_response: Response
    ) -> Response:
        response = super().create_response(response_data, sub_response)
        if isinstance(response_data, dict) and _request_refused(response_data):
            response.status_code = 400
        return response

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


def _request_refused(answer: GraphQLHTTPResponse) -> bool:
    """Nothing ran: the document did not parse or validate, or its variables did not coerce.
    Such errors carry no `path`; a field's error always does."""
    errors = answer.get("errors") or []
    return (
        answer.get("data") is None
        and bool(errors)
        and all(isinstance(e, dict) and "path" not in e for e in errors)
    )


def graphql_route(settings: Settings) -> Route:
    return Route(PATH, _Endpoint(settings.environment == "development"), methods=["GET", "POST"])
