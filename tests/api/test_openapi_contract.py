"""The write operations the public OpenAPI document declares (schemas/api/openapi.py) are the
command service's routes, so the documentation cannot drift from the route table."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import Any

import jsonschema_rs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator  # type: ignore[import-untyped]
from pydantic import TypeAdapter, ValidationError
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from api_gateway.freshness import MAX_POSITION as GATEWAY_MAX_POSITION
from command_service.routes import ROUTES
from domain.identity import IdentityError, national_id_birth_date, normalize_mobile
from domain.medcard.card_types import CARD_TYPES
from domain.wallet.model import GATEWAYS
from schemas.api.commands import CORRELATION_ID, IDEMPOTENCY_KEY, Code, DebitBody, HeaderRule, Text
from schemas.api.formats import (
    DOMAIN_RULES,
    MAX_POSITION,
    decimal_pattern,
    mobile_pattern,
    national_id_pattern,
)
from schemas.api.openapi import ANSWER_IDS, API, LINKS, READS, WRITES, build_openapi
from tests.api.endpoints import BY_NAME, ENDPOINTS

DOCUMENT = build_openapi(WRITES, title="writes", version="test")
_URI = "urn:healthpay:openapi"
_REGISTRY: Registry[Any] = Registry().with_resource(
    _URI, Resource.from_contents(DOCUMENT, default_specification=DRAFT202012)
)


def _validator(schema: dict[str, Any]) -> Draft202012Validator:
    """`schema` (e.g. {"$ref": "#/components/schemas/X"}) resolved against DOCUMENT."""
    ref = schema["$ref"]
    return Draft202012Validator({"$ref": _URI + ref}, registry=_REGISTRY)


def test_declared_writes_are_exactly_the_command_routes() -> None:
    routes = {
        (method, route.path, route.name) for route in ROUTES for method in route.methods or ()
    }
    declared = {(op.method, op.path, op.operation_id) for op in WRITES}
    assert routes == declared
    assert len(WRITES) == len(declared)  # no operation declared twice


def test_declared_writes_are_the_ones_the_api_tests_exercise() -> None:
    assert {op.operation_id for op in WRITES} == {e.name for e in ENDPOINTS}
    for op in WRITES:
        endpoint = BY_NAME[op.operation_id]
        assert (op.method, op.path) == (endpoint.method, endpoint.route)
        assert (op.body is None) == (endpoint.body is None), op.operation_id
        if op.body is not None:
            assert op.body_required == (not endpoint.body_optional), op.operation_id


@pytest.mark.parametrize(
    "endpoint", [e for e in ENDPOINTS if e.body is not None], ids=lambda e: e.name
)
def test_a_valid_body_is_valid_by_the_document(endpoint: Any) -> None:
    operation = DOCUMENT["paths"][endpoint.route][endpoint.method.lower()]
    schema = operation["requestBody"]["content"]["application/json"]["schema"]
    _validator(schema).validate(endpoint.body)


@pytest.mark.parametrize("endpoint", [e for e in ENDPOINTS if e.required], ids=lambda e: e.name)
def test_a_body_without_a_required_field_is_invalid_by_the_document(endpoint: Any) -> None:
    operation = DOCUMENT["paths"][endpoint.route][endpoint.method.lower()]
    schema = operation["requestBody"]["content"]["application/json"]["schema"]
    top_level = [name for name in endpoint.required if "." not in name]
    assert top_level, f"{endpoint.name}: no top-level required field to leave out"
    for name in top_level:
        body = {k: v for k, v in endpoint.body.items() if k != name}
        assert not _validator(schema).is_valid(body), (endpoint.name, name)


# ------------------------------------------------- the formats say what the code enforces

_NATIONAL_ID = re.compile(national_id_pattern())
_MOBILE_NUMBER = re.compile(mobile_pattern())
_DIGITS_14 = st.text(alphabet="0123456789", min_size=14, max_size=14)
_ID_LIKE = st.builds(
    "".join,
    st.tuples(
        st.sampled_from("1234"),
        st.dates(date(1900, 1, 1), date(2099, 12, 31)).map(lambda d: f"{d:%y%m%d}"),
        st.text(alphabet="0123456789", min_size=7, max_size=7),
    ),
)


def _domain_accepts_national_id(value: str) -> bool:
    try:
        national_id_birth_date(value)
    except IdentityError:
        return False
    return True


@settings(max_examples=600, deadline=None)
@given(st.one_of(_DIGITS_14, _ID_LIKE, st.text(max_size=16)))
def test_the_national_id_pattern_is_the_domains_rule(value: str) -> None:
    assert bool(_NATIONAL_ID.search(value)) == _domain_accepts_national_id(value), value


def _domain_accepts_mobile(value: str) -> bool:
    try:
        normalize_mobile(value)
    except IdentityError:
        return False
    return True


_MOBILE_LIKE = st.builds(
    "".join,
    st.tuples(
        st.sampled_from(["", "0", "+20", "0020", "20", "+2", "00"]),
        st.sampled_from("10123456789"),
        st.sampled_from("0123456789"),
        st.text(alphabet="0123456789 -", min_size=6, max_size=12),
    ),
)


@settings(max_examples=600, deadline=None)
@given(st.one_of(_MOBILE_LIKE, st.text(alphabet="0123456789+ -", max_size=20)))
def test_the_mobile_pattern_is_the_domains_rule(value: str) -> None:
    assert bool(_MOBILE_NUMBER.search(value)) == _domain_accepts_mobile(value), value


@pytest.mark.parametrize(
    ("prop", "words"), [("cardType", set(CARD_TYPES)), ("gateway", set(GATEWAYS))]
)
@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_the_any_case_patterns_are_the_domains_words(prop: str, words: set[str], data: Any) -> None:
    pattern = re.compile(DOMAIN_RULES[prop]["pattern"])
    word = data.draw(st.one_of(st.sampled_from(sorted(words)), st.text(max_size=10)))
    spelled = data.draw(st.sampled_from([word, word.upper(), word.title(), word + "x"]))
    assert bool(pattern.search(spelled)) == (spelled.lower() in words), spelled


@settings(max_examples=400, deadline=None)
@given(st.from_regex(decimal_pattern(integer_digits=10, places=2, positive=True, at_most=None)))
def test_every_amount_the_document_allows_the_bodies_take(text: str) -> None:
    # (the converse, every other spelling refused, is the fuzz's negative phase: make fuzz)
    body = DebitBody.model_validate({"amount": text.strip(), "reference": "r-1"})
    assert body.amount > 0


@settings(max_examples=300, deadline=None)
@given(
    st.from_regex(decimal_pattern(integer_digits=3, places=2, positive=False, at_most=Decimal(100)))
)
def test_every_percentage_the_document_allows_is_0_to_100(text: str) -> None:
    assert Decimal(0) <= Decimal(text.strip()) <= Decimal(100)


def test_every_link_names_an_operation_its_parameters_and_an_answer_field() -> None:
    document = build_openapi((*READS, *WRITES), title="all", version="test")
    operations = {
        op["operationId"]: op for item in document["paths"].values() for op in item.values()
    }
    links = 0
    for source in operations.values():
        for status, answer in source["responses"].items():
            for link in answer.get("links", {}).values():
                links += 1
                target = operations[link["operationId"]]
                named = {f"{p['in']}.{p['name']}" for p in target["parameters"]}
                assert set(link["parameters"]) <= named, (source["operationId"], link)
                for expression in link["parameters"].values():
                    field = expression.removeprefix("$response.body#/")
                    if field != expression and field not in ("position", "nextCursor"):
                        assert field in ANSWER_IDS[source["operationId"]], (source, field)
                assert status.startswith("2")
    assert links >= 60
    assert {"issue_card", "claim_prescription", "open_wallet"} <= set(LINKS)


def test_positions_are_bounded_as_the_gateway_bounds_them() -> None:
    assert MAX_POSITION == GATEWAY_MAX_POSITION


# ------------------------------------------- text and headers as sent, padding included


def _takes(adapter: TypeAdapter[str], value: str) -> bool:
    try:
        adapter.validate_python(value)
    except ValidationError:
        return False
    return True


def _documented(*path: str) -> Callable[[str], bool]:
    """Whether the document takes a value at `path` under components/schemas, with ECMA-262's
    patterns, as OpenAPI means them and the fuzzer reads them (Python's `$` would also match
    before a final newline)."""
    schema: Any = DOCUMENT["components"]["schemas"]
    for part in path:
        schema = schema[part]
    validator = jsonschema_rs.validator_for(schema)
    return lambda value: bool(validator.is_valid(value))


def test_trimmed_text_is_documented_as_the_bodies_trim_it_character_by_character() -> None:
    # Every code point of the BMP (White_Space and the control characters all lie there),
    # alone, before a letter and between letters: blank, padding and controls as the code sees
    # them. Surrogates cannot reach a body (bodies.py refuses them as the JSON is read).
    documented, text = _documented("OpenWalletBody", "properties", "userId"), TypeAdapter(Text)
    wrong = [
        (hex(point), value)
        for point in range(0x10000)
        if not 0xD800 <= point < 0xE000
        for value in (chr(point), chr(point) + "x", "x" + chr(point) + "x")
        if documented(value) != _takes(text, value)
    ]
    assert wrong == []


_AROUND = st.text(
    alphabet=" \t\n\x0b\x0c\r\x85\xa0\u1680\u2000\u200a\u2028\u202f\u3000", max_size=3
)
_INSIDE = st.text(alphabet=st.sampled_from("ab \t\x00\x1f\x85\u00a0\u3000\ufeff\u180e\x1c~"))
_DRUG_CODE = _documented("ClaimItemBody", "properties", "drugCode")
_CODE = TypeAdapter(Code)


@settings(max_examples=300, deadline=None)
@given(st.tuples(_AROUND, _INSIDE, st.text(min_size=45, max_size=55), _INSIDE, _AROUND))
def test_padded_text_is_documented_as_the_bodies_take_it(parts: tuple[str, ...]) -> None:
    # Around the 50-character bound of a drug code: the length is the trimmed text's.
    value = "".join(parts)
    assert _DRUG_CODE(value) == _takes(_CODE, value), repr(value)


def _header_validator(rule: HeaderRule) -> Callable[[str], bool]:
    operation = DOCUMENT["paths"][f"{API}/wallets"]["post"]
    (parameter,) = [p for p in operation["parameters"] if p["name"] == rule.name]
    validator = jsonschema_rs.validator_for(parameter["schema"])
    return lambda value: bool(validator.is_valid(value))


_HEADERS = {rule.name: _header_validator(rule) for rule in (IDEMPOTENCY_KEY, CORRELATION_ID)}
_HEADER_CHARACTERS = st.sampled_from(["a", "~", " ", "\t", "\x00", "\x7f", "é", "\n"])


@pytest.mark.parametrize("rule", [IDEMPOTENCY_KEY, CORRELATION_ID], ids=lambda r: r.name)
@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_headers_are_documented_as_sent(rule: HeaderRule, data: Any) -> None:
    # HTTP drops the spaces and tabs around a field value before the server sees it
    # (RFC 9110 §5.5; httptools does); the endpoints treat an empty correlation id as none.
    size = data.draw(st.sampled_from([0, 1, 2, rule.max_length - 1, rule.max_length]))
    around = st.text(alphabet=" \t", max_size=2)
    value = (
        data.draw(around)
        + data.draw(st.text(_HEADER_CHARACTERS, min_size=size, max_size=size + 1))
        + data.draw(around)
    )
    seen = value.strip(" \t")
    taken = rule.accepts(seen) or (rule.blank_is_absent and seen == "")
    assert _HEADERS[rule.name](value) == taken, repr(value)
