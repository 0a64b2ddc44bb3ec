"""Bad input on every write endpoint: the right problem+json, and nothing stored."""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

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
            ]
            for label, raw in bad_amounts:
                marker = "__AMOUNT__"
                text = _dumps(with_field(valid, dotted, marker)).replace(
                    f'"{marker}"'.encode(), raw
                )
                add(f"{label}-{dotted}", BodyCase(e, text, JSON, 422, "validation_failed", dotted))
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
            if placeholder == "card":
                values.append("other:wallet")
            if placeholder == "wallet":
                values.append("other:card")
            if placeholder == "beneficiary":
                values.append("other:claim")
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
