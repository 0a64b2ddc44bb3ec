"""Decoding a write's JSON body (read within its limit by infrastructure/http/bodies.py)
once, into exactly what the client wrote.

pydantic parses and validates the body in one pass (`model_validate_json`), which is the
cheapest way there is, but on its own it would book some bodies other than as sent:

- a duplicated key keeps its last value (`{"amount":"1.00","amount":"900.00"}` is 900.00);
- a JSON number reaches the validators as a float, so `1e2` and
  `0.1000000000000000055511151231257827` would look like plain amounts.

Both are caught without a second parse on the common path: outside its strings, a valid
JSON text has exactly one colon per object member and a minus sign, exponent, third decimal,
NaN or Infinity only in a number. One regex pass that blanks the strings gives those counts;
the members pydantic kept are counted on the validated model (every key of a body is a field,
unknown ones being refused). Only a body that fails a check is parsed again, more slowly, to
name what is wrong.
"""

from __future__ import annotations

import json
import re
from typing import Any, TypeVar, get_args

from pydantic import BaseModel, ValidationError

from infrastructure.http.problems import Problem, validation_errors
from schemas.api.commands import NO_CONTROL_PATTERN, NUMBER_TEXT

CONTROL_CHARACTER_MESSAGE = "must not contain control characters (U+0000-U+001F, U+007F-U+009F)"

B = TypeVar("B", bound=BaseModel)
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_INEXACT_NUMBER = re.compile(rb"-|[0-9][eE]|\.[0-9]{3}|NaN|Infinity")
# The same, looked for in the raw text where a value can start: it finds every such number
# (and, now and then, some text in a string, which the exact check above then clears).
_MAYBE_INEXACT = re.compile(rb"[:,\[]\s*(?:-|N|I|[0-9]+(?:\.[0-9]*)?[eE]|[0-9]+\.[0-9]{3})")
_SURROGATE = re.compile("[\ud800-\udfff]")
_WHOLE = re.compile(r"(?:0|[1-9][0-9]*)\.0{1,2}")  # no sign: -1.0 stays text (refused as such)


def decode(model: type[B], raw: bytes) -> B:
    """`raw` validated as `model`, or a Problem: 400 for what is not JSON, 422 naming the
    field for everything else (a duplicated key is `duplicate_key`)."""
    body: B | None
    errors: list[Any] = []
    try:
        body = model.model_validate_json(raw)
    except ValidationError as exc:
        body, errors = None, exc.errors(include_input=False, include_url=False)
        if any(err["type"] == "json_invalid" for err in errors):
            raise _not_json(raw) from exc
    skeleton: bytes | None = None
    if _MAYBE_INEXACT.search(raw) is not None:
        skeleton = _STRING.sub(b"", raw)
        if _INEXACT_NUMBER.search(skeleton) is not None:
            # A float may have been rounded on the way in: validate the numbers' own text.
            try:
                body = model.model_validate_json(_numbers_as_text(raw))
            except ValidationError as exc:
                # inputs kept for _worded to tell a number from text; it drops them
                body, errors = None, exc.errors(include_url=False)
    if body is None or raw.count(b":") != _members(body):
        if skeleton is None:
            skeleton = _STRING.sub(b"", raw)
        if body is None or skeleton.count(b":") != _members(body):
            _refuse_duplicates(raw)
    if body is not None:
        return body
    if any(err["type"] == "model_type" and not err["loc"] for err in errors):
        raise Problem(422, "invalid_body", "the body must be a JSON object")
    raise Problem(
        422,
        "validation_failed",
        "the body has invalid fields",
        errors=validation_errors([_worded(err) for err in errors]),
    )


def _refuse_duplicates(raw: bytes) -> None:
    duplicate = _first_duplicate(_loads(raw, object_pairs_hook=_Pairs), ())
    if duplicate is not None:
        raise Problem(
            422,
            "duplicate_key",
            "a key appears more than once in one JSON object",
            errors=[_error(duplicate, "appears more than once in its object", "duplicate_key")],
        )


def _worded(error: Any) -> Any:
    """The text rule is a regex for pydantic's engine; the client is told what it means."""
    given = error.pop("input", None)  # never echoed: it may be a national id
    pattern = error.get("ctx", {}).get("pattern")
    if error["type"] == "string_pattern_mismatch" and pattern == NO_CONTROL_PATTERN:
        if isinstance(given, str) and given.startswith(NUMBER_TEXT):
            return {**error, "type": "string_type", "msg": "must be a string, not a number"}
        return {**error, "type": "control_character", "msg": CONTROL_CHARACTER_MESSAGE}
    return error


