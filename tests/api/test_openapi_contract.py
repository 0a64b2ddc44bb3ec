"""The write operations the public OpenAPI document declares (schemas/api/openapi.py) are the
command service's routes, so the documentation cannot drift from the route table."""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator  # type: ignore[import-untyped]
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from api_gateway.freshness import MAX_POSITION as GATEWAY_MAX_POSITION
from command_service.routes import ROUTES
from domain.identity import IdentityError, national_id_birth_date, normalize_mobile
from domain.medcard.card_types import CARD_TYPES
from domain.wallet.model import GATEWAYS
from schemas.api.commands import DebitBody
from schemas.api.formats import (
    DOMAIN_RULES,
    MAX_POSITION,
    decimal_pattern,
    mobile_pattern,
    national_id_pattern,
)
from schemas.api.openapi import ANSWER_IDS, LINKS, READS, WRITES, build_openapi
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
