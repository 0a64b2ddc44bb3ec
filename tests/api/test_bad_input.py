"""Bad input on every write endpoint: the right problem+json, and nothing stored."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from schemas.api.commands import MAX_BODY_BYTES, CopayConsentBody, DebitBody, IssueCardBody
from schemas.api.openapi import WRITES, build_openapi
from tests.api.conftest import World
from tests.api.endpoints import (
    MISSING,
    PATH_IDS,
    WITH_BODY,
    WITH_PATH_IDS,
    WITH_REQUIRED_BODY,
    Endpoint,
    with_field,
)
from tests.api.support import Api, Tokens, refused

JSON = "application/json"


@dataclass(frozen=True, slots=True)
class BodyCase:
    endpoint: Endpoint
    content: bytes
    content_type: str | None
    status: int
    code: str
    field: str | None = None  # a field the problem's `errors` must name

    def send(self, api: Api, world: World, tokens: Tokens) -> Awaitable[httpx.Response]:
        headers = tokens.for_role(self.endpoint.actor)
        if self.content_type is not None:
            headers["Content-Type"] = self.content_type
        return api.client.request(
            self.endpoint.method,
            self.endpoint.url(world.ids()),
            content=self.content,
            headers=headers,
        )


def _dumps(value: Any) -> bytes:
    return json.dumps(value).encode()


# What no store can hold or no field may carry, put inside a string (json.dumps escapes
# each of them as \\uXXXX, so they reach the parser as JSON escapes).
UNSTORABLE_TEXT = [
    ("nul", "\u0000"),
    ("escape", "\u001b"),
    ("delete", "\u007f"),
    ("c1_control", "\u009b"),
    ("lone_high_surrogate", "\ud800"),
    ("lone_low_surrogate", "\udfff"),
    ("reversed_surrogates", "\udc00\ud800"),
]


def _string_fields(body: dict[str, Any], prefix: str = "") -> list[str]:
    """Dotted paths of every string in `body` (money strings too: a NUL is no amount)."""
    found: list[str] = []
    for key, value in body.items():
        if isinstance(value, str):
            found.append(prefix + key)
        elif isinstance(value, dict):
            found += _string_fields(value, f"{prefix}{key}.")
        elif isinstance(value, list):
            for index, item in enumerate(value):
                if isinstance(item, dict):
                    found += _string_fields(item, f"{prefix}{key}.{index}.")
    return found


def _first_in_each_nested_object(body: dict[str, Any]) -> list[str]:
    """The first string field of every object inside `body` (to repeat it there)."""
    firsts: dict[str, str] = {}
    for path in _string_fields(body):
        parent = path.rpartition(".")[0]
        if parent:
            firsts.setdefault(parent, path)
    return list(firsts.values())


def _get(body: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        body = body[int(part)] if isinstance(body, list) else body[part]
    return body


def body_cases() -> list[Any]:
    cases: list[Any] = []

    def add(case_id: str, case: BodyCase) -> None:
        cases.append(pytest.param(case, id=f"{case.endpoint.name}-{case_id}"))

    for e in WITH_BODY:
        assert e.body is not None
        valid = e.body
        add("malformed_json", BodyCase(e, b'{"reason": ', JSON, 400, "malformed_json"))
        add("trailing_garbage", BodyCase(e, _dumps(valid) + b"}", JSON, 400, "malformed_json"))
        add("json_array", BodyCase(e, _dumps([valid]), JSON, 422, "invalid_body"))
        add("json_empty_array", BodyCase(e, b"[]", JSON, 422, "invalid_body"))
        add("json_string", BodyCase(e, b'"hello"', JSON, 422, "invalid_body"))
        add("json_number", BodyCase(e, b"42", JSON, 422, "invalid_body"))
        add("json_null", BodyCase(e, b"null", JSON, 422, "invalid_body"))
        add("text_plain", BodyCase(e, _dumps(valid), "text/plain", 415, "unsupported_media_type"))
        add(
            "form_urlencoded",
            BodyCase(
                e, b"reason=x", "application/x-www-form-urlencoded", 415, "unsupported_media_type"
            ),
        )
        add("no_content_type", BodyCase(e, _dumps(valid), None, 415, "unsupported_media_type"))
        if e.open_body:
            # A gateway's body: what it adds is ignored; the signature is what then fails.
            unknown = _dumps({**valid, "unexpected": "\u0000"})
            add("unknown_field", BodyCase(e, unknown, JSON, 401, "invalid_signature"))
        else:
            add(
                "unknown_field",
                BodyCase(
                    e,
                    _dumps({**valid, "unexpected": 1}),
                    JSON,
                    422,
                    "validation_failed",
                    "unexpected",
                ),
            )
            add(
                "snake_case_field",
                BodyCase(
                    e,
                    _dumps({**valid, "user_id": "x"}),
                    JSON,
                    422,
                    "validation_failed",
                    "user_id",
                ),
            )
        for dotted in e.required:
            add(
                f"missing-{dotted}",
                BodyCase(
                    e,
                    _dumps(with_field(valid, dotted, MISSING)),
                    JSON,
                    422,
                    "validation_failed",
                    dotted,
                ),
            )
        for index, (dotted, value) in enumerate(e.wrong_types):
            add(
                f"wrong_type{index}-{dotted}",
                BodyCase(
                    e,
                    _dumps(with_field(valid, dotted, value)),
                    JSON,
                    422,
                    "validation_failed",
                    dotted,
                ),
            )
        for dotted in e.amounts:
            bad_amounts: list[tuple[str, bytes]] = [
                ("zero", b"0"),
                ("zero_string", b'"0.00"'),
                ("negative", b"-1"),
                ("negative_string", b'"-350.00"'),
                ("over_precise", b"350.001"),
                ("over_precise_string", b'"350.001"'),
                ("nan", b'"NaN"'),
                ("infinity", b'"Infinity"'),
                ("too_large", b'"10000000000.00"'),
                # money has one spelling (domain/money.py): everything Decimal() would take
                # besides it is refused, as a string or as a JSON number
                ("underscore", b'"1_000.00"'),
                ("arabic_indic_digits", '"\u0661\u0660\u0660"'.encode()),
                ("arabic_indic_escaped", b'"\\u0661\\u0660\\u0660"'),
                ("fullwidth_digits", '"\uff11\uff10"'.encode()),
                ("exponent_string", b'"1E+2"'),
                ("exponent_number", b"1E+2"),
                ("exponent_number_lower", b"1e2"),
                ("padded_left", b'" 1.00"'),
                ("padded_right", b'"1.00 "'),
                ("newline", b'"1.00\\n"'),
                ("plus_sign", b'"+1.00"'),
                ("thousands_comma", b'"1,000.00"'),
                ("hexadecimal", b'"0x10"'),
                ("leading_zeros", b'"007.00"'),
                ("trailing_point", b'"1."'),
                ("leading_point", b'".50"'),
                ("nan_literal", b"NaN"),
                ("infinity_literal", b"Infinity"),
                ("minus_infinity_literal", b"-Infinity"),
                ("negative_zero", b"-0"),
                ("huge_exponent", b"1e400"),
                ("too_large_number", b"12345678901234567890.12"),
                ("many_digits", b"1" + b"0" * 400),
                ("rounded_by_a_float", b"0.1000000000000000055511151231257827"),
                ("over_precise_zeros", b"1.000"),
            ]
            for label, raw in bad_amounts:
                marker = "__AMOUNT__"
                text = _dumps(with_field(valid, dotted, marker)).replace(
                    f'"{marker}"'.encode(), raw
                )
                add(f"{label}-{dotted}", BodyCase(e, text, JSON, 422, "validation_failed", dotted))
        for dotted in _string_fields(valid):
            for label, bad in UNSTORABLE_TEXT:
                text = _dumps(with_field(valid, dotted, "a" + bad + "b"))
                add(f"{label}-{dotted}", BodyCase(e, text, JSON, 422, "validation_failed", dotted))
        first = next(iter(valid))
        repeated = _dumps(valid)[:-1] + b", " + _dumps({first: valid[first]})[1:]
        add(f"duplicate-{first}", BodyCase(e, repeated, JSON, 422, "duplicate_key", first))
        for dotted in _first_in_each_nested_object(valid):
            member = _dumps({dotted.rpartition(".")[2]: _get(valid, dotted)})[1:-1]
            text = _dumps(valid).replace(member, member + b", " + member, 1)
            add(f"duplicate-{dotted}", BodyCase(e, text, JSON, 422, "duplicate_key", dotted))
    for e in WITH_REQUIRED_BODY:
        add("empty_body", BodyCase(e, b"", JSON, 400, "malformed_json"))
        add("empty_object", BodyCase(e, b"{}", JSON, 422, "validation_failed", e.required[0]))
    return cases


@pytest.mark.parametrize("case", body_cases())
async def test_bad_body_is_refused_and_stores_nothing(
    module_api: Api, world: World, tokens: Tokens, case: BodyCase
) -> None:
    problem = await refused(
        module_api, case.send(module_api, world, tokens), case.status, case.code
    )
    if case.field is not None:
        fields = [err["field"] for err in problem.get("errors", [])]
        assert any(f == case.field or f.startswith(case.field + ".") for f in fields), problem


# ------------------------------------------------------------------------------ path ids


@dataclass(frozen=True, slots=True)
class PathCase:
    endpoint: Endpoint
    placeholder: str
    value: str  # "malformed:<text>", "unknown", or "other:<placeholder>" (an id of another kind)


def path_cases() -> list[Any]:
    cases: list[Any] = []
    for e in WITH_PATH_IDS:
        for placeholder in e.ids_in_path():
            values = ["malformed:not-a-uuid", "malformed:12345", "unknown"]
            # the real id, spelt as uuid.UUID() would also take it: ids are canonical
            values += ["respelt:braces", "respelt:no_hyphens", "respelt:urn", "respelt:nul"]
            if placeholder == "card":
                values.append("other:wallet")
            if placeholder == "wallet":
                values.append("other:card")
            if placeholder == "beneficiary":
                values.append("other:claim")
            if placeholder == "debit":
                values.append("other:claim")  # a claim that took nothing from the wallet
            for value in values:
                case = PathCase(e, placeholder, value)
                cases.append(pytest.param(case, id=f"{e.name}-{placeholder}-{value}"))
    return cases


@pytest.mark.parametrize("case", path_cases())
async def test_unknown_or_malformed_path_id_is_404(
    module_api: Api, world: World, tokens: Tokens, case: PathCase
) -> None:
    ids = world.ids()
    kind, _, detail = case.value.partition(":")
    if kind == "malformed":
        ids[case.placeholder] = detail
    elif kind == "respelt":
        real = ids[case.placeholder]
        ids[case.placeholder] = {
            "braces": "{" + real + "}",
            "no_hyphens": real.replace("-", ""),
            "urn": "urn:uuid:" + real,
            "nul": real + "%00",
        }[detail]
    elif kind == "unknown":
        ids[case.placeholder] = str(uuid.uuid4())
    else:
        ids[case.placeholder] = world.ids()[detail]
    endpoint = case.endpoint
    _, code = PATH_IDS[case.placeholder]
    await refused(
        module_api,
        module_api.client.request(
            endpoint.method,
            endpoint.url(ids),
            json=endpoint.body,
            headers=tokens.for_role(endpoint.actor),
        ),
        404,
        code,
    )


async def test_unknown_route_is_a_problem(module_api: Api, tokens: Tokens) -> None:
    response = await module_api.client.post(
        "/api/v1/medcards/x/launch", json={}, headers=tokens.admin()
    )
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "not_found"


async def test_wrong_method_is_a_problem(module_api: Api, world: World, tokens: Tokens) -> None:
    response = await module_api.client.put(
        f"/api/v1/wallets/{world.wallet_id}/debits", json={}, headers=tokens.admin()
    )
    assert response.status_code == 405
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "method_not_allowed"


async def test_oversized_body_is_refused(module_api: Api, world: World, tokens: Tokens) -> None:
    huge = json.dumps({"reason": "x" * (300 * 1024)}).encode()
    await refused(
        module_api,
        module_api.client.post(
            f"/api/v1/medcards/{world.card_id}/suspend",
            content=huge,
            headers={**tokens.admin(), "Content-Type": JSON},
        ),
        413,
        "body_too_large",
    )


def _padded_claim(size: int) -> bytes:
    """A valid claim body of exactly `size` bytes (JSON whitespace before the brace)."""
    body = json.dumps({"prescriptionId": "rx-padded", "totalAmount": "1.00"}).encode()
    return body[:-1] + b" " * (size - len(body)) + b"}"


@pytest.mark.parametrize("endpoint", WITH_BODY, ids=lambda e: e.name)
async def test_a_body_one_byte_over_the_limit_is_413(
    module_api: Api, world: World, tokens: Tokens, endpoint: Endpoint
) -> None:
    assert endpoint.body is not None
    body = json.dumps(endpoint.body).encode()
    body = body[:-1] + b" " * (MAX_BODY_BYTES + 1 - len(body)) + b"}"
    problem = await refused(
        module_api,
        module_api.client.request(
            endpoint.method,
            endpoint.url(world.ids()),
            content=body,
            headers={**tokens.for_role(endpoint.actor), "Content-Type": JSON},
        ),
        413,
        "body_too_large",
    )
    assert str(MAX_BODY_BYTES) in problem["detail"]


async def test_a_body_at_the_limit_is_read(module_api: Api, world: World, tokens: Tokens) -> None:
    response = await module_api.client.post(
        f"/api/v1/medcards/{world.card_id}/claims/prescriptions",
        content=_padded_claim(MAX_BODY_BYTES),
        headers={**tokens.pharmacy(), "Content-Type": JSON},
    )
    assert response.status_code == 201, response.text


async def test_a_streamed_body_is_refused_before_it_is_read_to_the_end(
    module_api: Api, world: World, tokens: Tokens
) -> None:
    # No Content-Length (chunked): the service stops reading once the limit is passed.
    sent = 0

    async def chunks() -> AsyncIterator[bytes]:
        nonlocal sent
        yield b'{"reason": "'
        for _ in range(64):  # 1 MiB in all
            sent += 1
            yield b"x" * 16384
        yield b'"}'

    await refused(
        module_api,
        module_api.client.post(
            f"/api/v1/medcards/{world.card_id}/suspend",
            content=chunks(),
            headers={**tokens.admin(), "Content-Type": JSON},
        ),
        413,
        "body_too_large",
    )
    assert sent <= MAX_BODY_BYTES // 16384 + 1, sent


# -------------------------------------------------------------------- headers used as data


@pytest.mark.parametrize(
    "key",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"k" * 256, id="too_long"),
        pytest.param(b"key\x00one", id="nul"),
        pytest.param(b"key\x01one", id="control"),
        pytest.param(b"key\x7fone", id="delete"),
        pytest.param(b"key\tone", id="tab"),
        pytest.param("kéy".encode("latin-1"), id="latin1"),
        pytest.param("kéy".encode(), id="utf8"),
    ],
)
async def test_an_unstorable_idempotency_key_is_400(
    module_api: Api, world: World, tokens: Tokens, key: bytes
) -> None:
    headers = [(k.encode(), v.encode()) for k, v in tokens.pharmacy().items()]
    headers += [(b"Content-Type", JSON.encode()), (b"Idempotency-Key", key)]
    await refused(
        module_api,
        module_api.client.post(
            f"/api/v1/medcards/{world.card_id}/claims/prescriptions",
            json={"prescriptionId": "rx-bad-key", "totalAmount": "1.00"},
            headers=headers,
        ),
        400,
        "invalid_idempotency_key",
    )
    assert await module_api.idempotency_record_count() in (None, 0)


@pytest.mark.parametrize(
    "correlation",
    [
        pytest.param(b"c" * 101, id="too_long"),
        pytest.param(b"trace\x00id", id="nul"),
        pytest.param(b"trace\nid", id="newline"),
        pytest.param("tracé".encode(), id="utf8"),
    ],
)
async def test_an_unstorable_correlation_id_is_400(
    module_api: Api, world: World, tokens: Tokens, correlation: bytes
) -> None:
    headers = [(k.encode(), v.encode()) for k, v in tokens.pharmacy().items()]
    headers.append((b"X-Correlation-Id", correlation))
    await refused(
        module_api,
        module_api.client.post(
            f"/api/v1/medcards/{world.card_id}/claims/prescriptions",
            json={"prescriptionId": "rx-bad-correlation", "totalAmount": "1.00"},
            headers=headers,
        ),
        400,
        "invalid_correlation_id",
    )


async def test_the_duplicated_amount_attack_books_nothing(
    module_api: Api, world: World, tokens: Tokens
) -> None:
    body = b'{"amount": "1.00", "reference": "order-duplicate", "amount": "900.00"}'
    problem = await refused(
        module_api,
        module_api.client.post(
            f"/api/v1/wallets/{world.wallet_id}/debits",
            content=body,
            headers={**tokens.admin(), "Content-Type": JSON},
        ),
        422,
        "duplicate_key",
    )
    assert problem["errors"] == [
        {
            "field": "amount",
            "message": "appears more than once in its object",
            "type": "duplicate_key",
        }
    ]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("350", "350.00"), ("350.5", "350.50"), ('"350"', "350.00"), ('"0.05"', "0.05")],
)
async def test_plain_amounts_are_booked_as_written(
    module_api: Api, world: World, tokens: Tokens, raw: str, expected: str
) -> None:
    prescription = json.dumps(f"rx-plain-{raw}")
    body = f'{{"prescriptionId": {prescription}, "totalAmount": {raw}}}'
    response = await module_api.client.post(
        f"/api/v1/medcards/{world.card_id}/claims/prescriptions",
        content=body.encode(),
        headers={**tokens.pharmacy(), "Content-Type": JSON},
    )
    assert response.status_code in (200, 201), response.text
    assert response.json()["totalAmount"] == expected


# ------------------------------------------------ the document says exactly what is taken

_DOCUMENT = build_openapi(WRITES, title="writes", version="test")["components"]["schemas"]
_DECIMAL_FIELDS: list[tuple[type[BaseModel], str, dict[str, str]]] = [
    (DebitBody, "amount", {"reference": "r-1"}),
    (CopayConsentBody, "perClaimLimit", {"monthlyLimit": "0"}),
    (IssueCardBody, "copaymentPercentage", {"userId": "u-1", "cardType": "gold"}),
]
_DECIMAL_LIKE = st.text(alphabet="0123456789.-+eE_, \u0661", max_size=16)


def _string_pattern(model: type[BaseModel], prop: str) -> re.Pattern[str]:
    schema = _DOCUMENT[model.__name__]["properties"][prop]
    while "anyOf" in schema and not any("pattern" in s for s in schema["anyOf"]):
        schema = next(s for s in schema["anyOf"] if "anyOf" in s)
    [string] = [s for s in schema["anyOf"] if s.get("type") == "string"]
    return re.compile(string["pattern"])


@pytest.mark.parametrize(
    ("model", "prop", "rest"), _DECIMAL_FIELDS, ids=[f[1] for f in _DECIMAL_FIELDS]
)
@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_a_decimal_string_is_taken_exactly_when_the_document_allows_it(
    model: type[BaseModel], prop: str, rest: dict[str, str], data: Any
) -> None:
    pattern = _string_pattern(model, prop)
    text = data.draw(st.one_of(st.from_regex(pattern), _DECIMAL_LIKE))
    try:
        model.model_validate_json(json.dumps({prop: text, **rest}))
        taken = True
    except ValidationError:
        taken = False
    # fullmatch: a JSON Schema `$` (ECMA-262) does not match before a final newline
    assert taken == (pattern.fullmatch(text) is not None), text


async def test_a_whole_quantity_written_with_a_point_is_that_integer(
    module_api: Api, world: World, tokens: Tokens
) -> None:
    # JSON Schema's "integer" (what the document says) takes 2.0; so does the service.
    body = (
        b'{"prescriptionId": "rx-quantity-2.0", "totalAmount": "20.00", "items": [{"drugCode":'
        b' "D-1", "drugName": "Panadol", "quantity": 2.0, "unitPrice": "10.00"}]}'
    )
    response = await module_api.client.post(
        f"/api/v1/medcards/{world.card_id}/claims/prescriptions",
        content=body,
        headers={**tokens.pharmacy(), "Content-Type": JSON},
    )
    assert response.status_code == 201, response.text
    assert response.json()["items"][0]["quantity"] == 2