def _not_json(raw: bytes) -> Problem:
    """400, unless the text is JSON whose only flaw is a lone surrogate (RFC 8259 §8.2 lets
    the grammar through; no store can hold one): then 422 naming where it is."""
    where = _first_surrogate(_loads(raw, object_pairs_hook=_Pairs), ())
    if where is None:
        return Problem(400, "malformed_json", "the body is not valid JSON")
    message = "must not contain a lone surrogate (a \\ud800-\\udfff escape without its pair)"
    return Problem(
        422,
        "validation_failed",
        "the body has invalid fields",
        errors=[_error(where, message, "lone_surrogate")],
    )


def _numbers_as_text(raw: bytes) -> bytes:
    """The same document with every fractional, exponent, NaN or Infinity number (and -0)
    turned into a string of its text marked as a number's (NUMBER_TEXT), for the decimal rule
    to judge as written and every text field to refuse; but a whole
    number written with one or two zero decimals (`920.0`) stays a number, as it would have
    outside this path: JSON calls it an integer, and no decimal rule refuses it."""

    def integer(text: str) -> int | str:
        # as an int, -0 would lose its sign
        return NUMBER_TEXT + text if text == "-0" else int(text)

    def fraction(text: str) -> int | str:
        return int(text.split(".")[0]) if _WHOLE.fullmatch(text) else NUMBER_TEXT + text

    def constant(text: str) -> str:
        return NUMBER_TEXT + text

    document = _loads(raw, parse_float=fraction, parse_int=integer, parse_constant=constant)
    # The standard library's encoder: orjson refuses integers past 64 bits, which a body may
    # hold beside a fraction (the validator then refuses them for their range).
    return json.dumps(document).encode()


def _loads(raw: bytes, **hooks: Any) -> Any:
    """The standard library's parser, for the slow paths: it can keep every member and every
    number's text. It takes what pydantic's took; should it ever not, that is a 400 too."""
    try:
        return json.loads(raw, **hooks)
    except ValueError as exc:  # not JSON, or not UTF-8
        raise Problem(400, "malformed_json", "the body is not valid JSON") from exc


class _Pairs(list[tuple[str, Any]]):
    """A JSON object as parsed, every member kept, in order."""


Path = tuple[str | int, ...]


def _first_duplicate(node: Any, path: Path) -> Path | None:
    if isinstance(node, _Pairs):
        seen: set[str] = set()
        for key, _ in node:
            if key in seen:
                return (*path, key)
            seen.add(key)
        children: Any = node
    elif isinstance(node, list):
        children = enumerate(node)
    else:
        return None
    for key, value in children:
        found = _first_duplicate(value, (*path, key))
        if found is not None:
            return found
    return None


def _first_surrogate(node: Any, path: Path) -> Path | None:
    if isinstance(node, str):
        return path if _SURROGATE.search(node) is not None else None
    if isinstance(node, _Pairs):
        for key, value in node:
            if _SURROGATE.search(key) is not None:
                return (*path, key)
            found = _first_surrogate(value, (*path, key))
            if found is not None:
                return found
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found = _first_surrogate(value, (*path, index))
            if found is not None:
                return found
    return None


def _error(path: Path, message: str, kind: str) -> dict[str, Any]:
    return {"field": ".".join(str(part) for part in path), "message": message, "type": kind}


def _members(body: BaseModel) -> int:
    """The object members `body` was validated from: its fields set, and theirs."""
    fields = body.__pydantic_fields_set__
    count = len(fields)
    nested = _NESTED.get(type(body))
    if nested is None:
        nested = _NESTED[type(body)] = _nested_fields(type(body))
    for name in nested:
        if name in fields:
            value = getattr(body, name)
            if type(value) is list:
                for item in value:
                    count += _members(item)
            elif value is not None:
                count += _members(value)
    return count


# model -> its fields that can hold models (directly, optionally or in a list)
_NESTED: dict[type[BaseModel], tuple[str, ...]] = {}


def _nested_fields(model: type[BaseModel]) -> tuple[str, ...]:
    return tuple(
        name for name, info in model.model_fields.items() if _mentions_model(info.annotation)
    )


def _mentions_model(annotation: Any) -> bool:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return True
    return any(_mentions_model(arg) for arg in get_args(annotation))
