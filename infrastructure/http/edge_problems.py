"""The edge's own errors as problem+json, for the Kubernetes Ingress.

ingress-nginx answers some errors itself: a body over `proxy-body-size` (413), a client over
`limit-rps` (429). With `custom-http-errors` and `default-backend` on the Ingress
(k8s/ingress.yaml) it sends such a request on to the gateway instead, rewritten to `/`, with
the status in `X-Code`; so it does, unrewritten and with `X-Code: 503`, when the Ingress's own
service has no ready pod. The gateway answers the problem below (its `/` route, and any route
it would otherwise refuse with 404 or 405), the same table the local nginx edge renders
(scripts/edge/nginx.conf.template, `map $status $edge_problem_*`; a test holds the two
together).
"""

from __future__ import annotations

from collections.abc import Mapping

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from infrastructure.http.problems import Problem, problem_response

# status -> (code, detail); the title is the status's reason phrase
EDGE_PROBLEMS: dict[int, tuple[str, str]] = {
    400: ("bad_request", "the request is not valid HTTP"),
    404: ("not_found", "no such resource"),
    405: ("method_not_allowed", "this method is not accepted here"),
    411: ("length_required", "a request with a body needs a Content-Length"),
    413: ("payload_too_large", "the body exceeds 1 MB"),
    414: ("uri_too_long", "the request URI is too long"),
    429: ("rate_limited", "too many requests from this client; retry after Retry-After seconds"),
    500: ("internal_error", "the edge failed to handle the request"),
    501: ("not_implemented", "the request uses a transfer coding the edge does not accept"),
    502: ("upstream_unavailable", "no service process answered; retry"),
    503: ("unavailable", "the service is unavailable; retry"),
    504: ("upstream_timeout", "the service did not answer in time; retry"),
    505: ("http_version_not_supported", "use HTTP/1.1"),
}
RETRY_AFTER = frozenset({429, 502, 503, 504})  # seconds: 1


def edge_problem(status: int) -> Problem:
    code, detail = EDGE_PROBLEMS[status]
    headers = {"Retry-After": "1"} if status in RETRY_AFTER else None
    return Problem(status, code, detail, headers=headers)


def edge_problem_for(headers: Mapping[str, str]) -> Problem | None:
    """The problem an Ingress's `X-Code` names, if it names one of the table."""
    raw = headers.get("x-code", "")
    if raw.isascii() and raw.isdigit() and int(raw) in EDGE_PROBLEMS:
        return edge_problem(int(raw))
    return None


async def edge_error(request: Request) -> Response:
    problem = edge_problem_for(request.headers) or edge_problem(404)
    return problem_response(problem, request.headers.get("x-original-uri") or request.url.path)


# Every method: the Ingress sends the failed request on as it came (a 413 is often a POST).
EDGE_ERROR_ROUTE = Route(
    "/",
    edge_error,
    methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
    include_in_schema=False,
)
