"""The GraphQL fuzz: queries and mutations generated from the gateway's own schema by
hypothesis-graphql, valid ones and (in negative mode) invalid ones, sent to the running
gateway as each role. An internal error is a failure: an HTTP 5xx, an answer that is not
JSON, or an error the gateway masked ("Unexpected error.": it hit no deliberate refusal).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis_graphql import Mode, mutations, nodes, queries

from api_gateway.graphql.schema import schema
from schemas.api.formats import MAX_POSITION
from tests.fuzz.stack import Stack

MASKED = "Unexpected error."
# The one custom scalar: a position; past both ends too, which must be refused, not fail.
LONG = st.one_of(
    st.integers(0, MAX_POSITION), st.integers(MAX_POSITION + 1, 2**70), st.integers(-(2**64), -1)
).map(nodes.Int)


@dataclass(slots=True)
class GraphqlResult:
    role: str
    cases: Counter[str] = field(default_factory=Counter)  # "query|mutation positive|negative"
    statuses: Counter[int] = field(default_factory=Counter)
    codes: Counter[str] = field(default_factory=Counter)  # extensions.code of the errors
    failures: list[str] = field(default_factory=list)


def _internal_error(answer: httpx.Response) -> str | None:
    if answer.status_code >= 500:
        return f"HTTP {answer.status_code}: {answer.text[:300]}"
    try:
        body = answer.json()
    except ValueError:
        return f"HTTP {answer.status_code}, not JSON: {answer.text[:300]}"
    for error in (body.get("errors") or []) if isinstance(body, dict) else []:
        if error.get("message") == MASKED:
            return f"masked internal error at {error.get('path')}"
    return None


def _record(result: GraphqlResult, answer: httpx.Response) -> None:
    result.statuses[answer.status_code] += 1
    try:
        body = answer.json()
    except ValueError:
        return
    for error in (body.get("errors") or []) if isinstance(body, dict) else []:
        code = (error.get("extensions") or {}).get("code") or "validation"
        result.codes[str(code)] += 1


def _bound(send: Callable[[str, Any], None], kind: str) -> Callable[[Any], None]:
    def test(document: Any) -> None:
        send(kind, document)

    return test


def fuzz_role(stack: Stack, role: str, examples: int, seed: int) -> GraphqlResult:
    result = GraphqlResult(role)
    sdl = str(schema)
    kinds = {
        f"{kind} {mode.name.lower()}": make(sdl, custom_scalars={"Long": LONG}, mode=mode)
        for kind, make in (("query", queries), ("mutation", mutations))
        for mode in (Mode.POSITIVE, Mode.NEGATIVE)
    }
    with httpx.Client(
        base_url=stack.gateway_url, headers=stack.headers(role), timeout=30
    ) as client:

        def send(kind: str, document: Any) -> None:
            result.cases[kind] += 1
            answer = client.post("/graphql", json={"query": str(document)})
            _record(result, answer)
            failure = _internal_error(answer)
            if failure is not None:
                result.failures.append(f"{role} {kind}: {failure}\n  query: {document}")

        for kind, strategy in kinds.items():
            run = settings(
                max_examples=examples,
                deadline=None,
                database=None,
                derandomize=False,
                phases=[Phase.generate],
                suppress_health_check=list(HealthCheck),
            )(given(strategy)(_bound(send, kind)))
            run._hypothesis_internal_use_seed = seed  # type: ignore[attr-defined]
            run()
    return result
