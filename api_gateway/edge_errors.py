"""The edge's own errors as problem+json, for the Kubernetes Ingress.

ingress-nginx answers some errors itself: a body over `proxy-body-size` (413), a client over
`limit-rps` (429). With `custom-http-errors` and `default-backend` on the Ingress
(k8s/ingress.yaml) it sends such a request on to the gateway instead, rewritten to `/`, with
the status in `X-Code`; the gateway answers the problem below, the same table the local nginx
edge renders (scripts/edge/nginx.conf.template, `map $status $edge_problem_*`; a test holds
the two together). Without a known `X-Code`, `/` is an ordinary 404.
"""

from __future__ import annotations

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


async def edge_error(request: Request) -> Response:
    raw = request.headers.get("x-code", "")
    status = int(raw) if raw.isascii() and raw.isdigit() and len(raw) == 3 else 404
    problem = edge_problem(status if status in EDGE_PROBLEMS else 404)
    return problem_response(problem, request.headers.get("x-original-uri"))


# Every method: the Ingress sends the failed request on as it came (a 413 is often a POST).
ROUTE = Route(
    "/",
    edge_error,
    methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
    include_in_schema=False,
)
