"""What a GraphQL request may carry, checked before anything runs.

Two places hold a request's input: the JSON body (the variables, decoded once) and the string
literals of the document. Neither may carry a control character other than tab, newline and
carriage return (GraphQL's own source text allows no others): a NUL in particular reaches
PostgreSQL as an error, not as "no such card". The body is also bounded in nesting: nothing
this API takes nests deeper than a handful of levels, and a deep one costs recursion
everywhere it is walked.
"""

from __future__ import annotations

import re
from typing import Any

from graphql import GraphQLError, StringValueNode, ValidationRule

CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
MAX_NESTING = 32


class RefusedBody(ValueError):
    """Why a decoded request body is not one this API runs (answered 400 with `code`)."""

    def __init__(self, message: str, code: str = "BAD_REQUEST") -> None:
        super().__init__(message)
        self.code = code


def check_body(value: Any) -> None:
    """Raises RefusedBody for a batch (a JSON array of operations), a body nested deeper than
    MAX_NESTING or one holding a control character in any string (walked without recursion:
    the body is not trusted yet). Also what a GET's `variables` decode to."""
    if isinstance(value, list):
        raise RefusedBody("a request is one operation, a JSON object: batches are not accepted")
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: list[Any] = [*item.values(), *item]
        elif isinstance(item, list):
            children = item
        else:
            if isinstance(item, str) and CONTROL_CHARACTERS.search(item):
                raise RefusedBody(
                    "strings in the request must not hold control characters", "BAD_USER_INPUT"
                )
            continue
        if depth >= MAX_NESTING:
            raise RefusedBody(f"the request nests deeper than {MAX_NESTING} levels")
        stack.extend([(child, depth + 1) for child in children])


class NoControlCharacters(ValidationRule):
    """String literals of the document: the same rule as the body's strings."""

    def enter_string_value(self, node: StringValueNode, *_: Any) -> None:
        if CONTROL_CHARACTERS.search(node.value):
            self.report_error(
                GraphQLError(
                    "string arguments must not hold control characters",
                    node,
                    extensions={"code": "BAD_USER_INPUT"},
                )
            )
