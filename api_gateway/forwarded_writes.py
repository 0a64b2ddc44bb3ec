"""The one write that can reach the gateway, passed through to the command service.

The local edge routes by method (POST and DELETE go to the command service), but a Kubernetes
Ingress routes by path only, and one path is both a read and a write:
/api/v1/medcards/{id}/beneficiaries (GET lists them, POST adds one). The Ingress sends that
path to the gateway (k8s/ingress.yaml); the POST goes on to the command service as it came
(the caller's token, Idempotency-Key and body) and its answer comes back as it went. Nothing
is decided here, so the gateway cannot widen anyone's rights.
"""

from __future__ import annotations

from uuid import UUID

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from api_gateway.commands_client import CommandService, CommandUnavailable
from infrastructure.http.bodies import read_body
from infrastructure.http.problems import Problem, problem_response

_REQUEST_HEADERS = (
    "authorization",
    "content-type",
    "idempotency-key",
    "x-correlation-id",
    "x-request-id",
)
_ANSWER_HEADERS = (
    "content-type",
    "location",
    "idempotent-replayed",
    "retry-after",
    "www-authenticate",
)


async def add_beneficiary(request: Request) -> Response:
    path = request.url.path
    try:
        UUID(request.path_params["card_id"])  # the path goes on verbatim: only a real id
    except ValueError:
        return problem_response(Problem(404, "card_not_found", "no such card"), path)
    try:
        body = await read_body(request)  # the command service's own limit, applied here first
    except Problem as too_large:
        return problem_response(too_large, path)
    headers = {name: value for name in _REQUEST_HEADERS if (value := request.headers.get(name))}
    commands: CommandService = request.app.state.commands
    try:
        answer = await commands.forward("POST", path, headers, body)
    except CommandUnavailable as exc:
        unavailable = Problem(
            502,
            "command_service_unavailable",
            f"{exc}; retry with the same Idempotency-Key",
            headers={"Retry-After": "1"},
        )
        return problem_response(unavailable, path)
    return Response(
        answer.content,
        answer.status_code,
        headers={name: value for name in _ANSWER_HEADERS if (value := answer.headers.get(name))},
    )


ROUTES = [
    Route("/api/v1/medcards/{card_id}/beneficiaries", add_beneficiary, methods=["POST"]),
]
