"""Schemathesis hooks for the REST fuzz (loaded through SCHEMATHESIS_HOOKS by tests/fuzz/rest.py).

Two of the built-in checks are replaced by stricter ones of this API's own:

* `server_error` for `not_a_server_error`: every 5xx fails, except a 504 projection_behind
  for an object that exists (the read with the same caller and no minPosition answers 200):
  a position ahead of the read model is the documented answer. A 504 for an object that does
  not exist is a failure.
* `valid_input_refused` for `positive_data_acceptance`: the built-in fails any 4xx to a
  request the document calls valid, but a valid request may still meet a business rule (a
  suspended card, a duplicate prescription, an override only admins may make). This fails
  only refusals of the *input itself* (the codes in FORMAT_CODES): each one is a rule the
  document does not state.

One hook corrects what Schemathesis infers about the operations' dependencies, so that the
stateful phase starts where this API's links start (after_load_schema). Every answer is
counted by operation and status into FUZZ_COUNTS_FILE when the run ends.
"""

from __future__ import annotations

import atexit
import json
import os
from collections import Counter
from typing import Any
from urllib.parse import urlsplit

import requests
import schemathesis
from schemathesis import Case, Response

# Problem codes that mean "this input is malformed", as opposed to a refusal by a rule of
# state, role or another field (national_id_birth_date_mismatch, items_total_mismatch,
# invalid_expiry_date, invalid_copay_consent, which the document states in descriptions), or
# an opaque value (invalid_cursor), or reuse of an Idempotency-Key (idempotency_key_reused).
FORMAT_CODES = frozenset(
    {
        "malformed_json",
        "invalid_body",
        "validation_failed",
        "unsupported_media_type",
        "body_too_large",
        "invalid_idempotency_key",
        "invalid_correlation_id",
        "invalid_min_position",
        "invalid_limit",
        "invalid_national_id",
        "invalid_phone_number",
        "unknown_card_type",
        "invalid_relationship",
        "invalid_name",
        "unknown_gateway",
        "invalid_user_id",
        "invalid_amount",
        "invalid_copay_percent",
        "invalid_quantity",
        "invalid_days_supply",
        "invalid_item",
        "invalid_prescription_id",
        "invalid_gateway_reference",
        "invalid_from",
        "invalid_to",
        "invalid_status",
    }
)
_POSITION_HEADER = "x-min-position"
_counts: Counter[str] = Counter()


def _code(response: Response) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    code = body.get("code") if isinstance(body, dict) else None
    return code if isinstance(code, str) else None


def _exists_without_position(response: Response) -> bool:
    """Whether the same read, by the same caller, without minPosition, answers 200."""
    request = response.request
    url = urlsplit(str(request.url))
    query = "&".join(part for part in url.query.split("&") if not part.startswith("minPosition="))
    headers = {k: v for k, v in request.headers.items() if k.lower() != _POSITION_HEADER}
    again = requests.get(url._replace(query=query).geturl(), headers=headers, timeout=30)
    return again.status_code == 200


@schemathesis.check
def server_error(ctx: Any, response: Response, case: Case[Any]) -> bool | None:
    if response.status_code < 500:
        return None
    code = _code(response)
    if response.status_code == 504 and code == "projection_behind":
        if _exists_without_position(response):
            return None
        raise AssertionError("504 projection_behind for an object that does not exist")
    raise AssertionError(f"server error {response.status_code} {code}")


@schemathesis.check
def valid_input_refused(ctx: Any, response: Response, case: Case[Any]) -> bool | None:
    if response.status_code not in (400, 413, 415, 422):
        return None
    if case.meta is None or not case.meta.generation.mode.is_positive:
        return None
    code = _code(response)
    if code in FORMAT_CODES:
        raise AssertionError(f"a request the document calls valid was refused: {code}")
    return None


@schemathesis.hook
def after_load_schema(context: Any, schema: Any) -> None:
    """Keeps Schemathesis's stateful phase starting where this API's links start.

    Schemathesis guesses from names which resource a field or header refers to, and starts
    stateful scenarios only from operations whose every such input some operation produces.
    `primaryHolder.nationalId` reads to it as a reference to a "National" resource, and the
    X-Correlation-Id header to an "XCorrelation" one, which no operation produces; so
    `issue_card`, where every card's links begin, never started a scenario: no card was
    issued, and every card operation saw random ids (404). An input bound to a resource that
    nothing produces is a guess that no call can satisfy; without those, the inferred graph
    holds only what the API has (tests/fuzz/test_hooks.py).
    """
    graph = schema.analysis.dependency_graph
    produced = {out.resource.name for node in graph.operations.values() for out in node.outputs}
    for node in graph.operations.values():
        node.inputs = [slot for slot in node.inputs if slot.resource.name in produced]


@schemathesis.hook
def after_call(context: Any, case: Case[Any], response: Response) -> None:
    _counts[f"{case.method.upper()} {case.path} {response.status_code}"] += 1


def _dump() -> None:
    target = os.environ.get("FUZZ_COUNTS_FILE")
    if target:
        with open(target, "w") as out:
            json.dump(dict(_counts), out)


atexit.register(_dump)
